"""Complaints, replies, opt-outs and the enforcement ladder (issue 6)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.store.models import Account, AccountStateChange, Complaint, DailyVolume, Event, OptOut
from tests.presend.conftest import check, rules

LADDER = """
enforcement:
  window_days: 30
  rate: {min_volume: 100000, warn: 10, suspend: 25, terminate: 40}
  count: {warn: 2, suspend: 5, terminate: 9}
"""


def complain(client, n=1, account=None, phone="+8613800138000", source="carrier", **extra):
    out = []
    for _ in range(n):
        body = {"phone": phone, "source": source, "reason": "spam"}
        if account is not None or client.role != "tenant":
            body["account"] = account or "ACME"
        body.update(extra)
        out.append(client.post("/v1/complaints", body))
    return out[0] if n == 1 else out


def changes(db, account="ACME"):
    with db.session() as s:
        return list(s.scalars(sa.select(AccountStateChange).where(AccountStateChange.account_id == account)
                              .order_by(AccountStateChange.id)))


def test_a_complaint_is_stored_and_opts_the_phone_out(admin, tenant, templates, db):
    r = complain(admin, phone="13800138000", message_id="m-9", external_id="c-1")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["created"] and body["phone"] == "+8613800138000" and body["account_status"] == "active"
    with db.session() as s:
        oo = s.scalar(sa.select(OptOut).where(OptOut.account_id == "ACME"))
        assert oo.phone == "+8613800138000" and oo.source == "complaint"
        kinds = [e.kind for e in s.scalars(sa.select(Event).order_by(Event.id))]
        assert "complaint.received" in kinds and "optout.added" in kinds
    assert rules(check(tenant, templates["promotional"], params={})) == ["ACCT_RECIPIENT_OPTED_OUT"]


def test_complaints_are_idempotent_on_external_id(admin, tenant, db):
    first = complain(admin, external_id="carrier-77")
    again = complain(admin, external_id="carrier-77")
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and not again.get_json()["created"]
    # the same id from another source is another complaint
    assert complain(admin, external_id="carrier-77", source="regulator").status_code == 201
    # idempotency keys are the account's own (issue 14, item 17): another account's complaint
    # with the same carrier id is its own complaint, and never shows the first one's id
    with db.session() as s:
        s.add(Account(id="OTHER", name="o"))
    other = complain(admin, account="OTHER", external_id="carrier-77")
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    # the same id for another phone of the same account is a conflict, not a silent merge
    r = complain(admin, external_id="carrier-77", phone="+8613800138099")
    assert r.status_code == 409
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 3


def test_complaint_roles(make_client, tenant, admin, db):
    assert complain(tenant).status_code == 201  # a tenant files about its own account
    assert complain(tenant, account="OTHER").status_code == 404
    assert make_client("reviewer").post("/v1/complaints", {"account": "ACME", "phone": "+8613800138000",
                                                            "source": "user"}).status_code == 403
    assert admin.post("/v1/complaints", {"phone": "+8613800138000", "source": "user"}).status_code == 422
    assert complain(admin, account="NOPE").status_code == 404
    assert admin.post("/v1/complaints", {"account": "ACME", "phone": "+8613800138000",
                                         "source": "neighbour"}).status_code == 422


def test_the_ladder_warn_suspend_terminate_with_its_evidence(admin, tenant, templates, sending_rules, db):
    sending_rules(LADDER)
    first = [r.get_json()["id"] for r in complain(admin, 2)]
    ch = changes(db)
    assert [(c.from_status, c.to_status, c.rule) for c in ch] == [("active", "warned", "ACCT_COMPLAINT_COUNT")]
    assert ch[0].evidence["complaints"] == first and ch[0].actor == "system:enforcement"
    assert ch[0].evidence["ladder_step"] == "warn"
    # the next step needs NEW complaints: one more is not a breach on its own
    third = complain(admin).get_json()
    assert third["account_status"] == "warned" and third["state_change"] is None
    fourth = complain(admin).get_json()
    assert fourth["account_status"] == "suspended"
    ch = changes(db)
    assert ch[-1].to_status == "suspended" and ch[-1].evidence["complaints"] == [third["id"], fourth["id"]]
    assert ch[-1].evidence["previous_step"] == "warn"
    assert fourth["state_change"]["rule"] == "ACCT_COMPLAINT_COUNT"
    assert rules(check(tenant, templates["verification"])) == ["ACCT_SUSPENDED"]
    # complaints about old messages while suspended: stored, no automatic step
    assert complain(admin, 3)[-1].get_json()["account_status"] == "suspended"
    assert len(changes(db)) == 2
    # reinstated with a note, then a breach again: terminated
    r = admin.post("/v1/accounts/ACME/reinstate", {"note": "customer cleaned its list"})
    assert r.status_code == 200 and r.get_json()["status"] == "active"
    assert check(tenant, templates["verification"]).get_json()["verdict"] == "allow"
    last = complain(admin, 2)[-1].get_json()
    assert last["account_status"] == "terminated"
    ch = changes(db)
    assert [c.to_status for c in ch] == ["warned", "suspended", "active", "terminated"]
    assert ch[2].rule == "ACCT_MANUAL_REINSTATE" and ch[2].note == "customer cleaned its list"
    assert ch[2].actor == f"key:{admin.public_key}"
    assert rules(check(tenant, templates["verification"], phone="+8613800138001")) == ["ACCT_TERMINATED"]
    # terminated is final
    assert admin.post("/v1/accounts/ACME/reinstate", {"note": "please"}).status_code == 409
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(sa.select(Event).where(Event.kind.like("account.%")).order_by(Event.id))]
    assert kinds == ["account.created", "account.warned", "account.suspended", "account.active",
                     "account.terminated"]


def test_the_rate_applies_above_the_minimum_volume(admin, sending_rules, db):
    sending_rules(LADDER)
    today = datetime.now(UTC).date()
    with db.session() as s:
        s.add(Account(id="BIG", name="big"))
        s.flush()
        for d in range(10):
            s.add(DailyVolume(account_id="BIG", day=today - timedelta(days=d), allowed=20_000, rejected=0))
    # 200,000 allowed messages: 2 complaints = 10 per million -> warn (counts alone would warn too)
    complain(admin, 2, account="BIG")
    ch = changes(db, "BIG")
    assert [(c.to_status, c.rule) for c in ch] == [("warned", "ACCT_COMPLAINT_RATE")]
    assert ch[0].rate == pytest.approx(10.0) and ch[0].evidence["metric"] == "rate"
    detail = admin.get("/v1/accounts/BIG").get_json()
    assert detail["status"] == "warned" and detail["rates"]["complaints"] == 2
    assert detail["rates"]["allowed_messages"] == 200_000 and detail["rates"]["rate_per_million"] == 10.0
    assert detail["history"][0]["rule"] == "ACCT_COMPLAINT_RATE"


def test_a_big_breach_jumps_the_ladder(admin, sending_rules, db):
    """The level reached counts too: 5 complaints at once in the sweep -> suspended directly."""
    from app.services import enforcement
    from app.services.presend import parse_enforcement

    with db.session() as s:
        for i in range(5):
            s.add(Complaint(account_id="ACME", phone=f"+86138001380{i:02d}", source="user")) if i else \
                s.add(Account(id="ACME", name="a")) or s.flush() or \
                s.add(Complaint(account_id="ACME", phone="+8613800138000", source="user"))
    settings = parse_enforcement({"count": {"warn": 2, "suspend": 5, "terminate": 9}})
    out = enforcement.sweep(db, settings)
    assert [(a, c.to_status) for a, c, _ in out] == [("ACME", "suspended")]
    assert changes(db)[0].actor == "system:sweep"


def test_manual_suspend_and_reinstate_need_an_admin_and_a_note(admin, tenant, make_client, db):
    with db.session() as s:
        s.add(Account(id="ACME2", name="x"))
    assert admin.post("/v1/accounts/ACME2/suspend", {}).status_code == 422
    assert admin.post("/v1/accounts/ACME2/suspend", {"note": "  "}).status_code == 422
    assert make_client("reviewer").post("/v1/accounts/ACME2/suspend", {"note": "x"}).status_code == 403
    assert tenant.post("/v1/accounts/ACME/suspend", {"note": "x"}).status_code == 403
    assert admin.post("/v1/accounts/ACME2/reinstate", {"note": "x"}).status_code == 409  # already active
    r = admin.post("/v1/accounts/ACME2/suspend", {"note": "chargeback fraud"})
    assert r.status_code == 200
    h = r.get_json()["history"][0]
    assert (h["rule"], h["to_status"], h["note"]) == ("ACCT_MANUAL_SUSPEND", "suspended", "chargeback fraud")
    assert admin.post("/v1/accounts/ACME2/suspend", {"note": "again"}).status_code == 409
    assert admin.post("/v1/accounts/NOPE/suspend", {"note": "x"}).status_code == 404


def test_account_detail_roles(tenant, admin, make_client, db):
    body = tenant.get("/v1/accounts/ACME").get_json()
    assert body["id"] == "ACME" and body["status"] == "active" and body["history"] == []
    assert set(body["rates"]) >= {"window_days", "complaints", "allowed_messages", "rate_per_million", "thresholds"}
    with db.session() as s:
        s.add(Account(id="OTHER", name="o"))
    assert tenant.get("/v1/accounts/OTHER").status_code == 404
    assert make_client("reviewer").get("/v1/accounts/OTHER").status_code == 200
    assert admin.get("/v1/accounts").status_code == 200  # the list still works


@pytest.mark.parametrize("text,action", [
    ("R", "opt_out"), ("td", "opt_out"), (" T ", "opt_out"), ("N", "opt_out"), ("退订", "opt_out"),
    ("STOP", "opt_out"), ("stop.", "opt_out"), ("Unsubscribe", "opt_out"), ("ＴＤ", "opt_out"),
    ("START", "opt_in"), ("unstop", "opt_in"), ("取消订阅", "opt_out"),
    ("Thanks", None), ("tomorrow", None), ("不要退订", None), ("", None),
])
def test_reply_keywords(text, action):
    from app.services.optouts import reply_action

    assert reply_action(text) == action


@pytest.fixture
def platform(make_client):
    """The sending platform's key: it relays carrier-side replies for every account."""
    return make_client("platform")


