"""Every TPL_ rule with examples that must fire it and examples that must not (SpamAssassin style).
Pure library tests: no app, no database."""
from __future__ import annotations

import pytest

from app.engine import template_lint as tl
from app.engine.types import Hit, Verdict

V = {"code": "code"}

# rule -> (kind, [(content-or-name, type, variables) that FIRE it], [... that do NOT])
CASES: dict[str, tuple[str, list, list]] = {
    "TPL_SIGNATURE_LENGTH": ("signature", ["阿", "一二三四五六七八九十十一十二十三", "A"],
                             ["阿里", "ACME", "一二三四五六七八九十十一"]),
    "TPL_SIGNATURE_CHARSET": ("signature", ["【阿克米】", "阿克米 科技", "ACME-Tech", "阿克米！", "ＡＣＭＥ", "阿克米(中国)"],
                              ["阿克米科技", "ACME2024", "京东"]),
    "TPL_SIGNATURE_GENERIC": ("signature", ["测试", "Test", "客服通知", "客户您好", "测试签名一", "ACMEtest", "demoShop"],
                              ["阿克米科技", "Contestia", "顺丰速运"]),
    "TPL_TOO_LONG": ("template", [("通知" * 251, "notification", {})],
                     [("通知" * 250, "notification", {})]),
    "TPL_MALFORMED_VARIABLE": ("template", [("您的订单${1no}已发货", "notification", {}),
                                            ("您的订单${no已发货", "notification", {"no": "text"}),
                                            ("您的订单$no已发货", "notification", {})],
                               [("您的订单${no}已发货，共$5", "notification", {"no": "text"})]),
    "TPL_UNDECLARED_VARIABLE": ("template", [("您的订单${no}已发货", "notification", {})],
                                [("您的订单${no}已发货", "notification", {"no": "text"})]),
    "TPL_UNUSED_VARIABLE": ("template", [("您的订单已发货", "notification", {"no": "text"})],
                            [("您的订单${no}已发货", "notification", {"no": "text"})]),
    "TPL_VARIABLE_TYPE": ("template", [("您的订单${no}已发货", "notification", {"no": "colour"}),
                                       ("您的订单${no}已发货", "notification", {"no": "code:9"}),
                                       ("您的订单${no}已发货", "notification", {"no": "text:0"})],
                          [("您的订单${no}已发货", "notification", {"no": "text:20"}),
                           ("您的订单${no}已发货", "notification", {"no": {"type": "text", "max_length": 20}})]),
    "TPL_ADJACENT_VARIABLES": ("template", [("尊敬的${a}${b}您好", "notification", {"a": "name", "b": "name"}),
                                            ("尊敬的${a} ${b}您好", "notification", {"a": "name", "b": "name"})],
                               [("尊敬的${a}，${b}您好", "notification", {"a": "name", "b": "name"})]),
    "TPL_ONLY_VARIABLES": ("template", [("${a}", "notification", {"a": "text"}),
                                        ("${a}，${b}。", "notification", {"a": "text", "b": "text"})],
                           [("通知：${a}", "notification", {"a": "text"})]),
    "TPL_SHORTLINK_VARIABLE": ("template", [("详情见 t.cn/${x}", "notification", {"x": "text"}),
                                            ("详情见 https://bit.ly/${x}", "notification", {"x": "text"})],
                               [("详情见 t.cn/abc 编号${x}", "notification", {"x": "text"}),
                                ("详情见 https://shop.example.com/${x}", "notification", {"x": "text"})]),
    "TPL_BRACKETS": ("template", [("【阿克米】您的订单已发货", "notification", {})],
                     [("[阿克米]您的订单已发货", "notification", {})]),
    "TPL_VERIFICATION_WORDING": ("template", [("您的号码是${code}", "verification", V)],
                                 [("您的验证码是${code}", "verification", V),
                                  ("动态码${code}，请勿泄露", "verification", V),
                                  ("Your verification code is ${code}", "verification", V),
                                  ("Your OTP: ${code}", "verification", V)]),
    "TPL_VERIFICATION_CODE_VARIABLE": ("template", [("您的验证码是${n}", "verification", {"n": "number"}),
                                                    ("验证码${a}或${b}", "verification", {"a": "code", "b": "code"})],
                                       [("您的验证码是${code}", "verification", V)]),
    "TPL_VERIFICATION_LINK": ("template", [("验证码${code}，登录 https://acme.com", "verification", V),
                                           ("验证码${code}，登录 acme.cn/login", "verification", V),
                                           ("验证码${code}，登录${u}", "verification", {"code": "code", "u": "url"})],
                              [("验证码${code}，5分钟内有效。", "verification", V)]),
    "TPL_VERIFICATION_CONTACT": ("template", [("验证码${code}，详询13800138000", "verification", V),
                                              ("验证码${code}，客服400-123-4567", "verification", V),
                                              ("验证码${code}，客服010-12345678", "verification", V),
                                              ("验证码${code}，客服${p}", "verification", {"code": "code", "p": "phone"})],
                                 [("验证码${code}，10分钟内有效，订单2024001。", "verification", V)]),
    "TPL_MARKETING_CONTENT": ("template", [("验证码${code}，新用户领券立减", "verification", V),
                                           ("您的订单已发货，限时特价", "notification", {}),
                                           ("Your order shipped. 50% off today", "notification", {}),
                                           ("Your order shipped, big SALE now", "notification", {})],
                              [("您的订单已发货", "notification", {}),
                               ("Your order shipped. Salesforce ref 1", "notification", {}),
                               ("会员日全场8折，拒收请回复R", "promotional", {})]),
    "TPL_OPT_OUT_NOT_PROMOTIONAL": ("template", [("您的订单已发货，回T退订", "notification", {}),
                                                 ("验证码${code}，拒收请回复R", "verification", V),
                                                 ("Your order shipped. Reply STOP to opt out", "notification", {})],
                                    [("您的订单已发货", "notification", {}),
                                     ("新品上市，回T退订", "promotional", {})]),
    "TPL_PROMOTIONAL_OPT_OUT": ("template", [("新品上市，欢迎选购", "promotional", {}),
                                             ("回T退订，新品上市欢迎选购", "promotional", {})],
                                [("新品上市，欢迎选购，拒收请回复R", "promotional", {}),
                                 ("新品上市，欢迎选购。回T退订。", "promotional", {}),
                                 ("新品上市，退订回TD", "promotional", {}),
                                 ("New arrivals this week. Reply STOP to opt out.", "promotional", {}),
                                 ("新品上市，回ｔ退订", "promotional", {})]),
}


