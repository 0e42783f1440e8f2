"""`smsguard train --with-decisions`: the reviewers' decisions as one more source, training side
only, recorded in the metadata and the model card (tiny corpus, small parameters)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli import cli
from app.engine.classifier import LABELS, load_classifier
from app.store.db import Database
from app.store.records import TrainingExample
from app.training import dataset as ds
from app.training import train as train_mod
from app.training.split import split_rows

from .conftest import RULES
from .corpus import SMALL

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# a made-up scam wording nothing in the tiny corpus knows: only the decisions teach it
SCAM = ["{}客户您好，您的zorblax账户已冻结，请速回电解冻", "zorblax中心通知：{}用户需补缴保证金才能提现",
        "{}的朋友，zorblax理财保本高收益，先交会费再返利", "您在{}办理的zorblax贷款已审批，请先转手续费"]
PLACES = ["东城", "西城", "南岸", "北湖", "江北", "河西"]


def _val_texts(tiny) -> list[str]:
    rows, _ = ds.load_dataset(tiny.train, tiny.data, known_labels=LABELS)
    p = tiny.good_meta["params"]
    sp = split_rows(rows, val_frac=p["val_frac"], seed=tiny.good_meta["seed"], threshold=p["dedup_threshold"],
                    max_val_group=p["max_val_group"])
    return [rows[i].text for i in sp.val_idx]


@pytest.fixture
def decisions_db(migrated_url, tiny):
    db = Database(migrated_url)
    with db.session() as s:
        for i, (t, p) in enumerate((t, p) for t in SCAM for p in PLACES):
            s.add(TrainingExample(text=t.format(p), labels=["fraud"], lang="zh", origin="feedback",
                                  ref=f"feedback:{i}", decided_by="user:ann", decided_at=AT))
        # a decision that repeats a validation row: left out, so the frozen split stays unseen
        s.add(TrainingExample(text=_val_texts(tiny)[0], labels=[], lang="zh", origin="feedback", ref="feedback:val",
                              decided_by="user:ann", decided_at=AT))
    db.dispose()
    return migrated_url


def test_train_with_decisions_cli(decisions_db, tiny, tmp_path, monkeypatch):
    for k, v in SMALL.items():  # the CLI trains with the recipe's defaults: make them small
        monkeypatch.setitem(train_mod.DEFAULTS, k, v)
    out = tmp_path / "with-decisions"
    r = CliRunner().invoke(cli, ["train", "--with-decisions", "--database", decisions_db, "--out", str(out),
                                 "--train-dir", str(tiny.train), "--data-dir", str(tiny.data),
                                 "--rules-dir", str(RULES)])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    d = meta["decisions"]
    assert d["exported"] == len(SCAM) * len(PLACES) + 1 and d["trained"] == len(SCAM) * len(PLACES)
    assert d["near_duplicates_of_validation"] == 1 and d["split"] == "training side only" and d["since"] is None
    entry = [f for f in meta["data"] if f["kind"] == "decisions"]
    assert entry and entry[0]["labels"] == {"fraud": 24} and entry[0]["sha256"] == d["sha256"]
    # the validation split is the one the recipe makes without them (the frozen split)
    assert meta["split"] == tiny.good_meta["split"]
    assert meta["metrics"]["validation_rows"] == tiny.good_meta["metrics"]["validation_rows"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Reviewer decisions" in card and "--with-decisions" in card
    assert "the reviewers' decisions (smsguard export-training), training side only" in card
    # and the model learnt from them: a new message in that wording scores fraud
    clf = load_classifier(out)
    from app.engine.normalize import normalize

    p = clf.predict_one(normalize("老城客户您好，您的zorblax账户已冻结，请速回电解冻").text)
    assert p[LABELS.index("fraud")] > 0.5
    assert load_classifier(tiny.good).predict_one(normalize("老城客户您好，您的zorblax账户已冻结").text)[
        LABELS.index("fraud")] < 0.5


def test_with_decisions_needs_some(migrated_url, tiny, tmp_path):
    r = CliRunner().invoke(cli, ["train", "--with-decisions", "--database", migrated_url, "--out",
                                 str(tmp_path / "m"), "--train-dir", str(tiny.train), "--data-dir", str(tiny.data)])
    assert r.exit_code != 0 and "no reviewer decisions to train with" in r.output
    assert not (tmp_path / "m").exists()
    r = CliRunner().invoke(cli, ["train", "--decisions-since", "2026-01-01", "--out", str(tmp_path / "m")])
    assert r.exit_code != 0 and "go with --with-decisions" in r.output
    r = CliRunner().invoke(cli, ["train", "--with-decisions", "--database", migrated_url,
                                 "--decisions-since", "last week", "--out", str(tmp_path / "m")])
    assert r.exit_code != 0 and "not a date" in r.output


def test_decision_weights_apply_only_to_decision_rows():
    rows = [ds.Row("a", (), "zh", "x", "", "f"), ds.Row("b", ("fraud",), "zh", "decisions", "", "d")]
    rows[1].meta["decisions"] = True
    params = dict(train_mod.DEFAULTS)
    w = train_mod.sample_weights(rows, np.arange(2), np.array([0, 1]), params)
    assert w[0] == 1.0 and w[1] >= train_mod.DECISIONS_WEIGHT