def test_opt_out_by_reply_and_back_in(tenant, platform, admin, templates, db):
    promo = templates["promotional"]
    r = platform.post("/v1/replies", {"phone": "+8613800138000", "text": "退订", "account": "ACME"})
    assert r.status_code == 200 and r.get_json() == {"account_id": "ACME", "phone": "+8613800138000",
                                                     "action": "opt_out", "changed": True}
    assert rules(check(tenant, promo, params={})) == ["ACCT_RECIPIENT_OPTED_OUT"]
    reply = lambda text, phone="+8613800138000": platform.post(  # noqa: E731
        "/v1/replies", {"phone": phone, "text": text, "account": "ACME"}).get_json()
    assert reply("TD", "13800138000")["changed"] is False
    assert reply("hello")["action"] is None
    r = reply("START")
    assert r["action"] == "opt_in" and r["changed"] is True
    assert check(tenant, promo, params={}).get_json()["verdict"] == "allow"
    # the account is named; admins may relay too; reviewers may not
    assert platform.post("/v1/replies", {"phone": "+8613800138000", "text": "STOP"}).status_code == 422
    assert admin.post("/v1/replies", {"phone": "+8613800138000", "text": "STOP", "account": "ACME"}).status_code == 200
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(sa.select(Event).where(Event.kind.like("optout.%")).order_by(Event.id))]
    assert kinds == ["optout.added", "optout.removed", "optout.added"]


