"""SMSGUARD_CHECK_TEXT=masked: digits and contact ids replaced one for one (spans still index
the text), evidence masked alike, no digit of a phone number or a code survives; none: no text."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from app.services import checks
from app.services.checks import Item, build_row, mask_phone, mask_text

from .conftest import make_template

SECRETS = ("13800138000", "482915", "987654321", "lucky_888", "zhang.san", "AbC12")
TEXT = ("验证码482915，客服电话13800138000，加微信 lucky_888 或 QQ 987654321，"
        "邮箱 zhang.san@example.com，详情 https://t.cn/AbC12?u=13800138000")


def _no_secret(s: str) -> None:
    for sec in SECRETS:
        assert sec not in s, f"{sec!r} survived in {s!r}"


@pytest.mark.parametrize("text", [
    TEXT,
    "Your code is 4829 15. Call +1 (415) 555-0100 or mail bob.smith@gmail.com",
    "ＶＸ：ｌｕｃｋｙ８８８ 全角数字１３８００１３８０００",
    "wechat: lucky_888; telegram @lucky888; whatsapp +447700900123",
    "电话一三八零零一三八零零零，①②③④⑤",
    "www.example.com/reset?token=9f8e7d6c and bit.ly/3xYzAbC",
    "",
])
def test_masking_keeps_the_length_and_leaves_no_digit(text):
    m = mask_text(text)
    assert len(m) == len(text)
    assert not re.search(r"\d", m), m
    for sec in SECRETS:
        assert sec not in m


def test_masking_keeps_words_and_hosts():
    m = mask_text(TEXT)
    _no_secret(m)
    assert m.startswith("验证码******，客服电话***********，加微信 ********* 或 QQ *********，")
    assert "@example.com" in m and "https://t.cn/" in m
    assert m[m.index("t.cn/") + 5] == "*"


def test_phone_masking():
    assert mask_phone("+8613800138000") == "+86*******8000"
    assert mask_phone("+14155550100") == "+1******0100"
    assert mask_phone(None) is None


def _verdict(moderator, text):
    v = moderator.check(text)
    assert any(r.evidence for r in v.reasons), v.to_dict()  # the test needs evidence to mask
    return v


def test_masked_row_masks_evidence_at_its_span_and_the_phone(moderator):
    v = _verdict(moderator, TEXT)
    row = build_row(Item("moderate", datetime.now(UTC), "ACME", None, None, "+8613800138000", v, TEXT), "masked",
                    checks.phone_key("k"))
    rec = row.record
    assert rec["text"] == mask_text(TEXT) and rec["text_mode"] == "masked"
    assert rec["phone"] == "+86*******8000"
    assert rec["phone_hash"] == checks.phone_hash(checks.phone_key("k"), "+8613800138000")
    dumped = json.dumps(rec, ensure_ascii=False, default=str)
    _no_secret(dumped)
    for r in rec["result"]["reasons"]:
        if r.get("span") and "evidence" in r:
            s, e = r["span"]
            assert r["evidence"] == rec["text"][s:e]  # spans index the masked text alike
        for p in r.get("parts") or ():
            assert p["evidence"] == rec["text"][p["span"][0]:p["span"][1]]
        for w in r.get("words") or ():
            assert not re.search(r"\d", w)
    # the verdict itself is unchanged
    assert rec["verdict"] == v.verdict and rec["categories"].split(",") == [c for c in v.categories]


def test_none_keeps_no_text_evidence_words_or_phone(moderator):
    v = _verdict(moderator, TEXT)
    row = build_row(Item("moderate", datetime.now(UTC), "ACME", None, None, "+8613800138000", v, TEXT), "none",
                    checks.phone_key("k"))
    rec = row.record
    assert rec["text"] is None and rec["phone"] is None and rec["phone_hash"]
    for r in rec["result"]["reasons"]:
        assert "evidence" not in r and "words" not in r
        assert all(p["evidence"] == "" for p in r.get("parts") or ())
    _no_secret(json.dumps(rec, ensure_ascii=False, default=str))


def test_masked_setting_end_to_end(app, db, make_client, recorder):
    """The API with SMSGUARD_CHECK_TEXT=masked: the stored check has no digit of the phone or
    the code, the phone filter still finds it."""
    recorder.mode = "masked"
    tenant = make_client("tenant", "ACME")
    tpl = make_template(db, "ACME", content="您的验证码是${code}，客服13800138000", variables={"code": "code"})
    r = tenant.post("/v1/messages/check", {"template_id": tpl, "phone": "+8613912345678",
                                           "params": {"code": "482915"}, "message_id": "m-mask"})
    assert r.status_code == 200
    assert recorder.flush(10)
    page = tenant.get("/v1/checks", query={"phone": "13912345678"}).json
    [it] = page["items"]
    assert it["text_mode"] == "masked" and it["phone"] == "+86*******5678"
    assert it["text"] == "您的验证码是******，客服***********"
    detail = tenant.get(f"/v1/checks/{it['id']}").json
    dumped = json.dumps(detail, ensure_ascii=False)
    for sec in ("482915", "13800138000", "13912345678", "1391234"):
        assert sec not in dumped
