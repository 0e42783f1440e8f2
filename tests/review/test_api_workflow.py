"""The review workflow through the signed API: roles, scoping, decisions kept, 409, immutability."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.store.models import Event, ReviewDecision

OK_SIG = "阿克米科技"
VERIFY = "您的验证码为${code}，5分钟内有效，请勿泄露给他人。"
GAMBLING = "${name}您好，百家乐新玩法上线，拒收请回复R"


def _ok(r, status=200):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:500])
    return r.json


def _sig(client, name=OK_SIG, **extra):
    return client.post("/v1/signatures", {"name": name, "note": "our brand", **extra})


@pytest.fixture
def other_tenant(make_client):
    return make_client("tenant", "OTHER")


@pytest.fixture
def reviewer(make_client):
    return make_client("reviewer")


@pytest.fixture
def approved_sig(tenant, reviewer):
    sig = _ok(_sig(tenant), 201)
    assert sig["status"] == "pending"  # policy: signatures wait for a reviewer
    return _ok(reviewer.post(f"/v1/signatures/{sig['id']}/decision", {"decision": "approve"}))


def test_signature_submit_lint_rejects_with_reasons(tenant):
    body = _ok(_sig(tenant, "【测试】"), 201)
    assert body["status"] == "rejected"
    rules = {r["rule"] for r in body["verdict"]["reasons"]}
    assert {"TPL_SIGNATURE_CHARSET", "TPL_SIGNATURE_GENERIC"} <= rules
    assert "TPL_SIGNATURE_CHARSET" in body["reason"]
    assert body["decisions"][0]["actor"] == "system" and body["decisions"][0]["decision"] == "reject"


def test_signature_clean_is_pending_then_reviewer_approves(tenant, reviewer, db):
    sig = _ok(_sig(tenant), 201)
    assert sig["status"] == "pending" and sig["account"] == "ACME"
    assert sig["decisions"][0]["decision"] == "pending"
    body = _ok(reviewer.post(f"/v1/signatures/{sig['id']}/decision", {"decision": "approve", "reason": "ok"}))
    assert body["status"] == "approved"
    assert [d["decision"] for d in body["decisions"]] == ["pending", "approve"]
    assert body["decisions"][1]["actor"] == f"key:{reviewer.public_key}"
    # the tenant sees that a reviewer decided, not which key
    seen = _ok(tenant.get(f"/v1/signatures/{sig['id']}"))
    assert seen["decisions"][1]["actor"] == "reviewer" and seen["status"] == "approved"
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.subject == f"signature:{sig['id']}"))]
    assert kinds == ["signature.submitted", "signature.approved"]


def test_duplicate_active_signature_is_409(tenant):
    _ok(_sig(tenant), 201)
    _ok(_sig(tenant), 409)


def test_template_verification_clean_is_approved_by_policy(tenant, approved_sig):
    body = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "verification",
                                             "content": VERIFY, "variables": {"code": "code"}}), 201)
    assert body["status"] == "approved", body["verdict"]
    assert body["signature"] == OK_SIG and body["variables"] == {"code": "code"}
    assert body["decisions"][0]["actor"] == "system" and body["decisions"][0]["decision"] == "approve"


def test_template_by_signature_name_and_lint_rejection(tenant, approved_sig):
    body = _ok(tenant.post("/v1/templates", {"signature": OK_SIG, "type": "verification",
                                             "content": "您好，请点击 https://t.cn/abc 领取${x}",
                                             "variables": {"x": "text"}}), 201)
    assert body["status"] == "rejected"
    rules = {r["rule"] for r in body["verdict"]["reasons"]}
    assert {"TPL_VERIFICATION_WORDING", "TPL_VERIFICATION_CODE_VARIABLE", "TPL_VERIFICATION_LINK"} <= rules
    link = next(r for r in body["verdict"]["reasons"] if r["rule"] == "TPL_VERIFICATION_LINK")
    assert body["content"][link["span"][0]:link["span"][1]] == link["evidence"] == "https://t.cn/abc"


def test_gambling_template_is_pending_with_spans_in_the_original(tenant, approved_sig):
    body = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "promotional",
                                             "content": GAMBLING, "variables": {"name": "name"}}), 201)
    assert body["status"] == "pending", body["verdict"]
    assert "gambling" in body["verdict"]["categories"]
    hit = next(r for r in body["verdict"]["reasons"] if r["category"] == "gambling" and r.get("span"))
    a, b = hit["span"]
    assert GAMBLING[a:b] == hit["evidence"] == "百家乐"


def test_promotional_clean_waits_for_a_reviewer(tenant, approved_sig):
    body = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "promotional",
                                             "content": "${name}您好，会员日全场8折，拒收请回复R",
                                             "variables": {"name": "name"}}), 201)
    assert body["status"] == "pending" and body["verdict"]["verdict"] == "allow"
    assert "review policy" in body["decisions"][0]["reason"]


def test_bad_variable_declaration_is_422(tenant, approved_sig):
    r = tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "notification",
                                      "content": "您的订单${no}已发货", "variables": {"no": "colour"}})
    assert r.status_code == 422 and "variables" in r.json["errors"]


def test_unknown_field_and_bad_type_are_422(tenant, approved_sig):
    assert tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "bulk",
                                         "content": "x"}).status_code == 422
    assert tenant.post("/v1/signatures", {"name": "阿克米", "colour": 1}).status_code == 422


def test_rejected_signature_cannot_carry_templates(tenant):
    sig = _ok(_sig(tenant, "测试"), 201)
    assert sig["status"] == "rejected"
    r = tenant.post("/v1/templates", {"signature": sig["id"], "type": "notification",
                                      "content": "您的订单${no}已发货", "variables": {"no": "text"}})
    assert r.status_code == 422


def test_tenant_cannot_decide(tenant, approved_sig):
    tpl = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "promotional",
                                            "content": GAMBLING, "variables": {"name": "name"}}), 201)
    r = tenant.post(f"/v1/templates/{tpl['id']}/decision", {"decision": "approve"})
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    r = tenant.post(f"/v1/signatures/{approved_sig['id']}/decision", {"decision": "approve"})
    assert r.status_code == 403


def test_tenant_sees_only_its_own(tenant, other_tenant, approved_sig, make_client):
    tpl = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "promotional",
                                            "content": GAMBLING, "variables": {"name": "name"}}), 201)
    assert other_tenant.get(f"/v1/templates/{tpl['id']}").status_code == 404
    assert other_tenant.get(f"/v1/signatures/{approved_sig['id']}").status_code == 404
    assert _ok(other_tenant.get("/v1/templates")) == []
    assert other_tenant.get("/v1/templates", query={"account": "ACME"}).status_code == 404
    # nor can it use another account's signature, or submit for it
    r = other_tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "notification",
                                            "content": "您的订单${no}已发货", "variables": {"no": "text"}})
    assert r.status_code == 404
    assert _sig(other_tenant, "别家公司", account="ACME").status_code == 404
    assert [t["id"] for t in _ok(tenant.get("/v1/templates"))] == [tpl["id"]]


def test_reviewer_lists_all_and_filters(tenant, other_tenant, reviewer, approved_sig):
    _ok(_sig(other_tenant, "别家公司"), 201)
    pending = _ok(reviewer.get("/v1/signatures", query={"status": "pending"}))
    assert [s["account"] for s in pending] == ["OTHER"]
    everything = _ok(reviewer.get("/v1/signatures"))
    assert {s["account"] for s in everything} == {"ACME", "OTHER"}
    only_acme = _ok(reviewer.get("/v1/signatures", query={"account": "ACME"}))
    assert {s["account"] for s in only_acme} == {"ACME"}
    assert reviewer.get("/v1/signatures", query={"status": "maybe"}).status_code == 422


def test_reviewer_cannot_submit_admin_submits_on_behalf(reviewer, admin):
    assert _sig(reviewer).status_code == 403
    r = _sig(admin)
    assert r.status_code == 422 and "account" in r.json["errors"]
    _ok(admin.post("/v1/accounts", {"id": "ACME"}), 201)
    body = _ok(_sig(admin, account="ACME"), 201)
    assert body["account"] == "ACME"
    assert _sig(admin, "新品牌", account="NOPE").status_code == 404


def test_reject_needs_a_reason_and_redeciding_is_409(tenant, reviewer, admin, approved_sig, db):
    tpl = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "promotional",
                                            "content": GAMBLING, "variables": {"name": "name"}}), 201)
    url = f"/v1/templates/{tpl['id']}/decision"
    assert reviewer.post(url, {"decision": "reject"}).status_code == 422
    body = _ok(reviewer.post(url, {"decision": "reject", "reason": "gambling promotion"}))
    assert body["status"] == "rejected" and body["reason"] == "gambling promotion"
    again = admin.post(url, {"decision": "approve", "reason": "changed my mind"})
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    with db.session() as s:
        rows = list(s.scalars(select(ReviewDecision).where(ReviewDecision.subject_type == "template",
                                                           ReviewDecision.subject_id == tpl["id"])
                              .order_by(ReviewDecision.id)))
    assert [(r.decision, r.actor) for r in rows] == [("pending", "system"),
                                                     ("reject", f"key:{reviewer.public_key}")]
    assert rows[1].reason == "gambling promotion" and rows[1].created_at is not None
    assert any(h["rule"] == "KW_GAMBLING_CASINO_GAME" for h in rows[1].verdict["reasons"])
    seen = _ok(tenant.get(f"/v1/templates/{tpl['id']}"))
    assert seen["status"] == "rejected" and seen["reason"] == "gambling promotion"


def test_approved_template_is_immutable(tenant, reviewer, approved_sig):
    tpl = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "verification",
                                            "content": VERIFY, "variables": {"code": "code"}}), 201)
    assert tpl["status"] == "approved"
    r = reviewer.post(f"/v1/templates/{tpl['id']}/decision", {"decision": "reject", "reason": "no"})
    assert r.status_code == 409
    for method in ("PUT", "PATCH", "DELETE"):
        assert tenant.open(method, f"/v1/templates/{tpl['id']}", json_body={"content": "x"}).status_code == 405
    # a change is a new template
    new = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "verification",
                                            "content": VERIFY + "如非本人操作请忽略。",
                                            "variables": {"code": "code"}}), 201)
    assert new["id"] != tpl["id"]
    assert _ok(tenant.get(f"/v1/templates/{tpl['id']}"))["content"] == VERIFY


def test_decide_unknown_is_404(reviewer):
    assert reviewer.post("/v1/templates/999/decision", {"decision": "approve"}).status_code == 404


def test_unsigned_requests_are_401(app):
    c = app.test_client()
    assert c.get("/v1/templates").status_code == 401
    assert c.post("/v1/signatures", json={"name": "x"}).status_code == 401


def test_two_reviewers_at_once_one_wins(db, moderator, approved_sig):
    """Concurrent decisions on the same item: exactly one succeeds, the other is a Conflict."""
    import threading

    from app.services import review
    from app.services.errors import Conflict

    with db.session() as s:
        tpl = review.submit_template(s, moderator, "ACME", approved_sig["id"], "promotional", GAMBLING,
                                     {"name": "name"}, actor="test")
        tid = tpl.id
    results: list[str] = []
    barrier = threading.Barrier(4)

    def decide(i: int):
        barrier.wait()
        try:
            with db.session(immediate=True) as s:
                review.decide(s, "template", tid, "reject" if i % 2 else "approve", f"reviewer {i}",
                              f"user:r{i}", "reviewer")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["conflict", "conflict", "conflict", "ok"]
    with db.session() as s:
        assert [d.decision for d in review.decisions(s, "template", tid)][0] == "pending"
        assert len(review.decisions(s, "template", tid)) == 2


def test_a_template_hiding_a_link_with_bidi_controls_is_never_auto_approved(tenant, approved_sig):
    """Issue 14: the link written backwards between U+202E and U+202C (a phone shows it
    forwards) was auto-approved. Now the controls are a finding and the displayed link is seen."""
    hidden = "\u202e" + "moc.knab-ekaf.www//:sptth" + "\u202c"
    body = _ok(tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "verification",
                                             "content": f"您的验证码是${{code}}，5分钟内有效 {hidden}",
                                             "variables": {"code": "code"}}), 201)
    assert body["status"] == "pending", body["decisions"]
    reasons = {r["rule"]: r for r in body["verdict"]["reasons"]}
    assert reasons["PAT_BIDI_CONTROL"]["action"] == "review"
    assert "as displayed" in reasons["PAT_URL"]["description"]  # the link a phone shows was seen
