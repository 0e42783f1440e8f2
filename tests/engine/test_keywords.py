"""Keyword layer: one automaton, evasion, hard negatives, variants, pinyin, allow-list, accounts."""
from __future__ import annotations

import pytest

from app.engine.keywords import ACCOUNT_BLOCK_RULE, ACCOUNT_REVIEW_RULE, CustomLists, _expand


def rules_of(v):
    return {h.rule for h in v.reasons}


def hit(v, rule):
    return next(h for h in v.reasons if h.rule == rule)


@pytest.mark.parametrize("text, rule, evidence", [
    ("澳门百家乐上线", "KW_GAMBLING_CASINO", "百家乐"),
    ("澳门百 家 乐上线", "KW_GAMBLING_CASINO", "百 家 乐"),          # spaces
    ("澳门百*家#乐上线", "KW_GAMBLING_CASINO", "百*家#乐"),          # symbols
    ("澳门百✨家🎲乐上线", "KW_GAMBLING_CASINO", "百✨家🎲乐"),        # emoji
    ("澳门百\u200b家\u200d乐上线", "KW_GAMBLING_CASINO", "百\u200b家\u200d乐"),  # zero-width
    ("澳门百家樂上线", "KW_GAMBLING_CASINO", "百家樂"),              # traditional
    ("澳門賭場開業", "KW_GAMBLING_CASINO", "賭場"),
    ("菠菜平台注册送彩金", "KW_GAMBLING_CASINO", "菠菜平台"),         # variant inside a term
    ("加威信领取", "KW_FRAUD_CONTACT", "加威信领取"),                  # 威信 for 微信
    ("加V信领取", "KW_FRAUD_CONTACT", "加V信领取"),
    ("加vx领取", "KW_FRAUD_CONTACT", "加vx领取"),
    ("加ＶＸ领取", "KW_FRAUD_CONTACT", "加ＶＸ领取"),                  # full-width variant
    ("美女luo聊一对一", "KW_PORN_SERVICES", "luo聊"),                 # mixed pinyin
    ("美女luoliao一对一", "KW_PORN_SERVICES", "luoliao"),             # pure pinyin
    ("今晚du场见", "KW_GAMBLING_CASINO", "du场"),
    ("fa轮功好", "KW_CULT_FALUN", "fa轮功"),
    ("FA轮功好", "KW_CULT_FALUN", "FA轮功"),
    ("buy Аpple pie now", "KW_ABUSE_EN", "Аpple pie"),             # Cyrillic А
    ("free p0rn here", "KW_PORN_EN", "p0rn"),                         # digits as letters
    ("cheap v1agra", "KW_PORN_EN", "v1agra"),
    ("fuuuuck off", "KW_ABUSE_EN", "fuuuuck"),                        # repeats
    ("f.u.c.k off", "KW_ABUSE_EN", "f.u.c.k"),                        # split letters
    ("what a\u200dss", "KW_PORN_EN", "a\u200dss"),
    ("ｐｏｒｎ", "KW_PORN_EN", "ｐｏｒｎ"),                           # full-width
    ("注意安全账户", "KW_FRAUD_EXTERNAL", "安全账户"),                 # external file: list
])
def test_evasion_is_caught(moderator, text, rule, evidence):
    v = moderator.check(text)
    assert rule in rules_of(v), v.to_dict()
    h = hit(v, rule)
    assert h.evidence == evidence
    assert text[h.span[0]:h.span[1]] == evidence
    assert h.detector == "keyword"


@pytest.mark.parametrize("text, rule", [
    ("本平台独家发售", "KW_POLITICS_SEPARATISM"),      # 平台独家 holds 台独
    ("六合区政府提醒您注意防汛", "KW_GAMBLING_LOTTERY"),  # 六合区 holds 六合
    ("前方路口交通管制", "KW_PORN_SERVICES"),           # 路口交通 holds 口交
    ("a classic movie", "KW_PORN_EN"),                 # classic holds ass
    ("passport and assistant", "KW_PORN_EN"),
    ("Essex and sussex", "KW_PORN_EN"),                 # whole words only
    ("pineapple pie", "KW_ABUSE_EN"),
    ("今天菠菜很新鲜", "KW_GAMBLING_CASINO"),           # a variant never fires alone
    ("他很有威信", "KW_FRAUD_CONTACT"),
    ("今天我们去裸泳", "KW_PORN_SERVICES"),
    ("落聊天记录", "KW_PORN_SERVICES"),                # pure-CJK homophone: not via pinyin
    ("这是赌博危害的宣传", "KW_GAMBLING_CASINO"),       # category-scoped allow phrase
    ("sofa轮功", "KW_CULT_FALUN"),                     # pinyin must start a Latin word
])
def test_hard_negatives(moderator, text, rule):
    assert rule not in rules_of(moderator.check(text))


def test_allow_phrase_only_cancels_hits_inside_it(moderator):
    v = moderator.check("平台独家：台独分子")
    h = hit(v, "KW_POLITICS_SEPARATISM")
    assert h.evidence == "台独" and h.span == (5, 7)


def test_category_scoped_allow_keeps_other_categories(rules_dir):
    from app.engine.moderator import Moderator

    kw = rules_dir / "keywords" / "abuse.yaml"
    kw.write_text(kw.read_text(encoding="utf-8") + "  - id: KW_ABUSE_HARM\n    description: x\n    action: score\n"
                  "    score: 2\n    lang: zh\n    terms: [博危害]\n", encoding="utf-8")
    m = Moderator.from_paths(rules_dir, watch=False)
    try:
        v = m.check("这是赌博危害的宣传")
        assert "KW_GAMBLING_CASINO" not in rules_of(v)
        assert "KW_ABUSE_HARM" in rules_of(v)
    finally:
        m.close()


