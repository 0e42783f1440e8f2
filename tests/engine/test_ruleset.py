"""Loading, validation, versioning and hot reload of the rule files."""
from __future__ import annotations

import random
import time

import pytest
import yaml

from app.engine.moderator import Moderator
from app.engine.ruleset import RuleError, RuleSetManager, load_ruleset, load_selftests

from .conftest import write_rules


def test_loads_and_summarises(rules_dir):
    rs = load_ruleset(rules_dir)
    assert len(rs.version) == 16
    s = rs.summary()
    declared = yaml.safe_load((rules_dir / "patterns.yaml").read_text(encoding="utf-8"))["patterns"]
    assert len(declared) >= 10  # the shipped patterns file, every entry loaded
    assert s["keyword_rules"] == 11 and s["pattern_rules"] == len(declared) and s["allow_phrases"] == 4
    assert "external/fraud.txt" in rs.files and "keywords/gambling.yaml" in rs.files


def test_version_is_content_hash(tmp_path):
    a = load_ruleset(write_rules(tmp_path / "a"))
    b = load_ruleset(write_rules(tmp_path / "b"))
    assert a.version == b.version  # same content, other place
    (tmp_path / "b" / "external" / "fraud.txt").write_text("安全账户\n新词条\n", encoding="utf-8")
    assert load_ruleset(tmp_path / "b").version != a.version  # an external list is rule content
    (tmp_path / "a" / "selftest").mkdir()
    (tmp_path / "a" / "selftest" / "x.yaml").write_text("category: fraud\nmust_match: [安全账户]\n", encoding="utf-8")
    (tmp_path / "a" / "README.md").write_text("docs", encoding="utf-8")
    assert load_ruleset(tmp_path / "a").version == a.version  # examples and docs are not


BROKEN = [
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - id: KW_X\n    terms: [a, b\n", "invalid YAML"),
    ("keywords/gambling.yaml", "category: casino\nrules: []\n", "not a category"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: kw_lower, terms: [百家乐]}\n", "UPPER_SNAKE"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, terms: [百家乐], colour: red}\n", "unknown key"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, action: ban, terms: [百家乐]}\n", "action"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, score: high, terms: [百家乐]}\n", "score"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, lang: fr, terms: [百家乐]}\n", "lang"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, lang: en, pinyin: true, terms: [bet]}\n", "pinyin"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X}\n", "no terms"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, lang: en, terms: [x]}\n", "single character"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, terms: ['\u200b']}\n", "empty"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, file: external/missing.txt}\n", "not found"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_X, file: ../../etc/passwd}\n", "outside"),
    ("keywords/gambling.yaml", "category: gambling\nrules:\n  - {id: KW_PORN_SERVICES, terms: [百家乐]}\n", "duplicate rule id"),
    ("policy.yaml", "thresholds: {review: 10, reject: 5}\n", "review must be lower"),
    ("allow.yaml", "phrases: [{phrase: 平台独家, categories: [nope]}]\n", "unknown categories"),
    ("variants.yaml", "variants:\n  微信: 威信\n", "list"),
    ("patterns.yaml", "patterns:\n  - {id: PAT_X, regex: '('}\n", "bad regex"),
    ("patterns.yaml", "patterns:\n  - {id: PAT_X, regex: '(a+)+b'}\n", "repeats a repetition"),
    ("patterns.yaml", "patterns:\n  - {id: PAT_X, regex: '(x{1,9}){2,}y'}\n", "repeats a repetition"),
    ("categories.yaml", "categories:\n  - {id: Fraud}\n", "lower_snake"),
    ("context.yaml", "rules:\n  - {id: KW_CTX_X, score: 3, terms: [请勿参与]}\n", "score must be 0 or negative"),
    ("context.yaml", "rules:\n  - {id: KW_CTX_X, action: reject, terms: [请勿参与]}\n", "unknown key"),
    ("context.yaml", "rules:\n  - {id: KW_GAMBLING_CASINO, score: -6, terms: [请勿参与]}\n", "duplicate rule id"),
    ("context.yaml", "rules: {id: KW_CTX_X}\n", "expected a list"),
]


def test_context_rules_hit_every_category_with_a_context_action(rules_dir):
    (rules_dir / "context.yaml").write_text(
        "rules:\n  - {id: KW_CTX_TEST, score: -6, terms: [请勿参与]}\n", encoding="utf-8")
    rs = load_ruleset(rules_dir)
    (rule,) = [r for r in rs.keyword_rules if r.id == "KW_CTX_TEST"]
    assert rule.category is None and rule.action == "context" and rule.source == "context.yaml"
    (rules_dir / "context.yaml").unlink()
    assert not [r for r in load_ruleset(rules_dir).keyword_rules if r.action == "context"]  # the file is optional


