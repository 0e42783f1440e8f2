"""Withdrawal (issue 15, item 3): POST /v1/templates/<id>/withdraw and /v1/signatures/<id>/withdraw
move an approved item to `withdrawn` (reviewers and admins, a reason required); anything else is
409; the history shows it; the item page has the button; approving a flagged item from the page
asks for a confirmation the server checks."""
from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.store.models import Complaint, DailyVolume, Event, Template

from .conftest import csrf_of
from .workbench_helpers import seed

VERIFY = "您的验证码为${code}，5分钟内有效，请勿泄露给他人。"


@pytest.fixture
def approved_template(tenant, approved_sig):
    r = tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "verification",
                                      "content": VERIFY, "variables": {"code": "code"}})
    assert r.status_code == 201 and r.json["status"] == "approved", r.json
    return r.json


def _flashes(page: str) -> str:
    return html.unescape(" ".join(re.findall(r'<li class="flash [a-z]+" role="status">(.*?)</li>', page, re.S)))


@pytest.mark.parametrize("kind", ["templates", "signatures"])
def test_only_reviewers_and_admins_withdraw(kind, tenant, reviewer, admin, approved_template, approved_sig):
    item = approved_template if kind == "templates" else approved_sig
    r = tenant.post(f"/v1/{kind}/{item['id']}/withdraw", {"reason": "我自己撤回"})
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert tenant.get(f"/v1/{kind}/{item['id']}").json["status"] == "approved"
    who = reviewer if kind == "templates" else admin
    r = who.post(f"/v1/{kind}/{item['id']}/withdraw", {"reason": "冒用品牌"})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["status"] == "withdrawn" and body["reason"] == "冒用品牌"
    last = body["decisions"][-1]
    assert last["decision"] == "withdraw" and last["reason"] == "冒用品牌" and last["actor"].startswith("key:")
    # the tenant reads it, with "reviewer" instead of who
    seen = tenant.get(f"/v1/{kind}/{item['id']}").json
    assert seen["status"] == "withdrawn" and seen["decisions"][-1]["actor"] == "reviewer"
    assert [t["id"] for t in tenant.get(f"/v1/{kind}", query={"status": "withdrawn"}).json] == [item["id"]]


def test_withdrawing_anything_not_approved_is_409(reviewer, gambling_template, approved_template):
    r = reviewer.post(f"/v1/templates/{gambling_template['id']}/withdraw", {"reason": "x"})
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    body = r.json
    assert body["status"] == 409 and body["current_status"] == "pending" and "only an approved" in body["detail"]
    assert reviewer.post(f"/v1/templates/{approved_template['id']}/withdraw", {"reason": "x"}).status_code == 200
    again = reviewer.post(f"/v1/templates/{approved_template['id']}/withdraw", {"reason": "x"})
    assert again.status_code == 409 and again.json["current_status"] == "withdrawn"
    # a withdrawn item is not decided again either
    r = reviewer.post(f"/v1/templates/{approved_template['id']}/decision", {"decision": "approve"})
    assert r.status_code == 409
    assert reviewer.post("/v1/templates/999999/withdraw", {"reason": "x"}).status_code == 404


@pytest.mark.parametrize("body,status", [
    ({}, 422), ({"reason": ""}, 422), ({"reason": "   "}, 422), ({"reason": "x" * 2001}, 422),
    ({"reason": "ok", "extra": 1}, 422), ({"reason": 5}, 422),
])
def test_the_reason_is_required_and_bounded(reviewer, approved_template, body, status):
    r = reviewer.post(f"/v1/templates/{approved_template['id']}/withdraw", body)
    assert r.status_code == status and r.mimetype == "application/problem+json"
    assert reviewer.get(f"/v1/templates/{approved_template['id']}").json["status"] == "approved"


def test_a_withdrawal_is_an_event_and_a_withdrawn_signature_carries_no_new_template(
        reviewer, tenant, approved_sig, approved_template, db):
    r = reviewer.post(f"/v1/signatures/{approved_sig['id']}/withdraw", {"reason": "签名不属于该客户"})
    assert r.status_code == 200
    with db.session() as s:
        ev = s.scalar(sa.select(Event).where(Event.kind == "signature.withdrawn"))
        assert ev.subject == f"signature:{approved_sig['id']}" and ev.data["reason"] == "签名不属于该客户"
        assert ev.data["approved_templates"] == 1
    r = tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "verification",
                                      "content": VERIFY, "variables": {"code": "code"}})
    assert r.status_code == 422 and "withdrawn" in r.json["detail"]
    # the same name may be submitted again (a new signature, reviewed anew)
    assert tenant.post("/v1/signatures", {"name": approved_sig["name"]}).status_code == 201


def test_openapi_documents_the_withdraw_endpoints(app):
    spec = app.test_client().get("/openapi.json").json
    for kind in ("templates", "signatures"):
        op = spec["paths"][f"/v1/{kind}/{{item_id}}/withdraw"]["post"]
        assert {"200", "409"} <= set(op["responses"])
        assert "TPL_WITHDRAWN" in op["description"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][ref]
        assert schema["required"] == ["reason"] and schema["properties"]["reason"]["maxLength"] == 2000


