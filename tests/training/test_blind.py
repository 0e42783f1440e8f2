"""`smsguard evaluate --blind FILE`: a labelled set scored by the full engine, counted by kind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.engine.moderator import Moderator
from app.training import blind

RULES = Path(__file__).resolve().parents[2] / "rules"


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"text": "【顺丰速运】您的快件已到小区驿站，取件码 5-2-1108", "labels": [], "kind": "transactional", "lang": "zh"},
    {"text": "Dinner at 7? I'll book the table", "labels": [], "kind": "personal", "lang": "en"},
    {"text": "澳门百家乐真人荷官，首充送88，官网 t.cn/xyz", "labels": ["gambling"], "kind": "evasion", "lang": "zh"},
]


def test_counts_by_side_kind_and_language():
    with Moderator.from_paths(RULES, None, watch=False) as m:
        res = blind.score_set(m, ROWS)
    g = res["groups"]
    assert g[("legitimate", "all", "all")] == {"rows": 2, "rejected": 0, "review": 0}
    assert g[("legitimate", "transactional", "zh")]["rows"] == 1
    assert g[("prohibited", "all", "all")] == {"rows": 1, "rejected": 1, "review": 0}
    assert [r["verdict"] for r in res["rows"]] == ["allow", "allow", "reject"]
    lines = blind.table_lines(res)
    assert any(line.startswith("prohibited  all") and "100.00%" in line for line in lines)


def test_malformed_sets_are_refused_naming_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "labels": []}\n{"text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2: not JSON"):
        blind.read_set(bad)
    _write(bad, [{"labels": []}])
    with pytest.raises(ValueError, match="bad.jsonl:1: expected an object with a text"):
        blind.read_set(bad)
    bad.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no messages"):
        blind.read_set(bad)


def test_cli_scores_a_set_and_refuses_a_broken_one_in_one_line(tmp_path):
    good = _write(tmp_path / "set.jsonl", ROWS)
    r = CliRunner().invoke(cli, ["evaluate", "--blind", str(good), "--model", str(tmp_path)])
    # the folder holds no model: one line naming the problem, no traceback
    assert r.exit_code == 1 and "ModelMismatchError" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["evaluate", "--blind", str(good), "--engine"])
    assert r.exit_code == 2 and "--blind cannot be combined" in r.output
    r = CliRunner().invoke(cli, ["evaluate", "--blind", str(good), "--dump", str(tmp_path / "d.jsonl")])
    assert r.exit_code == 2 and "--blind cannot be combined" in r.output and not (tmp_path / "d.jsonl").exists()


def test_misses_are_the_legitimate_rows_held_and_the_prohibited_rows_let_through():
    rows = [dict(ROWS[0]), dict(ROWS[2], labels=[]), dict(ROWS[1], labels=["fraud"])]
    with Moderator.from_paths(RULES, None, watch=False) as m:
        res = blind.score_set(m, rows)
    missed = blind.misses(res)
    assert [(r["side"], r["verdict"]) for r in missed] == [("legitimate", "reject"), ("prohibited", "allow")]
    rule, score, action, evidence = missed[0]["rules"][0]
    assert rule.startswith("KW_GAMBLING") and evidence in rows[1]["text"]


def test_prohibited_rows_are_counted_per_category_scenario_and_evasion():
    rows = [
        {"text": "澳门百家乐真人荷官，首充送88", "labels": ["gambling"], "kind": "prohibited", "lang": "zh", "evasion": False},
        {"text": "百🎲家🎲乐 上线送88", "labels": ["gambling"], "kind": "prohibited", "lang": "zh", "evasion": True},
        {"text": "您好，这里是市公安局刑侦支队，您的身份证涉嫌洗钱案件，请下载会议软件配合调查并对家人保密。",
         "labels": ["fraud"], "lang": "zh", "scenario": "fraud.impersonation_authority"},
    ]
    with Moderator.from_paths(RULES, None, watch=False) as m:
        g = blind.score_set(m, rows)["groups"]
    assert g[("prohibited", "gambling", "all")]["rows"] == 2
    assert g[("prohibited", "evasion", "zh")]["rows"] == 1
    assert g[("prohibited", "fraud.impersonation_authority", "all")] == {"rows": 1, "rejected": 1, "review": 0}
    assert g[("prohibited", "all", "all")]["rows"] == 3  # each row once in the totals