def test_a_tenant_cannot_post_replies_for_its_own_recipients(tenant, platform, templates):
    """Issue 14, item 5: a tenant lifted opt-outs itself by posting START for the phone."""
    platform.post("/v1/replies", {"phone": "+8613800138000", "text": "R", "account": "ACME"})
    r = tenant.post("/v1/replies", {"phone": "+8613800138000", "text": "START", "account": "ACME"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith("the tenant role may not")
    assert rules(check(tenant, templates["promotional"], params={})) == ["ACCT_RECIPIENT_OPTED_OUT"]


def test_an_opt_out_made_by_a_complaint_is_lifted_only_by_an_admin(tenant, platform, admin, templates, db):
    r = admin.post("/v1/complaints", {"account": "ACME", "phone": "+8613800138000", "source": "carrier",
                                      "external_id": "cx-1", "reason": "spam"})
    assert r.status_code == 201
    back = platform.post("/v1/replies", {"phone": "+8613800138000", "text": "START", "account": "ACME"}).get_json()
    assert back["action"] == "opt_in" and back["changed"] is False
    assert rules(check(tenant, templates["promotional"], params={})) == ["ACCT_RECIPIENT_OPTED_OUT"]
    with db.session() as s:
        kept = s.scalars(sa.select(Event).where(Event.kind == "optout.kept")).all()
    assert len(kept) == 1 and kept[0].data["opted_out_by"] == "complaint"
    row = admin.get("/v1/opt-outs", query={"account": "ACME"}).get_json()[0]
    assert row["source"] == "complaint"
    assert admin.delete(f"/v1/opt-outs/{row['id']}").status_code == 204
    assert check(tenant, templates["promotional"], params={}).get_json()["verdict"] == "allow"


def test_platform_keys_serve_every_account_and_nothing_else(platform, runner):
    from app.cli import cli

    assert platform.post("/v1/moderate", {"text": "你好"}).status_code == 403
    assert platform.get("/v1/accounts").status_code == 403
    r = runner.invoke(cli, ["keys", "create", "--role", "platform", "--account", "ACME"])
    assert r.exit_code != 0 and "platform key serves every account" in r.output


def test_admins_list_and_remove_opt_outs(admin, platform, tenant, templates, db):
    platform.post("/v1/replies", {"phone": "+8613800138000", "text": "R", "account": "ACME"})
    platform.post("/v1/replies", {"phone": "+8613800138001", "text": "R", "account": "ACME"})
    assert tenant.get("/v1/opt-outs").status_code == 403
    rows = admin.get("/v1/opt-outs", query={"account": "ACME"}).get_json()
    assert {r["phone"] for r in rows} == {"+8613800138000", "+8613800138001"}
    one = admin.get("/v1/opt-outs", query={"phone": "13800138001"}).get_json()
    assert [r["phone"] for r in one] == ["+8613800138001"]
    assert admin.delete(f"/v1/opt-outs/{one[0]['id']}").status_code == 204
    assert admin.delete(f"/v1/opt-outs/{one[0]['id']}").status_code == 404
    assert check(tenant, templates["promotional"], phone="+8613800138001", params={}).get_json()["verdict"] == "allow"
    assert rules(check(tenant, templates["promotional"], params={})) == ["ACCT_RECIPIENT_OPTED_OUT"]


def test_enforce_command(runner, db, settings):
    from app.cli import cli

    with db.session() as s:
        s.add(Account(id="ACME", name="a"))
        s.flush()
        for i in range(3):
            s.add(Complaint(account_id="ACME", phone=f"+861380013800{i}", source="user"))
    r = runner.invoke(cli, ["enforce", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "ACME" in r.output and "would" in r.output
    assert changes(db) == []
    r = runner.invoke(cli, ["enforce"])
    assert r.exit_code == 0, r.output
    assert [c.to_status for c in changes(db)] == ["warned"]
    assert "warned" in r.output
