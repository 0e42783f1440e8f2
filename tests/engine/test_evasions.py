"""Evasions that issue 13 saw pass: contact ids in Chinese numerals, web addresses spelled out,
English terms with a letter masked (b*mb, k!ll).
Each finding points at the original text."""
from __future__ import annotations

import pytest


def _hit(v, rule):
    return next((h for h in v.reasons if h.rule == rule), None)


@pytest.mark.parametrize("text, rule, evidence", [
    ("加扣扣 壹贰叁肆伍陆柒捌玖 看片", "PAT_QQ_ID", "加扣扣 壹贰叁肆伍陆柒捌玖"),
    ("加薇信：wx一二三四五六七八 领取福利", "PAT_WECHAT_ID", "wx一二三四五六七八"),
    ("qq 两六八零零九九七", "PAT_QQ_ID", "qq 两六八零零九九七"),
    ("网址 am88 点 com 上线送88", "PAT_URL_SPELLED", "am88 点 com"),
    ("网址：ａｍ８８。ｃｏｍ", "PAT_URL_SPELLED", "ａｍ８８。ｃｏｍ"),
    ("visit luckyspin dot com tonight", "PAT_URL_SPELLED", "luckyspin dot com"),
    ("地址不全，请点 youzheng-ems . cn-kd . top 修改", "PAT_URL_SPELLED", "youzheng-ems . cn-kd . top"),
    ("claim at bet365 . com now", "PAT_URL_SPELLED", "bet365 . com"),
    ("verify now at secure-pay dot live", "PAT_URL_SPELLED", "secure-pay dot live"),
    ("下载：zjh 点 fun 提现秒到", "PAT_URL_SPELLED", "zjh 点 fun"),
    ("claim at prize-hub . shop today", "PAT_URL_SPELLED", "prize-hub . shop"),
    ("Learn to make a pipe b*mb, video course", "KW_VIOLENCE_EN", "make a pipe b*mb"),
    ("k!ll yourself loser", "KW_ABUSE_EN_STRONG", "k!ll yourself"),
    ("K*LL YOURSELF loser", "KW_ABUSE_EN_STRONG", "K*LL YOURSELF"),
])
def test_evasions_are_found_with_their_original_span(shipped, text, rule, evidence):
    v = shipped.check(text)
    h = _hit(v, rule)
    assert h is not None, [x.rule for x in v.reasons]
    assert h.evidence == evidence and text[h.span[0]:h.span[1]] == evidence


@pytest.mark.parametrize("text", [
    "明天下午3点开会，记得带电脑",
    "我们一二三四五六七八个人一起去",
    "I'll see you at the dot com party",
    "Meet me at the polka dot shop on King St",
    "Got a red dot sight for my airsoft, fun day",
    "Your prepaid SIM expires in 5 days. Top up to keep your number.",
    "Loan approved. Net proceeds will be credited today.",
    "第一二三名的奖品已经发放",
])
def test_ordinary_numbers_and_times_are_not_contact_ids_or_addresses(shipped, text):
    v = shipped.check(text)
    assert not [h for h in v.reasons if h.rule in ("PAT_QQ_ID", "PAT_WECHAT_ID", "PAT_URL_SPELLED")]


def test_a_spelled_address_alone_goes_to_review(shipped):
    v = shipped.check("网址：ａｍ８８。ｃｏｍ")
    assert v.verdict == "review"


@pytest.mark.parametrize("masked, plain", [
    ("Learn to make a pipe b*mb, video course", "Learn to make a pipe bomb, video course"),
    ("k!ll yourself loser", "kill yourself loser"),
    ("K*LL YOURSELF loser", "KILL YOURSELF loser"),
])
def test_a_masked_english_term_is_decided_like_the_plain_one(shipped, masked, plain):
    v, w = shipped.check(masked), shipped.check(plain)
    assert v.verdict == w.verdict == "reject"
    assert [h.rule for h in v.reasons] == [h.rule for h in w.reasons]


@pytest.mark.parametrize("text", [
    "Rated 5* by guests, the best b&b in town",
    "Hi!Is the bomb-disposal documentary on tonight?",
    "*important* call mum back",
    "pipe *bomb* is a band name lol",
])
def test_stars_and_bangs_as_punctuation_do_not_make_a_term(shipped, text):
    v = shipped.check(text)
    assert v.verdict == "allow", [(h.rule, h.evidence) for h in v.reasons]
