"""Composite keyword rules (groups of terms that must occur together within N characters) and
subcategories (the scenario a rule names): issue 13."""
from __future__ import annotations

import pytest

from app.engine.moderator import Moderator
from app.engine.ruleset import RuleError, load_ruleset
from tests.engine.conftest import write_rules

FRAUD = """
category: fraud
rules:
  - id: KW_FRAUD_POLICE_SAFE_ACCOUNT
    description: someone claiming to be police demands money moved to a "safe account"
    action: reject
    score: 10
    subcategory: fraud.impersonation_authority
    within: 40
    groups:
      who: [公安局, 民警, 警官]
      demand: [安全账户, 资金清查]
  - id: KW_FRAUD_EN_PARCEL_FEE
    description: a parcel held until a fee is paid through a link
    action: reject
    score: 10
    lang: en
    subcategory: fraud.phishing_link
    within: 80
    groups:
      parcel: [parcel, package]
      fee: [redelivery fee, customs fee]
"""


@pytest.fixture
def engine(tmp_path):
    m = Moderator.from_paths(write_rules(tmp_path / "rules", {"fraud": FRAUD}), watch=False)
    yield m
    m.close()


def test_fires_when_every_group_occurs_within_the_window_and_gives_each_part(engine):
    text = "您好，我是市公安局民警，您的账户涉案，请立即将资金转入安全账户。"
    v = engine.check(text)
    assert v.verdict == "reject" and v.forced_by == "KW_FRAUD_POLICE_SAFE_ACCOUNT"
    assert v.subcategories == ("fraud.impersonation_authority",)
    (h,) = [h for h in v.reasons if h.rule == "KW_FRAUD_POLICE_SAFE_ACCOUNT"]
    groups = {g: (ev, span) for g, ev, span in h.parts}
    assert set(groups) == {"who", "demand"}
    for ev, (a, b) in groups.values():
        assert text[a:b] == ev  # every part points at the original text
    assert text[h.span[0]:h.span[1]] == h.evidence and h.evidence.endswith("安全账户")
    d = v.to_dict()
    assert d["subcategories"] == ["fraud.impersonation_authority"]
    assert d["reasons"][0]["parts"][0]["group"] == "who"


def test_one_group_alone_or_groups_too_far_apart_do_not_fire(engine):
    assert engine.check("【平安银行】安全账户升级通知").verdict == "allow"
    assert engine.check("社区民警提醒您注意防火").verdict == "allow"
    far = "民警" + "，今天天气很好" * 8 + "，安全账户"
    assert engine.check(far).verdict == "allow"


def test_the_narrowest_window_is_chosen_among_repeated_parts(engine):
    text = "民警" + "。" * 50 + "警官说：请转入安全账户"
    v = engine.check(text)
    (h,) = [h for h in v.reasons if h.rule == "KW_FRAUD_POLICE_SAFE_ACCOUNT"]
    assert dict((g, ev) for g, ev, _s in h.parts) == {"who": "警官", "demand": "安全账户"}


def test_parts_are_found_through_normalisation_and_english_parts_match_whole_words(engine):
    v = engine.check("民 警通知：请把钱转到 安·全·账·户")
    assert v.verdict == "reject"
    assert engine.check("USPS: your package is held, pay the redelivery fee at usps-care.top").verdict == "reject"
    assert engine.check("The packages arrived; the redelivery fees are refunded").verdict == "allow"


HATE = """
category: hate
rules:
  - id: KW_HATE_REGION_CHEATS
    description: the people of a province called cheats as a group
    action: score
    score: 10
    lang: zh
    pinyin: true
    within: 14
    groups:
      group: [河南人, 贵州人]
      slur: [都是骗子, 没一个好东西]
"""


@pytest.mark.parametrize("text, evidence", [
    ("河南人都是骗子", "河南人都是骗子"),
    ("he南人都是骗子，传下去", "he南人都是骗子"),       # a syllable in pinyin
    ("H南人都是骗子", "H南人都是骗子"),                 # an initial, two syllables kept
    ("贵Z人没一个好东西", "贵Z人没一个好东西"),
    ("贵州人dou是pian子", "贵州人dou是pian子"),         # the other group in pinyin
])
def test_a_composite_with_pinyin_matches_its_parts_in_pinyin_and_initials(tmp_path, text, evidence):
    m = Moderator.from_paths(write_rules(tmp_path / "rules", {"hate": HATE}), watch=False)
    try:
        (h,) = [h for h in m.check(text).reasons if h.rule == "KW_HATE_REGION_CHEATS"]
        assert h.evidence == evidence and text[h.span[0]:h.span[1]] == evidence
        assert {g for g, _e, _s in h.parts} == {"group", "slur"}
    finally:
        m.close()


@pytest.mark.parametrize("text", [
    "hnr 都是骗子",               # initials only: any Latin word, no match
    "HN人都是骗子",               # one syllable kept: a letter beside a character is everywhere
    "河南人都是好人",             # one group only
    "我们去he南吃饭，都是骗子的话别信",  # 河南 is not 河南人
])
def test_a_composite_with_pinyin_needs_a_whole_syllable_and_every_group(tmp_path, text):
    m = Moderator.from_paths(write_rules(tmp_path / "rules", {"hate": HATE}), watch=False)
    try:
        assert not [h for h in m.check(text).reasons if h.rule == "KW_HATE_REGION_CHEATS"]
    finally:
        m.close()


@pytest.mark.parametrize("body, message", [
    ("  - {id: KW_X, within: 10, groups: {a: [民警]}}\n", "at least two group"),
    ("  - {id: KW_X, groups: {a: [民警], b: [安全账户]}}\n", "within must be"),
    ("  - {id: KW_X, within: 5000, groups: {a: [民警], b: [安全账户]}}\n", "within must be"),
    ("  - {id: KW_X, within: 10, terms: [x1], groups: {a: [民警], b: [安全账户]}}\n", "not terms"),
    ("  - {id: KW_X, within: 10, groups: {a: [民警], b: []}}\n", "non-empty list"),
    ("  - {id: KW_X, within: 10, terms: [安全账户]}\n", "within goes with groups"),
    ("  - {id: KW_X, subcategory: fraud.nonsense, terms: [安全账户]}\n", "not declared"),
    ("  - {id: KW_X, subcategory: gambling.casino, terms: [安全账户]}\n", "not declared"),
])
def test_malformed_composite_and_subcategory_rules_are_refused(tmp_path, body, message):
    root = write_rules(tmp_path / "rules", {"fraud": "category: fraud\nrules:\n" + body})
    with pytest.raises(RuleError) as exc:
        load_ruleset(root)
    assert message in str(exc.value) and "keywords/fraud.yaml" in str(exc.value)


def test_shipped_subcategories_are_declared_per_category():
    from app.config import PROJECT_ROOT

    rs = load_ruleset(PROJECT_ROOT / "rules")
    assert "fraud.impersonation_authority" in rs.categories["fraud"].subcategories
    for r in rs.keyword_rules:
        if r.subcategory is not None:
            assert r.subcategory.startswith(r.category + ".") and r.subcategory in rs.categories[r.category].subcategories


def test_every_declared_subcategory_is_documented():
    from app.config import PROJECT_ROOT

    doc = (PROJECT_ROOT / "docs" / "subcategories.md").read_text(encoding="utf-8")
    rs = load_ruleset(PROJECT_ROOT / "rules")
    for c in rs.categories.values():
        for sub in c.subcategories:
            assert f"`{sub}`" in doc, sub

