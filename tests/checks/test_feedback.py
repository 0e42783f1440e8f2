"""POST/GET /v1/feedback and decisions: validation, tenant isolation, accepted feedback becoming
an account allow / block term and a training example."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.store.models import CustomTerm, Event
from app.store.records import Feedback, TrainingExample

from .conftest import GAMBLING, presend


@pytest.fixture
def acme_check(tenant, acme_template, flush):
    presend(tenant, acme_template, message_id="m-fb")
    flush()
    return tenant.get("/v1/checks", query={"message_id": "m-fb"}).json["items"][0]


@pytest.fixture
def beta_check(beta, beta_template, flush):
    presend(beta, beta_template, message_id="b-fb", phone="+8613800138009")
    flush()
    return beta.get("/v1/checks").json["items"][0]


def test_tenant_files_feedback_about_its_own_check(tenant, acme_check, db):
    r = tenant.post("/v1/feedback", {"check_id": acme_check["id"], "expected": "reject", "category": "fraud",
                                     "note": "this template is abused"})
    assert r.status_code == 201, r.json
    fb = r.json
    assert fb["status"] == "pending" and fb["account_id"] == "ACME" and fb["check_id"] == acme_check["id"]
    assert fb["text"] == acme_check["text"] and fb["engine_verdict"] == "allow" and fb["created"] is True
    assert fb["message_id"] == "m-fb" and fb["submitted_role"] == "tenant"
    # the same again: the stored one, 200
    r2 = tenant.post("/v1/feedback", {"check_id": acme_check["id"], "expected": "reject", "category": "fraud"})
    assert r2.status_code == 200 and r2.json["id"] == fb["id"] and r2.json["created"] is False
    # the check shows it
    d = tenant.get(f"/v1/checks/{acme_check['id']}").json
    assert [f["id"] for f in d["feedback"]] == [fb["id"]]
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.kind == "feedback.received")) == 1


def test_feedback_by_message_id_and_by_text(tenant, acme_check, reviewer):
    r = tenant.post("/v1/feedback", {"message_id": "m-fb", "expected": "reject", "category": "gambling"})
    assert r.status_code == 201 and r.json["check_id"] == acme_check["id"]
    r = tenant.post("/v1/feedback", {"message_id": "unknown", "expected": "reject"})
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    r = tenant.post("/v1/feedback", {"text": GAMBLING, "expected": "allow", "note": "it is our casino hotel"})
    assert r.status_code == 201 and r.json["engine_verdict"] == "reject" and r.json["account_id"] == "ACME"
    assert r.json["verdict"]["categories"] and r.json["check_id"] is None
    # a reviewer: message ids need the account
    r = reviewer.post("/v1/feedback", {"message_id": "m-fb", "expected": "reject"})
    assert r.status_code == 422 and "account" in r.json["errors"]
    r = reviewer.post("/v1/feedback", {"message_id": "m-fb", "account": "ACME", "expected": "reject"})
    assert r.status_code == 201 and r.json["check_id"] == acme_check["id"] and r.json["submitted_role"] == "reviewer"


def test_tenants_never_reach_another_accounts_checks_or_feedback(tenant, beta, acme_check, beta_check, reviewer):
    r = tenant.post("/v1/feedback", {"check_id": beta_check["id"], "expected": "reject"})
    assert r.status_code == 404
    r = tenant.post("/v1/feedback", {"message_id": "b-fb", "expected": "reject"})
    assert r.status_code == 404  # its own account is searched: BETA's message id is unknown there
    r = tenant.post("/v1/feedback", {"message_id": "b-fb", "expected": "reject", "account": "BETA"})
    assert r.status_code == 404
    mine = tenant.post("/v1/feedback", {"check_id": acme_check["id"], "expected": "reject"}).json
    theirs = beta.post("/v1/feedback", {"check_id": beta_check["id"], "expected": "reject"}).json
    assert [f["id"] for f in tenant.get("/v1/feedback").json["items"]] == [mine["id"]]
    assert [f["id"] for f in beta.get("/v1/feedback").json["items"]] == [theirs["id"]]
    assert tenant.get(f"/v1/feedback/{theirs['id']}").status_code == 404
    assert tenant.get("/v1/feedback", query={"account": "BETA"}).status_code == 404
    assert {f["id"] for f in reviewer.get("/v1/feedback").json["items"]} == {mine["id"], theirs["id"]}
    assert [f["id"] for f in reviewer.get("/v1/feedback", query={"account": "BETA"}).json["items"]] == [theirs["id"]]
    # tenants do not decide
    r = tenant.post(f"/v1/feedback/{mine['id']}/decision", {"decision": "dismiss"})
    assert r.status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"expected": "reject"}, "_schema"),
    ({"check_id": 1, "text": "x", "expected": "reject"}, "_schema"),
    ({"message_id": "a", "text": "x", "expected": "reject"}, "_schema"),
    ({"text": "x", "expected": "maybe"}, "expected"),
    ({"text": "x"}, "expected"),
    ({"text": "x", "expected": "reject", "category": "spam"}, "category"),
    ({"text": "", "expected": "reject"}, "text"),
    ({"check_id": "7", "expected": "reject"}, "check_id"),
    ({"check_id": 0, "expected": "reject"}, "check_id"),
    ({"check_id": 2**64, "expected": "reject"}, "check_id"),
    ({"text": "x", "expected": "allow", "note": "n" * 2001}, "note"),
    ({"text": "x", "expected": "allow", "colour": "red"}, "colour"),
])
def test_bad_feedback_is_422(tenant, body, field):
    r = tenant.post("/v1/feedback", body)
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json" and field in r.json["errors"], r.json


def test_text_longer_than_the_limit_is_422(tenant):
    r = tenant.post("/v1/feedback", {"text": "好" * 1001, "expected": "allow"})
    assert r.status_code == 422 and "text" in r.json["errors"]


def test_accepting_adds_the_allow_term_and_a_training_example(tenant, reviewer, db):
    fb = tenant.post("/v1/feedback", {"text": GAMBLING, "expected": "allow", "note": "our hotel's casino"}).json
    r = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {
        "decision": "accept", "actions": ["account_allow_term", "training_example"], "term": "澳门百家乐",
        "note": "fine for this customer"})
    assert r.status_code == 200, r.json
    out = r.json
    assert out["status"] == "accepted" and out["decided_by"].startswith("key:") and out["decision_note"]
    kinds = {a["action"]: a for a in out["actions"]}
    assert kinds["account_allow_term"]["term"] == "澳门百家乐" and kinds["account_allow_term"]["account"] == "ACME"
    with db.session() as s:
        terms = s.execute(sa.select(CustomTerm.kind, CustomTerm.term).where(CustomTerm.account_id == "ACME")).all()
        assert ("allow", "澳门百家乐") in terms
        ex = s.scalars(sa.select(TrainingExample)).one()
        assert (ex.text, ex.labels, ex.lang, ex.origin, ex.ref) == (GAMBLING, [], "zh", "feedback", f"feedback:{fb['id']}")
        assert ex.decided_by == out["decided_by"] and ex.decided_at is not None
        assert kinds["training_example"]["example_id"] == ex.id
    # the account's own list applies at once (the list cache was refreshed): the keyword hit is gone
    v = tenant.post("/v1/moderate", {"text": GAMBLING}).json
    assert not any(r.get("evidence") == "百家乐" and r["detector"] == "keyword" for r in v["reasons"]), v
    # decided once only
    again = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {"decision": "dismiss"})
    assert again.status_code == 409 and again.mimetype == "application/problem+json"


def test_accepting_a_block_term_with_its_category(tenant, reviewer, db):
    fb = tenant.post("/v1/feedback", {"text": "新品上市，加微信领取内部价", "expected": "reject",
                                      "category": "fraud"}).json
    r = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {
        "decision": "accept", "actions": ["account_block_term", "training_example"], "term": "内部价"})
    assert r.status_code == 200, r.json
    with db.session() as s:
        row = s.execute(sa.select(CustomTerm.kind, CustomTerm.term, CustomTerm.category)
                        .where(CustomTerm.account_id == "ACME")).one()
        assert tuple(row) == ("block", "内部价", "fraud")
        assert s.scalars(sa.select(TrainingExample.labels)).one() == ["fraud"]
    v = tenant.post("/v1/moderate", {"text": "内部价今天截止"}).json
    assert v["verdict"] == "reject" and any(x.get("evidence") == "内部价" for x in v["reasons"]), v


def test_decision_rules(tenant, reviewer, acme_check, db, recorder):
    # a reviewer's own feedback changes no customer's list
    rfb = reviewer.post("/v1/feedback", {"text": GAMBLING, "account": "ACME", "expected": "allow"}).json
    r = reviewer.post(f"/v1/feedback/{rfb['id']}/decision", {"decision": "accept", "actions": ["account_allow_term"],
                                                             "term": "百家乐"})
    assert r.status_code == 422 and "actions" in r.json["errors"]
    # allow term for a feedback that expected reject
    fb = tenant.post("/v1/feedback", {"text": GAMBLING, "expected": "reject"}).json
    r = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {"decision": "accept", "actions": ["account_allow_term"],
                                                            "term": "x"})
    assert r.status_code == 422
    # a block term needs the term
    r = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {"decision": "accept", "actions": ["account_block_term"]})
    assert r.status_code == 422 and "term" in r.json["errors"]
    # a reject example needs a prohibited category
    r = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {"decision": "accept", "actions": ["training_example"]})
    assert r.status_code == 422 and "category" in r.json["errors"]
    r = reviewer.post(f"/v1/feedback/{fb['id']}/decision", {"decision": "accept", "actions": ["training_example"],
                                                            "category": "gambling"})
    assert r.status_code == 200 and r.json["actions"][0]["labels"] == ["gambling"]
    # dismiss takes no actions; unknown actions and decisions are 422
    fb2 = tenant.post("/v1/feedback", {"text": "你好", "expected": "reject"}).json
    for body in ({"decision": "dismiss", "actions": ["training_example"]}, {"decision": "maybe"},
                 {"decision": "accept", "actions": ["delete_everything"]}, {"decision": "accept", "extra": 1}):
        r = reviewer.post(f"/v1/feedback/{fb2['id']}/decision", body)
        assert r.status_code == 422, (body, r.json)
    assert reviewer.post(f"/v1/feedback/{fb2['id']}/decision", {"decision": "dismiss"}).json["status"] == "dismissed"
    assert reviewer.post("/v1/feedback/999999/decision", {"decision": "dismiss"}).status_code == 404
    # a check recorded masked has no text to learn from
    recorder.mode = "masked"
    presend(tenant, acme_check["template_id"], message_id="m-masked", phone="+8613800138077")
    assert recorder.flush(10)
    masked = tenant.post("/v1/feedback", {"message_id": "m-masked", "expected": "reject", "category": "fraud"}).json
    assert masked["text_mode"] == "masked" and "482915" not in masked["text"]
    r = reviewer.post(f"/v1/feedback/{masked['id']}/decision", {"decision": "accept", "actions": ["training_example"]})
    assert r.status_code == 422 and "no full text" in r.json["detail"]
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Feedback).where(Feedback.status == "pending")) >= 2


def test_feedback_pages_through_a_cursor(tenant, reviewer):
    made = [tenant.post("/v1/feedback", {"text": f"消息{i}", "expected": "allow"}).json["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        q = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = reviewer.get("/v1/feedback", query=q)
        assert r.status_code == 200
        seen += [f["id"] for f in r.json["items"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(made, reverse=True)
    assert reviewer.get("/v1/feedback", query={"cursor": "junk"}).status_code == 400
    assert reviewer.get("/v1/feedback", query={"status": "lost"}).status_code == 422
