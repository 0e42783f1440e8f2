"""Pattern rules: links, phones, contact diversion, money; linear on hostile input."""
from __future__ import annotations

import time

import pytest

from app.engine.normalize import normalize
from app.engine.patterns import PatternMatcher


def found(moderator, text):
    return [(h.rule, h.evidence) for h in moderator.ruleset.patterns.match(normalize(text))]


@pytest.mark.parametrize("text, expected", [
    ("点击 http://t.cn/A6x9 领取", [("PAT_SHORT_LINK", "http://t.cn/A6x9")]),
    ("详见 dwz.cn/abc 。", [("PAT_SHORT_LINK", "dwz.cn/abc")]),
    ("访问 https://www.example.com/a?b=1 查看", [("PAT_URL", "https://www.example.com/a?b=1")]),
    ("登录abc-pay.top/verify更新", [("PAT_URL", "abc-pay.top/verify")]),
    ("邮箱 foo@qq.com", []),
    ("加威信abc12345领取", [("PAT_WECHAT_ID", "加威信abc12345")]),
    ("ＶＸ：wx_8899aa", [("PAT_WECHAT_ID", "ＶＸ：wx_8899aa")]),
    ("扣扣 123456789", [("PAT_QQ_ID", "扣扣 123456789")]),
    ("QQ群:87654321", [("PAT_QQ_ID", "QQ群:87654321")]),
    ("致电 138 1234 5678", [("PAT_PHONE_CN_MOBILE", "138 1234 5678")]),
    ("+86 13812345678", [("PAT_PHONE_CN_MOBILE", "+86 13812345678")]),
    ("电话 010-87654321", [("PAT_PHONE_CN_LANDLINE", "010-87654321")]),
    ("热线 400-800-1234", [("PAT_PHONE_SERVICE", "400-800-1234")]),
    ("call +1 415 555 2671", [("PAT_PHONE_INTL", "+1 415 555 2671")]),
    ("订单号 213812345678901", []),                # digits inside a longer number
    ("共￥1,280.50，另付200元", [("PAT_MONEY", "200元"), ("PAT_MONEY", "￥1,280.50")]),
    ("ｖｘ：１３８１２３４５６７８", [("PAT_WECHAT_ID", "ｖｘ：１３８１２３４５６７８"),
                                ("PAT_PHONE_CN_MOBILE", "１３８１２３４５６７８")]),
])
def test_patterns(moderator, text, expected):
    assert sorted(found(moderator, text)) == sorted(expected)


def test_pattern_hit_fields(moderator):
    v = moderator.check("加vx abcdef1 详谈")
    h = next(h for h in v.reasons if h.rule == "PAT_WECHAT_ID")
    assert h.detector == "pattern" and h.category is None and h.score == 3
    assert h.span == (0, 11) and h.evidence == "加vx abcdef1"


@pytest.mark.parametrize("hostile", [
    "1" * 100_000, "1," * 50_000, "a." * 50_000, "a" * 100_000, "微信" * 50_000,
    "+" + "1 " * 50_000, "http://" + "a" * 100_000, ("x" * 60 + ".") * 1600, "¥" + "9" * 100_000,
])
def test_linear_on_hostile_input(moderator, hostile):
    t = time.perf_counter()
    moderator.check(hostile)
    assert time.perf_counter() - t < 5.0


def test_operator_regex_and_groups():
    pm = PatternMatcher.from_config({
        "patterns": [
            {"id": "PAT_PHONE_CN_MOBILE", "builtin": "cn_mobile", "score": 0},
            {"id": "PAT_ORDER_NO", "regex": r"订单\d{6}", "score": 1, "group": "phone"},
            {"id": "PAT_TICKET", "regex": r"tk-\d{4}", "score": 2, "category": "fraud"},
        ]}, {"fraud": None})
    hits = pm.match(normalize("订单13812345678 和 TK-1234"))
    assert [(h.rule, h.evidence) for h in hits] == [("PAT_PHONE_CN_MOBILE", "13812345678"), ("PAT_TICKET", "TK-1234")]


@pytest.mark.parametrize("doc", [
    {"patterns": [{"id": "PAT_X", "regex": "a*"}]},                     # matches empty
    {"patterns": [{"id": "PAT_X", "regex": "("}]},                      # bad regex
    {"patterns": [{"id": "PAT_X", "builtin": "nope"}]},
    {"patterns": [{"id": "KW_X", "builtin": "url"}]},
    {"patterns": [{"id": "PAT_X", "builtin": "url", "regex": "x"}]},
    {"patterns": [{"id": "PAT_X", "builtin": "url"}, {"id": "PAT_Y", "builtin": "url"}]},
    {"patterns": [{"id": "PAT_X", "builtin": "url", "colour": "red"}]},
    {"pattern": []},
])
def test_pattern_config_errors(doc):
    with pytest.raises(ValueError):
        PatternMatcher.from_config(doc, {})


def test_a_host_with_more_labels_is_matched_whole():
    """netflix.com.verify-acct.io is one host (the lookalike's), not netflix.com and the rest."""
    pm = PatternMatcher.from_config({"patterns": [{"id": "PAT_URL", "builtin": "url", "score": 1}]}, {})
    links = lambda t: [h.evidence for h in pm.match(normalize(t))]  # noqa: E731
    assert links("pay at netflix.com.verify-acct.io/login now") == ["netflix.com.verify-acct.io/login"]
    assert links("see a.com.cn/x and mydhl.dhl.com") == ["a.com.cn/x", "mydhl.dhl.com"]
    assert links("visit example.com.Then call") == ["example.com"]


