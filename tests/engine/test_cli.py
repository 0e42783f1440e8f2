"""`smsguard check` and `smsguard rules check|test` through click's CliRunner."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import cli


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("SMSGUARD_MODEL_DIR", "none")
    return CliRunner()


def test_check_json(runner, rules_dir):
    r = runner.invoke(cli, ["check", "--rules-dir", str(rules_dir), "--json", "澳门百家乐"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["verdict"] == "reject" and d["reasons"][0]["evidence"] == "百家乐" and d["model_version"] is None


def test_check_text(runner, rules_dir):
    r = runner.invoke(cli, ["check", "--rules-dir", str(rules_dir), "加威信领取"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ALLOW") and "KW_FRAUD_CONTACT" in r.output and "'加威信领取'" in r.output


def test_check_account_lists_file(runner, rules_dir, tmp_path):
    lists = tmp_path / "acme.yaml"
    lists.write_text("block:\n  - {term: 暗号甲, category: fraud}\nallow: [百家乐酒店]\n", encoding="utf-8")
    r = runner.invoke(cli, ["check", "--rules-dir", str(rules_dir), "--account", "ACME", "--lists", str(lists),
                            "--json", "暗号甲 百家乐酒店"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert [x["rule"] for x in d["reasons"]] == ["KW_ACCOUNT_BLOCK"]


def test_rules_check_ok(runner, rules_dir):
    r = runner.invoke(cli, ["rules", "check", "--rules-dir", str(rules_dir)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ok: ") and "11 keyword rules" in r.output


def test_rules_check_broken(runner, rules_dir):
    (rules_dir / "keywords" / "fraud.yaml").write_text("category: fraud\nrules:\n  - {id: KW_X, action: ban, terms: [x1]}\n")
    r = runner.invoke(cli, ["rules", "check", "--rules-dir", str(rules_dir)])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "keywords/fraud.yaml" in lines[0] and "action" in lines[0]


def test_rules_check_broken_via_main(rules_dir, tmp_path, monkeypatch, capsys):
    from app.cli import main

    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(tmp_path / "instance"))
    (rules_dir / "policy.yaml").write_text("thresholds: [\n")
    assert main(["rules", "check", "--rules-dir", str(rules_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("smsguard: error: policy.yaml: invalid YAML") and "\n" not in err


def test_rules_test(runner, rules_dir):
    (rules_dir / "selftest").mkdir()
    (rules_dir / "selftest" / "gambling.yaml").write_text(
        "category: gambling\nmust_match:\n  - {text: 澳门百家乐, verdict: reject}\nmust_not_match:\n  - 六合区政府\n")
    r = runner.invoke(cli, ["rules", "test", "--rules-dir", str(rules_dir)])
    assert r.exit_code == 0, r.output
    assert r.output.count("PASS") == 2 and "2 passed, 0 failed" in r.output
    (rules_dir / "selftest" / "gambling.yaml").write_text("category: gambling\nmust_match:\n  - 今天天气不错\n")
    r = runner.invoke(cli, ["rules", "test", "--rules-dir", str(rules_dir)])
    assert r.exit_code == 1 and "FAIL" in r.output and "0 passed, 1 failed" in r.output
