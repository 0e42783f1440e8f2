"""POST /v1/messages/check: each check's reason, in order, and the counts it keeps."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.store.models import Account, DailyVolume, OptOut, SendCounter
from tests.presend.conftest import NIGHT_CN, NOON_CN, check, make_template, rules


def _status(db, account, status):
    with db.session() as s:
        s.get(Account, account).status = status


def test_an_approved_verification_message_is_allowed_and_counted(tenant, templates, db):
    r = check(tenant, templates["verification"], message_id="m-1")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["verdict"] == "allow" and body["forced_by"] is None
    assert body["message_id"] == "m-1"
    assert body["phone"] == "+8613800138000"
    assert body["text"] == "您的验证码是482915，5分钟内有效，请勿泄露。"
    assert body["ruleset_version"]
    with db.session() as s:
        vol = s.scalar(sa.select(DailyVolume).where(DailyVolume.account_id == "ACME"))
        assert (vol.allowed, vol.rejected) == (1, 0)


def test_a_message_id_is_made_up_when_absent(tenant, templates):
    body = check(tenant, templates["verification"]).get_json()
    assert len(body["message_id"]) == 32


@pytest.mark.parametrize("status,rule", [("suspended", "ACCT_SUSPENDED"), ("terminated", "ACCT_TERMINATED")])
def test_account_state_rejects_forced(tenant, templates, db, status, rule):
    _status(db, "ACME", status)
    body = check(tenant, templates["verification"]).get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == rule
    assert rules_of(body) == [rule]
    with db.session() as s:
        assert s.scalar(sa.select(DailyVolume.rejected).where(DailyVolume.account_id == "ACME")) == 1


def rules_of(body):
    return [r["rule"] for r in body["reasons"]]


def test_account_state_comes_first(tenant, db):
    """A suspended account with an unapproved template: the account's reason, not the template's."""
    tid = make_template(db, "ACME", status="pending")
    _status(db, "ACME", "suspended")
    assert rules(check(tenant, tid)) == ["ACCT_SUSPENDED"]


def test_a_warned_account_still_sends(tenant, templates, db):
    _status(db, "ACME", "warned")
    assert check(tenant, templates["verification"]).get_json()["verdict"] == "allow"


def test_template_of_another_account_is_not_found(tenant, db):
    other = make_template(db, "OTHER")
    body = check(tenant, other).get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "TPL_NOT_FOUND"


def test_unknown_template_is_not_found(tenant, templates):
    assert rules(check(tenant, 999999)) == ["TPL_NOT_FOUND"]


@pytest.mark.parametrize("tpl_status,sig_status,rule", [
    ("pending", "approved", "TPL_NOT_APPROVED"),
    ("rejected", "approved", "TPL_NOT_APPROVED"),
    ("approved", "pending", "TPL_SIGNATURE_NOT_APPROVED"),
    ("approved", "rejected", "TPL_SIGNATURE_NOT_APPROVED"),
])
def test_template_and_signature_must_be_approved(tenant, db, tpl_status, sig_status, rule):
    tid = make_template(db, "ACME", status=tpl_status, sig_status=sig_status)
    body = check(tenant, tid).get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == rule


def test_a_decision_shows_at_once_despite_the_template_cache(tenant, db):
    """Cached templates are validated by updated_at in the check's own transaction."""
    from app.store.models import Template

    tid = make_template(db, "ACME", status="pending")
    assert rules(check(tenant, tid)) == ["TPL_NOT_APPROVED"]
    with db.session() as s:
        t = s.get(Template, tid)
        t.status = "approved"
        t.updated_at = datetime.now(UTC)
    assert check(tenant, tid, phone="+8613900139000").get_json()["verdict"] == "allow"


def test_a_code_holding_a_url_fails_the_param_type(tenant, templates):
    body = check(tenant, templates["verification"], params={"code": "http://evil.example.cn/x"}).get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "TPL_PARAM_TYPE"


def test_a_missing_param(tenant, templates):
    assert rules(check(tenant, templates["verification"], params={})) == ["TPL_PARAM_MISSING"]


def test_an_unknown_param_is_reported_but_does_not_reject(tenant, templates):
    body = check(tenant, templates["verification"], params={"code": "123456", "extra": "x"}).get_json()
    assert "TPL_PARAM_UNKNOWN" in rules_of(body) and body["verdict"] != "reject"


def test_opted_out_recipient_blocks_promotional_only(tenant, templates, db):
    with db.session() as s:
        s.add(OptOut(account_id="ACME", phone="+8613800138000", source="reply"))
    body = check(tenant, templates["promotional"], params={}).get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "ACCT_RECIPIENT_OPTED_OUT"
    # national form of the same number: the same recipient
    assert rules(check(tenant, templates["promotional"], phone="13800138000", params={})) == \
        ["ACCT_RECIPIENT_OPTED_OUT"]
    # verification and notification messages still go
    assert check(tenant, templates["verification"]).get_json()["verdict"] == "allow"
    # another account's opt-out list is its own
    assert check(tenant, templates["promotional"], phone="+8613800138001", params={}).get_json()["verdict"] == "allow"