def test_the_item_page_withdraws_with_a_reason_and_a_confirmation(app, db, web, approved_template):
    tid = approved_template["id"]
    page = web.get(f"/review/template/{tid}").text
    assert 'id="withdraw-form"' in page and 'id="withdraw-confirm"' in page
    token = csrf_of(page)
    r = web.post(f"/review/template/{tid}/withdraw", data={"reason": "冒用品牌", "csrf_token": token})
    assert "Tick the confirmation box" in _flashes(web.get(r.headers["Location"]).text)
    r = web.post(f"/review/template/{tid}/withdraw", data={"reason": " ", "confirm": "1", "csrf_token": token})
    assert "needs a reason" in _flashes(web.get(r.headers["Location"]).text)
    with db.session() as s:
        assert s.get(Template, tid).status == "approved"
    r = web.post(f"/review/template/{tid}/withdraw", data={"reason": "冒用品牌", "confirm": "1", "csrf_token": token})
    page = web.get(r.headers["Location"]).text
    assert "Withdrew template #" in _flashes(page) and "TPL_WITHDRAWN" in _flashes(page)
    assert 'status-withdrawn">withdrawn' in page and 'id="withdraw-form"' not in page
    history = page.split('id="history"', 1)[1].split("</table>", 1)[0]
    assert "user:rita" in history and "status-withdraw" in history and "冒用品牌" in history
    # a pending item has no withdraw button, and posting one is refused
    pending = seed(db)
    page = web.get(f"/review/template/{pending}").text
    assert 'id="withdraw-form"' not in page
    r = web.post(f"/review/template/{pending}/withdraw", data={"reason": "x", "confirm": "1", "csrf_token": token})
    assert "only an approved template can be withdrawn" in _flashes(web.get(r.headers["Location"]).text)


def test_approving_a_flagged_item_from_its_page_asks_for_confirmation(app, db, web):
    flagged = seed(db, content="高额回报，稳赚不赔", outcome="review", categories=("fraud",), score=7)
    plain = seed(db, content="本周会员日", outcome="review", categories=("marketing",), score=5)
    page = web.get(f"/review/template/{flagged}").text
    assert 'id="approve-confirm"' in page and "flagged (fraud)" in page
    assert 'id="approve-confirm"' not in web.get(f"/review/template/{plain}").text
    page = web.get(f"/review/template/{flagged}").text
    token = csrf_of(page)
    r = web.post(f"/review/template/{flagged}/decision", data={"decision": "approve", "csrf_token": token})
    assert "confirm that you checked the findings" in _flashes(web.get(r.headers["Location"]).text)
    with db.session() as s:
        assert s.get(Template, flagged).status == "pending"
    web.get(f"/review/template/{flagged}")
    r = web.post(f"/review/template/{flagged}/decision",
                 data={"decision": "approve", "confirm_flagged": "1", "csrf_token": token})
    assert r.status_code == 302
    with db.session() as s:
        assert s.get(Template, flagged).status == "approved"
    # rejecting never needs it
    web.get(f"/review/template/{plain}")
    r = web.post(f"/review/template/{plain}/decision", data={"decision": "reject", "reason": "营销",
                                                              "csrf_token": token})
    with db.session() as s:
        assert s.get(Template, plain).status == "rejected"


def test_the_item_page_shows_the_account_context(app, db, web, tenant, admin):
    this = seed(db, account="ACME", content="本条", outcome="review", categories=("fraud",), score=7)
    other = seed(db, account="ACME", content="同账户的另一条待审")
    done = seed(db, account="ACME", content="已处理的一条")
    seed(db, account="ELSE", content="别的账户")
    page = web.get(f"/review/template/{done}").text
    web.post(f"/review/template/{done}/decision", data={"decision": "reject", "reason": "不合规",
                                                         "csrf_token": csrf_of(page)})
    assert admin.post("/v1/accounts/ACME/suspend", {"note": "complaints"}).status_code == 200
    page = web.get(f"/review/template/{this}").text
    ctx = page.split('id="account-context"', 1)[1]
    assert 'href="/accounts/ACME"' in page and 'id="account-state">suspended' in ctx
    assert "no messages counted in the last 30 days" in ctx  # a rate needs volume
    with db.session() as s:
        s.add(DailyVolume(account_id="ACME", day=datetime.now(UTC).date(), allowed=4_000_000, rejected=0))
        s.add(Complaint(account_id="ACME", phone="+8613800138000", source="carrier"))
    ctx = web.get(f"/review/template/{this}").text.split('id="account-context"', 1)[1]
    rate = ctx.split('id="complaint-rate">', 1)[1].split("</dd>", 1)[0]
    assert rate.startswith("0.25 per million messages") and "4,000,000 messages" in rate and "(1 complaint," in rate
    pending = ctx.split('id="account-pending"', 1)[1].split("</ul>", 1)[0]
    assert f"template #{other}" in pending and f"template #{this}" not in pending and "ELSE" not in pending
    decisions = ctx.split('id="account-decisions"', 1)[1].split("</ul>", 1)[0]
    assert f"template #{done}" in decisions and "不合规" in decisions and "reject" in decisions
