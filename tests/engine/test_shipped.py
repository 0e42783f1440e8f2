"""The shipped rules (rules/): evasion examples, hard negatives, and the self-test examples of
rules/selftest/ (SpamAssassin style: every example is a test)."""
from __future__ import annotations

import pytest

from app.engine.ruleset import load_selftests

from .conftest import SHIPPED_RULES


def cats(v):
    return set(v.categories)


@pytest.mark.parametrize("text, category", [
    ("澳门百家乐上线，首充送88", "gambling"),
    ("澳门百 家 乐上线", "gambling"),            # spaces
    ("六✨合🎲彩开奖了", "gambling"),              # emoji
    ("六\u200b合\u200d彩开奖", "gambling"),       # zero-width
    ("六合彩開獎", "gambling"),                   # traditional
    ("菠菜平台注册送彩金", "gambling"),            # homophone variant inside a term
    ("出售威信号，批量", "contraband"),            # 威信 for 微信 inside 出售微信号
    ("出售V信号，批量", "contraband"),
    ("出售vx号，批量", "contraband"),
    ("美女luo聊一对一", "pornography"),            # mixed pinyin
    ("美女luoliao一对一", "pornography"),          # pure pinyin
    ("fa轮功好", "cult_superstition"),
    ("free p0rn videos", "pornography"),          # digits as letters
    ("ｐｏｒｎ videos", "pornography"),            # full-width
    ("cheap v1agra", "contraband"),
    ("fuuuuck you", "abuse"),                      # repeats
])
def test_shipped_evasion(shipped, text, category):
    v = shipped.check(text)
    assert category in cats(v), v.to_dict()


@pytest.mark.parametrize("text, category", [
    ("本平台独家发售新品，欢迎选购", "politics"),       # 平台独家 holds 台独
    ("六合区政府提醒您注意防汛", "gambling"),           # 六合区
    ("前方路口交通管制，请绕行", "pornography"),        # 路口交通 holds 口交
    ("a classic film tonight", "pornography"),         # classic holds ass
    ("今天菠菜很新鲜", "gambling"),                     # 菠菜 alone is a vegetable
    ("他在单位很有威信", "contraband"),
    ("如果聊得来，周末一起去爬山吧", "pornography"),
])
def test_shipped_hard_negatives(shipped, text, category):
    assert category not in cats(shipped.check(text))


def test_shipped_rules_load_clean(shipped):
    rs = shipped.ruleset
    assert rs.summary()["keyword_rules"] > 50
    assert set(rs.categories) >= {"politics", "hate", "cult_superstition", "rumor", "pornography", "gambling",
                                  "violence_terror", "abuse", "fraud", "contraband", "marketing"}


CASES = load_selftests(SHIPPED_RULES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}-{c.kind}-{i}" for i, c in enumerate(CASES)])
def test_shipped_selftests(shipped, case):
    from app.engine.moderator import run_selftests

    (result,) = run_selftests(shipped, [case])
    assert result.ok, result.message
