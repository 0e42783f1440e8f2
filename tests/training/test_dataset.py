"""Loading rules that change labels (app/training/dataset.py), tested on rows written here."""
from __future__ import annotations

import json

import pytest

from app.training.dataset import Row, load_dataset, relabel_prize_scam


def _row(text, labels=("marketing",), source="uci"):
    return Row(text=text, labels=tuple(labels), lang="en", source=source, orig="spam", file="x.jsonl")


@pytest.mark.parametrize("text", [
    "CONGRATS! You have won a £750 prize. To claim call 09061234567 now. Claim code AB12",
    "Your number was selected for a $500 award, please call 08712345678 quoting claim code 77",
    "URGENT you are awarded a holiday or £1000 cash, to claim txt GO to 81234",
])
def test_premium_rate_prize_scams_become_fraud(text):
    r = _row(text)
    assert relabel_prize_scam(r) and r.labels == ("fraud", "marketing") and r.meta["relabelled"] == "prize_scam"


@pytest.mark.parametrize("text, labels, source", [
    ("50% off all shoes this weekend, txt STOP to opt out", ("marketing",), "uci"),  # plain marketing
    ("You won't believe the prices! Call 0800 123 4567", ("marketing",), "uci"),  # no claim
    ("You have won a £750 prize, to claim call 09061234567", (), "uci"),  # labelled ham: left alone
    ("You have won a £750 prize, to claim call 09061234567", ("marketing",), "project"),  # other source
])
def test_other_rows_are_left_alone(text, labels, source):
    r = _row(text, labels, source)
    assert not relabel_prize_scam(r) and r.labels == tuple(labels)


def test_the_relabelling_is_counted_per_file(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    rows = [{"text": "WINNER! claim your £900 prize, call 09061701461", "labels": ["marketing"], "source": "uci"},
            {"text": "see you at 8", "labels": [], "source": "uci"}]
    (train / "en_uci_sms.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    loaded, files = load_dataset(train, tmp_path / "none", normalizer=str.lower)
    assert [r.labels for r in loaded] == [("fraud", "marketing"), ()]
    assert files[0]["relabelled"] == 1 and files[0]["labels"] == {"fraud": 1, "marketing": 1, "normal": 1}


def test_the_read_blind_sets_are_training_data_one_writer_per_set(tmp_path):
    """data/blind/ holds only sets already scored once (data/blind/README.md): training reads
    them with the project's files, the three files of one set as one writer (held out together
    by `evaluate --by-source`), and the model card cites them as blind sets."""
    from app.training.by_source import source_of
    from app.training.card import data_table_lines

    train, data = tmp_path / "train", tmp_path / "data"
    (data / "blind").mkdir(parents=True)
    train.mkdir()
    (train / "en_uci_sms.jsonl").write_text(json.dumps({"text": "see you at 8", "labels": []}) + "\n", encoding="utf-8")
    (data / "en_own.jsonl").write_text(json.dumps({"text": "your parcel is at the locker", "labels": []}) + "\n",
                                       encoding="utf-8")
    for name, row in (("2026-12-05m_prohibited.jsonl", {"text": "cheap casino chips, dm me", "labels": ["gambling"]}),
                      ("2026-12-05m_legit.jsonl", {"text": "dinner at 7?", "labels": [], "kind": "personal"}),
                      ("2026-12-05aa_legit.jsonl", {"text": "gate B12 now boarding", "labels": []}),
                      ("2026-12-04_legit.jsonl", {"text": "your bill is ready", "labels": []})):
        (data / "blind" / name).write_text(json.dumps(row) + "\n", encoding="utf-8")
    (data / "blind" / "README.md").write_text("not data", encoding="utf-8")
    loaded, files = load_dataset(train, data, normalizer=str.lower)
    assert [f["file"] for f in files] == [
        "../shared/data/train/en_uci_sms.jsonl", "data/en_own.jsonl", "data/blind/2026-12-04_legit.jsonl",
        "data/blind/2026-12-05aa_legit.jsonl", "data/blind/2026-12-05m_legit.jsonl",
        "data/blind/2026-12-05m_prohibited.jsonl"]
    units = {r.text: source_of(r) for r in loaded}
    assert units["cheap casino chips, dm me"] == units["dinner at 7?"] == "writer:blind-2026-12-05m"
    assert units["your bill is ready"] == "writer:blind-2026-12-04"
    assert units["gate B12 now boarding"] == "writer:blind-2026-12-05aa"  # the 27th set of a day
    assert units["your parcel is at the locker"] == "data/en_own.jsonl"
    assert all(r.meta.get("project") for r in loaded if r.file != "en_uci_sms.jsonl")
    card = "\n".join(data_table_lines(files))
    assert "| data/blind/2026-12-05m_prohibited.jsonl | 1 |" in card and "data/blind/README.md" in card