def test_one_hit_per_rule_first_occurrence(moderator):
    v = moderator.check("百家乐 龙虎斗 百家乐")
    hits = [h for h in v.reasons if h.rule == "KW_GAMBLING_CASINO"]
    assert len(hits) == 1 and hits[0].span == (0, 3)


def test_hit_fields(moderator):
    h = hit(moderator.check("来玩百家乐"), "KW_GAMBLING_CASINO")
    assert h.category == "gambling" and h.score == 10 and h.action == "reject"
    assert h.description == "casino game names" and h.span == (2, 5) and h.evidence == "百家乐"


def test_score_action_has_no_action(moderator):
    h = hit(moderator.check("六合彩开奖"), "KW_GAMBLING_LOTTERY")
    assert h.action is None and h.score == 6


# ---------------------------------------------------------------------------- accounts


def test_account_lists_block_review_allow(moderator):
    acme = CustomLists(account="ACME", version="1", block=[("竞品公司", "marketing")],
                       review=[("退款", None)], allow=["百家乐酒店"])
    v = moderator.check("竞品公司的百家乐酒店可以退款", account_lists=acme)
    rules = rules_of(v)
    assert ACCOUNT_BLOCK_RULE in rules and ACCOUNT_REVIEW_RULE in rules
    assert "KW_GAMBLING_CASINO" not in rules  # the account's allow phrase
    block = hit(v, ACCOUNT_BLOCK_RULE)
    assert block.evidence == "竞品公司" and block.action == "reject" and block.category == "marketing"


def test_account_lists_never_leak(moderator):
    acme = CustomLists(account="ACME", version="1", block=[("暗号甲", "fraud")])
    other = CustomLists(account="OTHER", version="1", block=[("暗号乙", "fraud")])
    assert ACCOUNT_BLOCK_RULE in rules_of(moderator.check("暗号甲", account_lists=acme))
    assert ACCOUNT_BLOCK_RULE not in rules_of(moderator.check("暗号甲", account_lists=other))
    assert ACCOUNT_BLOCK_RULE not in rules_of(moderator.check("暗号甲"))
    assert ACCOUNT_BLOCK_RULE in rules_of(moderator.check("暗号乙", account_lists=other))
    assert ACCOUNT_BLOCK_RULE not in rules_of(moderator.check("暗号乙", account_lists=acme))
    # the account's allow list does not whitelist anything for another account
    acme_allow = CustomLists(account="ACME", version="2", allow=["百家乐"])
    assert "KW_GAMBLING_CASINO" not in rules_of(moderator.check("百家乐", account_lists=acme_allow))
    assert "KW_GAMBLING_CASINO" in rules_of(moderator.check("百家乐", account_lists=other))


def test_account_lists_cached_per_account_and_version(moderator):
    kw = moderator.ruleset.keywords
    a1 = CustomLists(account="ACME", version="1", block=[("暗号甲", None)])
    assert kw.compile_account(a1) is kw.compile_account(CustomLists(account="ACME", version="1", block=[("暗号甲", None)]))
    a2 = CustomLists(account="ACME", version="2", block=[("暗号丙", None)])
    m2 = kw.compile_account(a2)
    assert m2 is not kw.compile_account(a1)
    assert ACCOUNT_BLOCK_RULE in rules_of(moderator.check("暗号丙", account_lists=a2))
    assert ACCOUNT_BLOCK_RULE not in rules_of(moderator.check("暗号丙", account_lists=a1))
    assert ("ACME", "1") in kw.cached_accounts and ("ACME", "2") in kw.cached_accounts


def test_account_en_terms_whole_word(moderator):
    acme = CustomLists(account="ACME", version="1", block=[("scam", "fraud")])
    assert ACCOUNT_BLOCK_RULE in rules_of(moderator.check("this is a scam", account_lists=acme))
    assert ACCOUNT_BLOCK_RULE not in rules_of(moderator.check("scampi tonight", account_lists=acme))


def test_account_en_terms_match_with_a_masked_vowel_like_the_shipped_lists(moderator):
    acme = CustomLists(account="ACME", version="1", block=[("competitor", "marketing")])
    v = moderator.check("try c*mpetitor instead", account_lists=acme)
    assert hit(v, ACCOUNT_BLOCK_RULE).evidence == "c*mpetitor"
    assert ACCOUNT_BLOCK_RULE not in rules_of(moderator.check("try c*mp instead", account_lists=acme))


def test_latin_variants_replace_whole_words_only():
    # a canonical form in Latin letters is a word: "you -> u" gives "kill u", never "ung" from young
    variants = {"you're": ("ur", "your"), "your": ("ur",), "you": ("u",), "i will": ("i'll", "ill"), "i'll": ("ill",)}
    order = sorted(variants, key=len, reverse=True)
    assert set(_expand("i will kill you", variants, frozenset(), order)) == {
        "i will kill you", "i'll kill you", "ill kill you", "i will kill u", "i'll kill u", "ill kill u"}
    assert _expand("young people", variants, frozenset(), order) == ["young people"]
    assert set(_expand("you're dead", variants, frozenset(), order)) == {"you're dead", "ur dead", "your dead"}
    # a Latin canonical inside Chinese text still counts as a word (加qq群)
    assert _expand("加qq群", {"qq": ("扣扣",)}, frozenset(), ["qq"]) == ["加qq群", "加扣扣群"]