def test_promotional_outside_the_send_window_in_the_recipients_time(tenant, templates):
    body = check(tenant, templates["promotional"], params={}, send_at=NIGHT_CN).get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "ACCT_OUTSIDE_SEND_WINDOW"
    assert body["reasons"][0]["evidence"] == "23:00 Asia/Shanghai"
    assert check(tenant, templates["promotional"], params={}, send_at=NOON_CN).get_json()["verdict"] == "allow"
    # verification codes go at any hour
    assert check(tenant, templates["verification"], send_at=NIGHT_CN).get_json()["verdict"] == "allow"


def test_the_window_uses_the_recipients_zone_not_the_servers(tenant, templates):
    # 04:00 UTC: noon in Shanghai, but 04:00 in the UK (GMT in March) -> outside for a UK mobile
    body = check(tenant, templates["promotional"], phone="+447911123456", params={}, send_at=NOON_CN).get_json()
    assert body["forced_by"] == "ACCT_OUTSIDE_SEND_WINDOW"
    assert body["reasons"][0]["evidence"].startswith("04:00 Europe/")
    # 13:00 UTC: 21:00 in Shanghai (end exclusive) but 13:00 in the UK
    afternoon = "2026-03-02T13:00:00+00:00"
    assert check(tenant, templates["promotional"], phone="+447911123456", params={},
                 send_at=afternoon).get_json()["verdict"] == "allow"
    assert rules(check(tenant, templates["promotional"], params={}, send_at=afternoon)) == ["ACCT_OUTSIDE_SEND_WINDOW"]


def test_verification_frequency_per_minute_hour_day(tenant, templates, clock):
    t0 = datetime(2026, 3, 2, 4, 0, 5, tzinfo=UTC)
    tid = templates["verification"]

    def at(minutes):  # the check's own clock moves; no send_at
        clock.now = t0 + timedelta(minutes=minutes)

    at(0)
    assert check(tenant, tid, send_at=None).get_json()["verdict"] == "allow"
    body = check(tenant, tid, send_at=None).get_json()
    assert body["forced_by"] == "ACCT_FREQUENCY_MINUTE" and "limit 1 per minute" in body["reasons"][0]["description"]
    # another recipient is counted apart
    assert check(tenant, tid, phone="+8613800138009", send_at=None).get_json()["verdict"] == "allow"
    for m in range(1, 5):  # 5 in the hour
        at(m)
        assert check(tenant, tid, send_at=None).get_json()["verdict"] == "allow", m
    at(5)
    assert rules(check(tenant, tid, send_at=None)) == ["ACCT_FREQUENCY_HOUR"]
    for h in range(1, 2):  # 5 more in the next hour: 10 in the day
        for m in range(5):
            at(60 * h + m)
            assert check(tenant, tid, send_at=None).get_json()["verdict"] == "allow"
    at(125)
    assert rules(check(tenant, tid, send_at=None)) == ["ACCT_FREQUENCY_DAY"]


def test_send_at_cannot_lift_frequency_limits(tenant, templates, clock):
    """Issue 14: 30 checks to one phone, each with send_at a day later than the last, were all
    allowed. Limits count by the check's own clock, whatever send_at says."""
    tid = templates["verification"]
    t0 = clock.now
    assert check(tenant, tid, send_at=t0.isoformat()).get_json()["verdict"] == "allow"
    for d in range(1, 7):
        later = (t0 + timedelta(days=d)).isoformat()
        assert rules(check(tenant, tid, send_at=later)) == ["ACCT_FREQUENCY_MINUTE"], d
    # alternating two send_at values changes nothing either
    for later in (t0 + timedelta(hours=3), t0 + timedelta(minutes=2)) * 2:
        assert rules(check(tenant, tid, send_at=later.isoformat())) == ["ACCT_FREQUENCY_MINUTE"]
    clock.advance(minutes=1)  # a minute of real time later: the next one goes
    assert check(tenant, tid, send_at=None).get_json()["verdict"] == "allow"