def _rules_of(kind: str, example) -> list[Hit]:
    if kind == "signature":
        return tl.lint_signature(example)
    content, typ, variables = example
    return tl.lint_template(content, typ, variables)


def _params():
    for rule, (kind, fire, quiet) in CASES.items():
        for ex in fire:
            yield pytest.param(rule, kind, ex, True, id=f"{rule}-fires-{str(ex)[:30]}")
        for ex in quiet:
            yield pytest.param(rule, kind, ex, False, id=f"{rule}-quiet-{str(ex)[:30]}")


@pytest.mark.parametrize("rule,kind,example,fires", list(_params()))
def test_rule_examples(rule, kind, example, fires):
    hits = _rules_of(kind, example)
    fired = [h for h in hits if h.rule == rule]
    assert bool(fired) == fires, (rule, example, [h.rule for h in hits])
    for h in fired:
        assert h.detector == "template" and h.description.startswith(tl.RULES[h.rule][1])
        if h.span is not None:
            text = example if kind == "signature" else example[0]
            assert text[h.span[0]:h.span[1]] == h.evidence


def test_every_lint_rule_has_examples():
    lint_rules = {r for r, (applies, _) in tl.RULES.items() if applies != "params"}
    assert lint_rules == set(CASES)


def test_clean_templates_have_no_findings():
    assert tl.lint_template("您的验证码为${code}，5分钟内有效，请勿泄露给他人。", "verification", V) == []
    assert tl.lint_template("尊敬的${name}，您的订单${no}已于${d}发货。", "notification",
                            {"name": "name", "no": "text:20", "d": "date"}) == []
    assert tl.lint_template("${name}您好，会员日全场8折，拒收请回复R", "promotional", {"name": "name"}) == []
    assert tl.lint_signature("阿克米科技") == []


def test_rule_actions_come_from_the_yaml():
    hit = next(h for h in tl.lint_template("您的订单已发货，限时特价", "notification", {})
               if h.rule == "TPL_MARKETING_CONTENT")
    assert hit.action == "review" and hit.score == 5
    hit = tl.lint_template("【阿克米】您好", "notification", {})[0]
    assert hit.action == "reject" and hit.score == 10


# ----------------------------------------------------------------------------- masking

def test_mask_reads_naturally_and_maps_spans_back():
    content = "验证码${code}，请勿泄露给${name}。"
    m = tl.mask(content, {"code": "code", "name": "name"})
    assert m.text == "验证码482915，请勿泄露给张三。"
    assert "${" not in m.text
    # a span inside literal text
    a = m.text.index("泄露")
    assert m.span(a, a + 2) == (content.index("泄露"), content.index("泄露") + 2)
    # a span inside a placeholder covers the whole variable as written
    a = m.text.index("4829")
    s = m.span(a, a + 4)
    assert content[s[0]:s[1]] == "${code}"
    # a span across a placeholder's edge
    a = m.text.index("码4")
    s = m.span(a, a + 2)
    assert content[s[0]:s[1]] == "码${code}"


def test_mask_placeholders_by_region_and_undeclared():
    assert tl.mask("Hi ${n}", {"n": "name"}, region="intl").text == "Hi Alex"
    assert tl.mask("你好${x}", {}).text == "你好内容"