@pytest.mark.parametrize("path, content, message", BROKEN)
def test_broken_files_are_reported(rules_dir, path, content, message):
    (rules_dir / path).write_text(content, encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_ruleset(rules_dir)
    text = str(exc.value)
    assert message in text and "\n" not in text
    assert path in text  # the file is named (a duplicate id names both files)


def test_hot_reload_swaps_rules(rules_dir):
    m = Moderator.from_paths(rules_dir, watch=True, poll_interval=0.05)
    try:
        v0 = m.ruleset_version
        assert m.check("新型暗语").verdict == "allow"
        path = rules_dir / "keywords" / "fraud.yaml"
        path.write_text(path.read_text(encoding="utf-8") + "  - {id: KW_FRAUD_NEW, action: reject, score: 10, terms: [新型暗语]}\n",
                        encoding="utf-8")
        deadline = time.time() + 10
        while m.ruleset_version == v0 and time.time() < deadline:
            time.sleep(0.05)
        assert m.ruleset_version != v0
        v = m.check("新型暗语")
        assert v.verdict == "reject" and v.forced_by == "KW_FRAUD_NEW" and v.ruleset_version == m.ruleset_version
        assert m.status()["rules"]["reloads"] == 1 and m.status()["rules"]["watching"]
    finally:
        m.close()
    assert not m.status()["rules"]["watching"]


def test_broken_file_keeps_rules_in_force(rules_dir, caplog):
    m = Moderator.from_paths(rules_dir, watch=True, poll_interval=0.05)
    try:
        v0 = m.ruleset_version
        (rules_dir / "keywords" / "gambling.yaml").write_text("category: gambling\nrules: [\n", encoding="utf-8")
        deadline = time.time() + 10
        while m.status()["rules"]["last_error"] is None and time.time() < deadline:
            time.sleep(0.05)
        status = m.status()["rules"]
        assert "keywords/gambling.yaml: invalid YAML" in status["last_error"]
        assert m.ruleset_version == v0 and status["version"] == v0
        assert m.check("百家乐").verdict == "reject"  # the old rules still answer
        # fixing the file clears the error and loads the fix
        (rules_dir / "keywords" / "gambling.yaml").write_text("category: gambling\nrules: []\n", encoding="utf-8")
        deadline = time.time() + 10
        while m.ruleset_version == v0 and time.time() < deadline:
            time.sleep(0.05)
        assert m.status()["rules"]["last_error"] is None
        assert m.check("百家乐").verdict == "allow"
    finally:
        m.close()


def test_reload_method_and_no_change(rules_dir):
    mgr = RuleSetManager(rules_dir, watch=False)
    assert mgr.reload() is False  # same content
    assert mgr.check_for_changes() is False
    (rules_dir / "allow.yaml").write_text("phrases: [平台独家, 新短语]\n", encoding="utf-8")
    assert mgr.check_for_changes() is True
    assert "新短语" in [p.phrase for p in mgr.current.allow]
    mgr.close()


def test_initial_broken_rules_raise(rules_dir):
    (rules_dir / "policy.yaml").write_text("thresholds: [\n", encoding="utf-8")
    with pytest.raises(RuleError):
        Moderator.from_paths(rules_dir, watch=False)


def test_fifty_thousand_external_terms(rules_dir):
    rng = random.Random(3)
    alphabet = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可"
    terms = {"".join(rng.choice(alphabet) for _ in range(rng.randint(3, 6))) for _ in range(52000)}
    terms = sorted(terms)[:50000]
    (rules_dir / "external" / "big.txt").write_text("\n".join(terms) + "\n", encoding="utf-8")
    (rules_dir / "keywords" / "big.yaml").write_text(
        "category: fraud\nrules:\n  - {id: KW_BIG_LIST, action: score, score: 1, lang: zh, file: external/big.txt}\n",
        encoding="utf-8")
    t = time.perf_counter()
    rs = load_ruleset(rules_dir)
    elapsed = time.perf_counter() - t
    assert rs.summary()["terms"] >= 50000
    assert elapsed < 15, elapsed  # bench/bench_keywords.py measures the real figure (~1-2 s)
    m = Moderator.from_paths(rules_dir, watch=False)
    try:
        assert "KW_BIG_LIST" in {h.rule for h in m.check(f"前缀{terms[1234]}后缀").reasons}
    finally:
        m.close()


def test_selftest_loading(rules_dir):
    (rules_dir / "selftest").mkdir()
    (rules_dir / "selftest" / "gambling.yaml").write_text(
        "category: gambling\nmust_match:\n  - text: 百家乐\n    verdict: reject\nmust_not_match:\n  - 六合区\n",
        encoding="utf-8")
    cases = load_selftests(rules_dir)
    assert [(c.kind, c.text, c.verdict) for c in cases] == [("must_match", "百家乐", "reject"), ("must_not_match", "六合区", None)]
    (rules_dir / "selftest" / "gambling.yaml").write_text("category: gambling\nmust_match:\n  - {txt: 1}\n", encoding="utf-8")
    with pytest.raises(RuleError):
        load_selftests(rules_dir)
