"""TPL_WITHDRAWN (issue 15, item 3): a withdrawn template, or any template under a withdrawn
signature, is refused by the pre-send check from the very next check on, on every worker,
although the template was cached as approved."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.services.presend import CheckRequest, PresendService
from app.store.models import Template
from tests.presend.conftest import check, make_template, rules


@pytest.fixture
def reviewer(make_client):
    return make_client("reviewer")


def _sig_of(db, tid: int) -> int:
    with db.session() as s:
        return s.get(Template, tid).signature_id


def test_a_withdrawn_template_is_refused_at_the_next_check(tenant, reviewer, templates):
    tid = templates["verification"]
    assert check(tenant, tid).get_json()["verdict"] == "allow"  # cached as approved now
    r = reviewer.post(f"/v1/templates/{tid}/withdraw", {"reason": "冒用他人品牌"})
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    body = check(tenant, tid, phone="+8613800138001").get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "TPL_WITHDRAWN"
    assert rules(check(tenant, tid, phone="+8613800138002")) == ["TPL_WITHDRAWN"]
    assert body["reasons"][0]["detector"] == "template" and "withdrawn" in body["reasons"][0]["evidence"]


def test_every_template_under_a_withdrawn_signature_is_refused(tenant, reviewer, db):
    a = make_template(db, "ACME")
    b = make_template(db, "ACME", "notification", "您的订单${order}已发货。", {"order": "code"})
    with db.session() as s:  # both under one signature
        s.get(Template, b).signature_id = s.get(Template, a).signature_id
    other = make_template(db, "ACME", sig_name="别的签名")
    assert check(tenant, a).get_json()["verdict"] == "allow"
    assert check(tenant, b, params={"order": "802413"}).get_json()["verdict"] == "allow"
    r = reviewer.post(f"/v1/signatures/{_sig_of(db, a)}/withdraw", {"reason": "签名不属于该客户"})
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    assert rules(check(tenant, a, phone="+8613800138003")) == ["TPL_WITHDRAWN"]
    body = check(tenant, b, params={"order": "A1"}, phone="+8613800138004").get_json()
    assert body["forced_by"] == "TPL_WITHDRAWN" and "signature" in body["reasons"][0]["evidence"]
    assert check(tenant, other, phone="+8613800138005").get_json()["verdict"] == "allow"


def test_another_worker_with_the_template_cached_refuses_it_too(app, tenant, reviewer, templates, db, moderator, clock):
    """A second PresendService (another gunicorn worker: its own cache) that read the template
    while approved: its next check after the withdrawal refuses it (no invalidation message;
    the cache is validated by updated_at inside each check's transaction)."""
    tid = templates["verification"]
    other_worker = PresendService(db, moderator)
    other_worker.clock = clock

    def ask(phone: str):
        return other_worker.check(CheckRequest("ACME", tid, {"code": "123456"}, phone,
                                               send_at=None)).verdict

    assert ask("+8613800138010").verdict == "allow"
    assert other_worker.templates._items[tid].status == "approved"
    assert reviewer.post(f"/v1/templates/{tid}/withdraw", {"reason": "撤回"}).status_code == 200
    v = ask("+8613800138011")
    assert v.verdict == "reject" and v.forced_by == "TPL_WITHDRAWN"
    assert other_worker.templates._items[tid].status == "withdrawn"


def test_withdrawal_stamps_a_new_version_even_in_the_same_microsecond(tenant, reviewer, templates, db, monkeypatch):
    """The cache compares (template.updated_at, signature.updated_at): a withdrawal must change
    it even if the clock has not moved since the approval."""
    from datetime import UTC, datetime

    from app.services import review

    tid = templates["verification"]
    with db.session() as s:
        stamp = s.get(Template, tid).updated_at
    frozen = type("Frozen", (datetime,), {"now": classmethod(lambda cls, tz=None: stamp.astimezone(tz or UTC))})
    monkeypatch.setattr(review, "datetime", frozen)
    assert reviewer.post(f"/v1/templates/{tid}/withdraw", {"reason": "撤回"}).status_code == 200
    with db.session() as s:
        assert s.get(Template, tid).updated_at > stamp


def test_the_degraded_open_mode_refuses_a_template_it_saw_withdrawn(app, tenant, reviewer, templates, monkeypatch):
    import sqlite3

    from app.api.messages import service

    tid = templates["verification"]
    assert reviewer.post(f"/v1/templates/{tid}/withdraw", {"reason": "撤回"}).status_code == 200
    assert rules(check(tenant, tid)) == ["TPL_WITHDRAWN"]  # this worker now caches it withdrawn
    with app.app_context():
        svc = service()

    def broken():
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(svc.hp, "transaction", broken)
    svc.fail_mode = "open"
    body = check(tenant, tid, phone="+8613800138020").get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "TPL_WITHDRAWN"


def test_a_pending_template_is_not_withdrawn_and_still_not_approved(tenant, reviewer, db):
    tid = make_template(db, "ACME", status="pending")
    r = reviewer.post(f"/v1/templates/{tid}/withdraw", {"reason": "撤回"})
    assert r.status_code == 409
    assert rules(check(tenant, tid)) == ["TPL_NOT_APPROVED"]
    with db.session() as s:
        assert s.scalar(sa.select(Template.status).where(Template.id == tid)) == "pending"