@pytest.mark.parametrize("send_at", ["0001-01-01T00:00:00+00:00", "2026-03-02T03:50:00+00:00",
                                     "2026-03-09T04:01:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_send_at_far_in_the_past_or_future_is_refused(tenant, templates, send_at):
    r = check(tenant, templates["promotional"], params={}, send_at=send_at)
    body = r.get_json()
    assert r.status_code == 422 and "send_at" in body["detail"] and body["errors"]["send_at"]


def test_a_past_send_at_cannot_move_a_late_message_into_the_window(tenant, templates, clock):
    """A promotional message at 22:37 Shanghai with a send_at of noon that day (long past)."""
    clock.now = datetime(2026, 3, 2, 14, 37, tzinfo=UTC)  # 22:37 in Shanghai
    r = check(tenant, templates["promotional"], params={}, send_at=NOON_CN)
    assert r.status_code == 422
    body = check(tenant, templates["promotional"], params={}, send_at=None).get_json()
    assert body["forced_by"] == "ACCT_OUTSIDE_SEND_WINDOW"
    # a few minutes of clock skew are accepted, and the window is judged at send_at
    soon = (clock.now + timedelta(days=1) - timedelta(hours=10)).isoformat()  # 12:37 tomorrow
    assert check(tenant, templates["promotional"], params={}, send_at=soon).get_json()["verdict"] == "allow"
    skew = (clock.now - timedelta(minutes=4)).isoformat()
    assert check(tenant, templates["promotional"], params={}, send_at=skew).status_code == 200


def test_send_at_bounds_come_from_the_rules_file(tenant, templates, sending_rules, clock):
    sending_rules("presend:\n  send_at: {max_past_minutes: 60, max_ahead_days: 1}\n")
    ok = (clock.now - timedelta(minutes=50)).isoformat()
    assert check(tenant, templates["verification"], send_at=ok).status_code == 200
    assert check(tenant, templates["verification"], send_at=(clock.now + timedelta(days=2)).isoformat()).status_code == 422


def test_frequency_limits_come_from_the_rules_file(tenant, templates, sending_rules, db):
    sending_rules("presend:\n  frequency:\n    notification: {minute: 1}\n")
    tid = templates["notification"]
    params = {"order": "A123", "day": "2026-03-03"}
    assert check(tenant, tid, params=params).get_json()["verdict"] == "allow"
    assert rules(check(tenant, tid, params=params)) == ["ACCT_FREQUENCY_MINUTE"]
    # verification has no limit in this file
    for _ in range(3):
        assert check(tenant, templates["verification"]).get_json()["verdict"] == "allow"
    with db.session() as s:
        rows = s.scalars(sa.select(SendCounter)).all()
        assert {(r.msg_type, r.minute_count) for r in rows} == {("notification", 1)}


def test_prohibited_content_in_the_filled_message(tenant, db):
    tid = make_template(db, "ACME", "notification", "您的订单已发货，备注：${note}", {"note": "text:30"})
    body = check(tenant, tid, params={"note": "澳门百家乐，首充送88"}).get_json()
    assert body["verdict"] == "reject" and "gambling" in body["categories"]
    text = body["text"]
    spans = [(r["span"], r["evidence"]) for r in body["reasons"] if r.get("span")]
    assert spans and all(text[a:b] == ev for (a, b), ev in spans)


def test_a_rejected_message_does_not_use_up_the_frequency_limit(tenant, db):
    tid = make_template(db, "ACME", "verification", "验证码${code}，备注${note}", {"code": "code", "note": "text:30"})
    assert check(tenant, tid, params={"code": "123456", "note": "澳门百家乐首充送88"}).get_json()["verdict"] == "reject"
    assert check(tenant, tid, params={"code": "123456", "note": "请勿泄露"}).get_json()["verdict"] == "allow"


def test_a_suspended_accounts_very_next_check_is_rejected(tenant, admin, templates):
    tid = templates["verification"]
    assert check(tenant, tid).get_json()["verdict"] == "allow"
    r = admin.post("/v1/accounts/ACME/suspend", {"note": "carrier escalation"})
    assert r.status_code == 200 and r.get_json()["status"] == "suspended"
    body = check(tenant, tid, phone="+8613800138001").get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "ACCT_SUSPENDED"


def test_a_suspension_applies_on_every_worker(settings, moderator, tenant, admin, templates):
    """Two apps over one database (two workers): a suspension through one is seen by the other's
    very next check, although that one has the template cached already."""
    from app import create_app
    from tests.conftest import SignedClient

    other = create_app(settings, moderator=moderator)
    try:
        client2 = SignedClient(other.test_client(), tenant.public_key, tenant.private_key, "ACME", "tenant")
        tid = templates["verification"]
        # the second worker's checks run on the real clock: no send_at
        assert check(client2, tid, send_at=None).get_json()["verdict"] == "allow"
        assert admin.post("/v1/accounts/ACME/suspend", {"note": "fraud report"}).status_code == 200
        assert rules(check(client2, tid, phone="+8613800138002", send_at=None)) == ["ACCT_SUSPENDED"]
        assert admin.post("/v1/accounts/ACME/reinstate", {"note": "resolved"}).status_code == 200
        assert check(client2, tid, phone="+8613800138003", send_at=None).get_json()["verdict"] == "allow"
    finally:
        other.extensions["smsguard.db"].dispose()


def test_roles(make_client, tenant, admin, templates, db):
    tid = templates["verification"]
    # a tenant naming another account: 404, as if it did not exist
    assert check(tenant, tid, account="OTHER").status_code == 404
    assert check(tenant, tid, account="ACME").status_code == 200
    # an admin names the account
    assert check(admin, tid).status_code == 422
    body = check(admin, tid, account="ACME", phone="+8613800138005").get_json()
    assert body["verdict"] == "allow"
    assert check(admin, tid, account="NOPE").status_code == 404
    # reviewers do not send
    assert check(make_client("reviewer"), tid, account="ACME").status_code == 403
    # another tenant's key cannot use ACME's template
    other = make_client("tenant", "OTHER")
    assert rules(check(other, tid)) == ["TPL_NOT_FOUND"]


@pytest.mark.parametrize("body,field", [
    ({"template_id": 1, "phone": "+8613800138000", "surprise": 1}, "surprise"),
    ({"phone": "+8613800138000"}, "template_id"),
    ({"template_id": "1", "phone": "+8613800138000"}, "template_id"),
    ({"template_id": 1, "phone": "+8613800138000", "params": {"code": ["x"]}}, "params"),
    ({"template_id": 1, "phone": "+8613800138000", "send_at": "yesterday"}, "send_at"),
])
def test_validation(tenant, templates, body, field):
    r = tenant.post("/v1/messages/check", body)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert field in r.get_json()["errors"]


def test_an_invalid_phone_is_a_422(tenant, templates):
    r = check(tenant, templates["verification"], phone="12345")
    assert r.status_code == 422 and "phone" in r.get_json()["errors"]


def test_send_at_without_a_zone_is_utc(tenant, templates):
    body = check(tenant, templates["promotional"], params={}, send_at="2026-03-02T15:00:00").get_json()
    assert body["forced_by"] == "ACCT_OUTSIDE_SEND_WINDOW"


def test_nonces_are_stored_by_the_check_itself(tenant, templates, db):
    from app.store.models import RequestNonce

    path = "/v1/messages/check"
    import json as _json

    raw = _json.dumps({"template_id": templates["verification"], "phone": "+8613800138000",
                       "params": {"code": "482915"}}).encode()
    headers = tenant.headers("POST", path, [], raw)
    r1 = tenant.client.post(path, data=raw, headers=headers, content_type="application/json")
    assert r1.status_code == 200
    r2 = tenant.client.post(path, data=raw, headers=headers, content_type="application/json")
    assert r2.status_code == 401 and r2.get_json()["reason"] == "replayed_nonce"
    # a request that failed validation still spends its nonce
    bad = _json.dumps({"template_id": "x", "phone": "1"}).encode()
    headers = tenant.headers("POST", path, [], bad)
    assert tenant.client.post(path, data=bad, headers=headers, content_type="application/json").status_code == 422
    r4 = tenant.client.post(path, data=bad, headers=headers, content_type="application/json")
    assert r4.status_code == 401 and r4.get_json()["reason"] == "replayed_nonce"
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(RequestNonce)) == 2


def test_fail_closed_when_the_database_is_unreachable(app, tenant, templates, monkeypatch):
    """presend_fail_mode=closed: a reject naming ACCT_PRESEND_UNAVAILABLE, not a 500."""
    import sqlite3

    from app.api.messages import service

    check(tenant, templates["verification"])  # caches the template
    with app.app_context():
        svc = service()

    def broken():
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(svc.hp, "transaction", broken)
    body = check(tenant, templates["verification"], phone="+8613800138007").get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "ACCT_PRESEND_UNAVAILABLE"
    svc.fail_mode = "open"
    body = check(tenant, templates["verification"], phone="+8613800138008").get_json()
    assert body["verdict"] == "allow" and "ACCT_PRESEND_DEGRADED" in rules_of(body)


def test_bidi_controls_in_a_param_do_not_pass_the_pre_send_check(tenant, templates, db):
    """Issue 14: the text a phone displays differs from the stored one; the check must not allow it."""
    tid = make_template(db, "ACME", "notification", "您的快递备注：${note}", {"note": "text"})
    assert check(tenant, tid, params={"note": "放门口"}).get_json()["verdict"] == "allow"
    params = {"note": "放门口\u202e" + "moc.knab-ekaf//:sptth" + "\u202c"}
    body = check(tenant, tid, params=params, phone="+8613800138007").get_json()
    assert body["verdict"] != "allow"
    assert "PAT_BIDI_CONTROL" in {r["rule"] for r in body["reasons"]}
