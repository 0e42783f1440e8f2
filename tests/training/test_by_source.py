"""Leave one source out (`smsguard evaluate --by-source`) on small corpora written here."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.training.by_source import _counts, evaluate_by_source, table_lines, write_report

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SMALL = dict(synthetic_zh=20, synthetic_en=5, folds=2, min_df=1, jobs=1)

# a made-up rumour wording that no keyword rule knows: only the classifier can learn it
RUMOR = ["{}的水里有zorblax，大家注意", "听说{}水厂有zorblax了，喝了会头晕",
         "{}那边的zorblax事件是真的，水不能喝"]
PLACES = ["东城", "西城", "南岸", "北湖", "江北", "河西", "新区", "老城", "高新", "滨江", "临港", "城南"]
NORMAL = ["{}小区本周六上午停水检修，请提前储水，给您带来不便敬请谅解",
          "周末一起去{}吃饭吧，我请客", "{}图书馆明天闭馆一天，后天照常开放",
          "快递放在{}驿站了，取件码{}", "明天{}有雨，出门记得带伞"]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def corpora(tmp_path):
    train, data = tmp_path / "train", tmp_path / "data"
    train.mkdir()
    data.mkdir()
    normal = [{"text": t.format(p, 1000 + i), "labels": [], "source": "ordinary"}
              for i, p in enumerate(PLACES) for t in NORMAL]
    _write(train / "zh_ordinary.jsonl", normal)
    rumours = [{"text": t.format(p), "labels": ["rumor"], "source": "rumours"} for p in PLACES for t in RUMOR]
    _write(train / "zh_rumours.jsonl", rumours)
    # a social-media source: not held out unless named
    _write(train / "zh_weibo.jsonl", [{"text": f"今天{p}的天气真好，出去走走", "labels": [], "source": "cold"}
                                      for p in PLACES])
    # the project's own file repeats one rumour of zh_rumours: a near-duplicate across sources
    _write(data / "zh_written.jsonl", [{"text": RUMOR[0].format("东城"), "labels": ["rumor"]}] +
           [{"text": f"{p}社区提醒：近期天气干燥，注意用火安全", "labels": []} for p in PLACES])
    return train, data


def test_each_sms_source_is_held_out_and_scored_by_the_engine(corpora):
    train, data = corpora
    res = evaluate_by_source(RULES, train_dir=train, data_dir=data, **SMALL)
    by = res["sources"]
    assert list(by) == ["ordinary", "rumours", "data/zh_written.jsonl"]  # cold (social media) not by default
    assert by["ordinary"]["normals"] == len(PLACES) * len(NORMAL) and by["ordinary"]["prohibited"] == 0
    assert by["rumours"]["prohibited"] == len(PLACES) * len(RUMOR)
    # held out whole: without the rumours corpus nothing teaches "zorblax" rumours (the one
    # near-duplicate in data/ is left out of training too), so none is rejected or flagged
    assert by["rumours"]["prohibited_flag_rate"] == 0.0
    assert by["rumours"]["near_duplicates_left_out"] == 1
    # holding out data/ leaves out the whole template group it shares with the rumours corpus
    assert by["data/zh_written.jsonl"]["near_duplicates_left_out"] == len(PLACES)
    for c in by.values():
        assert c["normal_rejected"] + c["normal_review"] <= c["normals"]


def test_sources_can_be_named_and_unknown_names_are_refused(corpora):
    train, data = corpora
    res = evaluate_by_source(RULES, train_dir=train, data_dir=data, sources=["cold"], **SMALL)
    assert list(res["sources"]) == ["cold"] and res["sources"]["cold"]["normals"] == len(PLACES)
    with pytest.raises(ValueError, match="unknown source.*nope.*known: ordinary"):
        evaluate_by_source(RULES, train_dir=train, data_dir=data, sources=["nope"], **SMALL)


def test_sources_joined_with_plus_are_one_fold_and_dump_their_signals(corpora, tmp_path):
    """``a+b`` holds both sources out of one training; ``--dump`` writes every held-out row's
    probabilities (the aggregate head's among them) and keyword and pattern hits."""
    train, data = corpora
    dump = tmp_path / "dump.jsonl"
    r = CliRunner().invoke(cli, ["evaluate", "--by-source", "--sources", "ordinary+rumours", "--train-dir", str(train),
                                 "--data-dir", str(data), "--dump", str(dump)])
    assert r.exit_code == 0, r.output
    assert "ordinary+rumours" in r.output
    rows = [json.loads(x) for x in dump.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(PLACES) * (len(NORMAL) + len(RUMOR))
    assert {x["source"] for x in rows} == {"ordinary", "rumours"}
    one = next(x for x in rows if x["source"] == "rumours")
    assert one["labels"] == ["rumor"] and one["lang"] == "zh" and one["units"] > 0
    assert set(one["probs"]) >= {"rumor", "prohibited"} and all(0 <= p <= 1 for p in one["probs"].values())
    assert isinstance(one["evidence"], list)
    # what the dump holds is what fit-decision reads
    from app.training.decision_fit import load_dump
    assert len(load_dump([dump])) == len(rows)
    with pytest.raises(ValueError, match="unknown source.*nope"):
        evaluate_by_source(RULES, train_dir=train, data_dir=data, sources=["ordinary+nope"], **SMALL)


def test_cli_refuses_an_unknown_source_in_one_line(corpora):
    train, data = corpora
    r = CliRunner().invoke(cli, ["evaluate", "--by-source", "--sources", "nope", "--train-dir", str(train),
                                 "--data-dir", str(data)])
    assert r.exit_code != 0
    assert "unknown source(s) nope" in r.output and "Traceback" not in r.output


def test_cli_refuses_by_source_with_split_options():
    r = CliRunner().invoke(cli, ["evaluate", "--by-source", "--engine"])
    assert r.exit_code == 2 and "--by-source cannot be combined" in r.output
    r = CliRunner().invoke(cli, ["evaluate", "--sources", "fbs"])
    assert r.exit_code == 2 and "--sources, --report, --misses and --dump go with --by-source" in r.output


def test_cli_prints_the_table_then_fails_in_one_line_when_the_report_cannot_be_written(corpora, tmp_path):
    train, data = corpora
    r = CliRunner().invoke(cli, ["evaluate", "--by-source", "--sources", "ordinary", "--train-dir", str(train),
                                 "--data-dir", str(data), "--report", str(tmp_path / "missing" / "r.md")])
    assert r.exit_code == 1
    assert "ordinary" in r.output and "cannot write" in r.output and "Traceback" not in r.output


def test_cli_tries_another_recipe_on_a_held_out_source_and_reports_it(corpora, tmp_path):
    """--set KEY=VALUE: the recipe experiment behind a change of app/training/train.py, run with
    the project's own command; the report says which settings differed from the shipped ones."""
    train, data = corpora
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]
    r = CliRunner().invoke(cli, ["evaluate", "--by-source", "--sources", "ordinary", "--train-dir", str(train),
                                 "--data-dir", str(data), "--report", str(tmp_path / "r.md"), *sets,
                                 "--set", "project_weight=6"])
    assert r.exit_code == 0, r.output
    report = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "synthetic_zh=20" in report and "project_weight=6.0" in report and "| ordinary |" in report


@pytest.mark.parametrize("item, says", [
    ("nope=1", "expected KEY=VALUE with KEY one of"),
    ("project_weight", "expected KEY=VALUE"),
    ("seed=3", "the seed is --seed"),
    ("max_features=lots", "max_features takes a whole number"),
    ("aggregate_head=maybe", "aggregate_head takes true or false"),
])
def test_cli_refuses_a_bad_recipe_setting_in_one_line(item, says):
    r = CliRunner().invoke(cli, ["evaluate", "--by-source", "--set", item])
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output


def test_cli_refuses_a_recipe_setting_without_by_source():
    r = CliRunner().invoke(cli, ["evaluate", "--set", "min_df=1"])
    assert r.exit_code == 2 and "--set goes with --by-source" in r.output


def test_a_writers_files_are_held_out_together(tmp_path):
    """Rows naming a ``writer`` are one held-out unit across files: the rumour wording that only
    this writer used (in two files) is not learnt from the writer's other file."""
    train, data = tmp_path / "train", tmp_path / "data"
    train.mkdir()
    data.mkdir()
    _write(train / "zh_ordinary.jsonl", [{"text": t.format(p, 1000 + i), "labels": [], "source": "ordinary"}
                                         for i, p in enumerate(PLACES) for t in NORMAL])
    half = len(PLACES) // 2
    for name, places in (("w9_a.jsonl", PLACES[:half]), ("w9_b.jsonl", PLACES[half:])):
        _write(data / name, [{"text": t.format(p), "labels": ["rumor"], "writer": "w9"}
                             for p in places for t in RUMOR])
    res = evaluate_by_source(RULES, train_dir=train, data_dir=data, **SMALL)
    by = res["sources"]
    assert list(by) == ["ordinary", "writer:w9"]
    assert by["writer:w9"]["prohibited"] == len(PLACES) * len(RUMOR)
    assert by["writer:w9"]["prohibited_flag_rate"] == 0.0
    assert by["writer:w9"]["categories"] == {"rumor": {"rows": len(PLACES) * len(RUMOR), "rejected": 0,
                                                       "flagged": 0, "reject_rate": 0.0, "flag_rate": 0.0}}
    # a file held out alone (by its name) is not a unit when its rows name a writer
    with pytest.raises(ValueError, match="unknown source.*data/w9_a.jsonl"):
        evaluate_by_source(RULES, train_dir=train, data_dir=data, sources=["data/w9_a.jsonl"], **SMALL)


def test_per_category_figures_are_counted_and_reported(tmp_path):
    from app.training.dataset import Row

    def row(labels):
        return Row(text="x", labels=tuple(labels), lang="zh", source="s", orig="", file="f")

    rows = [row(["fraud"]), row(["fraud"]), row(["fraud", "gambling"]), row(["gambling"]), row([])]
    c = _counts(rows, ["reject", "review", "reject", "allow", "allow"])
    assert c["categories"]["fraud"] == {"rows": 3, "rejected": 2, "flagged": 3, "reject_rate": 0.66667,
                                        "flag_rate": 1.0}
    assert c["categories"]["gambling"]["rows"] == 2 and c["categories"]["gambling"]["rejected"] == 1
    result = {"sources": {"writer:w9": c}, "seed": 13, "seconds": 1.0}
    assert any("writer:w9" in ln and "gambling" in ln and "50.00%" in ln for ln in table_lines(result))
    write_report(tmp_path / "r.md", result, "smsguard evaluate --by-source")
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| writer:w9 | fraud | 3 | 66.67% | 100.00% |" in text
