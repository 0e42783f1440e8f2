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


@pytest.mark.parametrize("text, verdict", [
    # police notices that describe task-rebate fraud: the warning (要当心, 正规招聘不会) offsets
    # the scene's words and forces nothing; with four fraud rules at once a person reads it
    ("南湖派出所温馨提示：兼职点赞、关注博主拿佣金的广告要当心，正规招聘不会让你先充值垫付。", "allow"),
    ("东湖派出所提醒：网上兼职刷单、点赞返佣金的广告要当心，正规招聘不会让你先垫付钱款。", "review"),
    ("News: man jailed 10 years for threatening to bomb a school online.", "allow"),
    ("Mum just msged, she's safe. she was near the bomb scare at the mall but it was a false alarm", "allow"),
])
def test_shipped_notices_that_describe_a_scene_are_not_rejected(shipped, text, verdict):
    v = shipped.check(text)
    assert v.verdict == verdict, v.to_dict()


@pytest.mark.parametrize("text, rule", [
    ("Sunday night the synagogue on Park Row goes up before the service, bring petrol", "KW_VIOLENCE_SCENE_EN_ARSON_CALL"),
    ("今晚集合，冲进去把那家超市能拿什么拿什么", "KW_VIOLENCE_SCENE_LOOTING_CALL"),
    ("贵州猴子别来我们厂打工了，全都赶回去", "KW_HATE_SCENE_ANIMAL"),
    # an animal emoji between two characters is a word, not a separator (normalize.WORD_EMOJI)
    ("湖北🐶又跑出来丢人现眼了", "KW_HATE_SCENE_ANIMAL"),
    ("Underground poker at the warehouse sat, 2k buy-in, text for the address", "KW_GAMBLING_EN_UNDERGROUND"),
])
def test_shipped_calls_to_attack_animal_slurs_and_unlicensed_gambling_reject(shipped, text, rule):
    v = shipped.check(text)
    assert v.verdict == "reject" and rule in {h.rule for h in v.reasons}


@pytest.mark.parametrize("text, rule, evidence", [
    # a phone's typographic apostrophe matches a term written with '
    ("I\u2019ll stab you if you come near her again", "KW_VIOLENCE_EN", "I\u2019ll stab you"),
    # text-speak spellings of a term written once in plain English (variants.yaml, whole words)
    ("im going to kill u and nobody will find u", "KW_VIOLENCE_EN", "im going to kill u"),
    ("ur days r numbered, u cant hide", "KW_ABUSE_EN_MENACE", "u cant hide"),
])
def test_shipped_english_terms_match_phone_apostrophes_and_text_speak(shipped, text, rule, evidence):
    v = shipped.check(text)
    hit = next(h for h in v.reasons if h.rule == rule)
    assert hit.evidence == evidence and text[hit.span[0]:hit.span[1]] == evidence


def test_shipped_pinyin_for_a_syllable_of_a_hired_violence_term(shipped):
    # mai凶 is 买凶 with its first syllable in pinyin; the hit's evidence is the original text
    v = shipped.check("有人出钱mai凶吗，要他一条腿，价格私聊")
    hit = next(h for h in v.reasons if h.rule == "KW_VIOLENCE_HIRED_TOPIC")
    assert hit.evidence == "mai凶" and v.verdict != "allow"


@pytest.mark.parametrize("text, rule", [
    # the same words in a zoo outing and a police report: their context cancels the composite
    ("带孩子去北京动物园看猴子，猴山那边人好多", "KW_HATE_SCENE_ANIMAL"),
    ("Police raided an illegal cockfight in the county on Sunday and arrested 12 people", "KW_GAMBLING_EN_UNDERGROUND"),
])
def test_shipped_context_cancels_the_same_words_in_a_zoo_outing_or_a_raid_report(shipped, text, rule):
    v = shipped.check(text)
    assert rule in {h.rule for h in v.reasons}  # the words are found and shown...
    assert v.verdict == "allow"  # ...and the context outweighs them


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