OFFICIAL = {
    "official_domains": ["netflix.com", "dhl.com", "gov.uk"],
    "patterns": [
        {"id": "PAT_SHORT_LINK", "builtin": "short_link", "score": 2},
        {"id": "PAT_URL", "builtin": "url", "score": 1},
        {"id": "PAT_PHONE_CN_MOBILE", "builtin": "cn_mobile", "score": 0},
        {"id": "PAT_PHONE_INTL", "builtin": "intl_phone", "score": 0},
        {"id": "PAT_WECHAT_ID", "builtin": "wechat_id", "score": 3},
        {"id": "PAT_BIDI_CONTROL", "builtin": "bidi_control", "score": 5, "action": "review"},
        {"id": "PAT_OFFICIAL_LINK", "builtin": "official_link", "category": "fraud", "score": -8},
    ]}


@pytest.mark.parametrize("text, official", [
    ("Your payment failed. Update it at netflix.com/account", "netflix.com/account"),
    ("Track at https://www.dhl.com/track?id=1 or mydhl.dhl.com", "https://www.dhl.com/track?id=1"),
    ("Pay your tax at https://www.gov.uk/pay", "https://www.gov.uk/pay"),
    ("Update at netflix.com.verify-acct.io/login", None),          # a lookalike host
    ("Update at netflix-billing.com/login", None),                  # a lookalike name
    ("Update at mynetflix.com/login", None),                        # ends with the name, not a subdomain
    ("Pay at https://pay.tax.gov.uk/now", "https://pay.tax.gov.uk/now"),  # a subdomain two levels down
    ("Update at http://netflix.com@evil.top/x", None),              # user info before the real host
    ("Update at netflix.com/account or bit.ly/3xY", None),          # one link is not official
    ("Update at netflix.com/account or call +44 7700 900123", None),  # another way to act
    ("DHL 包裹请访问 dhl.com 或加微信 dhl88888 处理", None),
    ("Your payment failed, please update your details", None),      # no link at all
    ("Update at \u202emoc.xilften\u202c and netflix.com", None),   # text that displays otherwise
])
def test_official_link_only_when_every_link_is_the_senders(text, official):
    pm = PatternMatcher.from_config(OFFICIAL, {"fraud": None})
    hits = [h for h in pm.match(normalize(text)) if h.rule == "PAT_OFFICIAL_LINK"]
    assert [h.evidence for h in hits] == ([official] if official else [])
    if hits:
        assert hits[0].category == "fraud" and hits[0].score == -8


def test_official_link_demotes_phishing_wording_but_never_a_lookalike(shipped):
    """The shipped rules: a genuine billing notice on the brand's own domain is not rejected; the
    same words with a lookalike domain still are."""
    genuine = shipped.check("Netflix: Your payment for the Standard plan failed. Please update your "
                            "payment info at netflix.com/account to keep watching.")
    fake = shipped.check("Netflix: Your payment for the Standard plan failed. Please update your "
                         "payment info at netflix.com.account-restore.top/login to keep watching.")
    assert genuine.verdict == "allow" and "PAT_OFFICIAL_LINK" in [h.rule for h in genuine.reasons]
    assert fake.verdict != "allow" and "fraud" in fake.categories
    assert "PAT_OFFICIAL_LINK" not in [h.rule for h in fake.reasons]


@pytest.mark.parametrize("verb", ["登入", "登录", "登陆", "进入", "访问", "点击"])
def test_the_bank_login_link_is_found_through_each_string_it_requires(shipped, verb):
    """PAT_BANK_LOGIN_LINK names its call words in ``requires:``: each of them still finds it,
    in either order of bank and link."""
    for text in (f"【某银行】您的账户存在异常，请{verb} http://bank-safe.top/v 验证",
                 f"请{verb} www.xy-bank.cc 完成认证，否则网银将停用"):
        rules = [h.rule for h in shipped.ruleset.patterns.match(normalize(text))]
        assert "PAT_BANK_LOGIN_LINK" in rules, text


def test_a_regex_with_requires_searches_only_texts_that_contain_one_of_them():
    cfg = {"patterns": [{"id": "PAT_ORDER", "regex": r"订单\d{4}", "requires": ["订单"], "score": 1},
                        {"id": "PAT_LOOSE", "regex": r"编号\d{4}", "requires": ["号码"], "score": 1}]}
    pm = PatternMatcher.from_config(cfg, {})
    assert [h.rule for h in pm.match(normalize("您的订单1234已发货"))] == ["PAT_ORDER"]
    # a wrong list hides matches: the regex would match, but no required string is there
    assert pm.match(normalize("编号5678")) == []


@pytest.mark.parametrize("entry", [
    {"id": "PAT_X", "regex": "a{2}", "requires": "aa"},
    {"id": "PAT_X", "regex": "a{2}", "requires": ["aa", ""]},
    {"id": "PAT_X", "builtin": "money", "requires": ["元"]},
])
def test_requires_is_a_list_of_strings_on_a_regex_rule(entry):
    with pytest.raises(ValueError, match="requires"):
        PatternMatcher.from_config({"patterns": [entry]}, {})