def test_remap_moves_engine_reasons_and_keeps_lint_hits():
    content = "${name}您好，百家乐"
    m = tl.mask(content, {"name": "name"})
    a = m.text.index("百家乐")
    engine = Hit("KW_X", "gambling", "keyword", 6.0, evidence="百家乐", span=(a, a + 3))
    lint = Hit("TPL_BRACKETS", None, "template", 10.0, evidence="x", span=(0, 1))
    v = m.remap(Verdict("review", ("gambling",), 6.0, (engine, lint)))
    assert v.reasons[0].span == (content.index("百家乐"), content.index("百家乐") + 3)
    assert v.reasons[0].evidence == "百家乐"
    assert v.reasons[1] is lint


def test_masked_template_through_the_engine(moderator):
    content = "${name}您好，百家乐新玩法上线，拒收请回复R"
    hits = tl.lint_template(content, "promotional", {"name": "name"})
    m = tl.mask(content, {"name": "name"})
    v = m.remap(moderator.check(m.text, extra_hits=hits))
    assert "gambling" in v.categories
    for r in v.reasons:
        if r.span is not None:
            assert content[r.span[0]:r.span[1]] == r.evidence


# ----------------------------------------------------------------------------- params

def test_check_params_types():
    variables = {"code": "code", "amt": "money", "d": "date", "t": "time", "who": "name",
                 "tel": "phone", "link": "url", "n": "number", "note": "text:10"}
    good = {"code": "482915", "amt": "1,299.00", "d": "2025-01-15", "t": "10:30", "who": "张三",
            "tel": "13800138000", "link": "https://acme.com/o/1", "n": 3, "note": "请及时取件"}
    assert tl.check_params(variables, good) == []
    assert tl.fill("码${code} ${n}件 ${note}", variables, good) == "码482915 3件 请及时取件"


@pytest.mark.parametrize("vtype,value,rule", [
    ("code", "https://t.cn/x", "TPL_PARAM_TYPE"),
    ("code", "t.cn/ab1", "TPL_PARAM_TYPE"),
    ("code", "12", "TPL_PARAM_TYPE"),
    ("number", "12a", "TPL_PARAM_TYPE"),
    ("money", "一百元", "TPL_PARAM_TYPE"),
    ("date", "tomorrow", "TPL_PARAM_TYPE"),
    ("time", "25点半", "TPL_PARAM_TYPE"),
    ("name", "加微信abc123", "TPL_PARAM_TYPE"),
    ("phone", "call me", "TPL_PARAM_TYPE"),
    ("url", "not a link", "TPL_PARAM_TYPE"),
    ("text", "x" * 36, "TPL_PARAM_TOO_LONG"),
    ("text:5", "123456", "TPL_PARAM_TOO_LONG"),
    ("text", "点击 bit.ly/abc", "TPL_PARAM_LINK"),
    ("name", "a" * 5000, "TPL_PARAM_TOO_LONG"),
])
def test_check_params_failures(vtype, value, rule):
    hits = tl.check_params({"v": vtype}, {"v": value})
    assert [h.rule for h in hits] == [rule]
    with pytest.raises(tl.ParamError) as exc:
        tl.fill("值${v}", {"v": vtype}, {"v": value})
    assert exc.value.hits[0].rule == rule


def test_check_params_missing_and_unknown():
    hits = tl.check_params({"a": "text"}, {"b": "x"})
    assert sorted(h.rule for h in hits) == ["TPL_PARAM_MISSING", "TPL_PARAM_UNKNOWN"]
    assert tl.fill("${a}!", {"a": "text"}, {"a": "hi", "extra": 1}) == "hi!"  # unknown alone does not raise
    assert tl.fill("${a}${b}", {"a": "text"}, {"a": "hi"}, check=False) == "hi${b}"


# ----------------------------------------------------------------------------- the rules file

def test_variables_parse_and_canonical():
    assert tl.canonical_variables({"a": "code", "b": "text:20", "c": {"type": "text", "max_length": 35},
                                   "d": {"type": "url"}}) == {"a": "code", "b": "text:20", "c": "text", "d": "url"}
    for bad in ({"1a": "code"}, {"a": "code:3"}, {"a": "text:x"}, {"a": 5}, {"a": "text:999"}):
        with pytest.raises(ValueError):
            tl.parse_variables(bad)


def test_broken_rules_file_keeps_the_rules_in_force(tmp_path):
    import os
    import shutil

    path = tmp_path / "templates.yaml"
    shutil.copy(tl.DEFAULT_PATH, path)
    first = tl.load(path)
    assert first.template_max_chars == 500
    path.write_text(path.read_text(encoding="utf-8").replace("template_max_chars: 500", "template_max_chars: 80"),
                    encoding="utf-8")
    os.utime(path, ns=(1, 1_000_000_000))
    changed = tl.load(path)
    assert changed.template_max_chars == 80  # picked up without a restart
    path.write_text("limits: [broken", encoding="utf-8")
    os.utime(path, ns=(1, 2_000_000_000))
    assert tl.load(path) is changed  # broken: the rules in force stay
    with pytest.raises(ValueError):
        tl.parse_rules({"rules": {"TPL_NOPE": {}}, "variable_types": {}})


def test_review_policy_setting():
    r = tl.load()
    assert r.auto_approve("verification") and r.auto_approve("notification")
    assert not r.auto_approve("promotional") and not r.auto_approve("signature")
