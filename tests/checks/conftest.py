"""Fixtures for the record of checks, feedback and the dashboard (issue 16)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.store.models import Account, Signature, Template

VERIFY = "您的验证码是${code}，5分钟内有效，请勿泄露。"
GAMBLING = "澳门百家乐，首充送88，官网 t.cn/xyz"
PASSWORD = "correct horse battery"


def make_template(db, account: str, content: str = VERIFY, variables: dict | None = None,
                  type: str = "verification") -> int:
    with db.session() as s:
        if s.get(Account, account) is None:
            s.add(Account(id=account, name=account))
            s.flush()
        sig = Signature(account_id=account, name="阿克米", status="approved")
        s.add(sig)
        s.flush()
        tpl = Template(account_id=account, signature_id=sig.id, type=type, content=content,
                       variables=variables if variables is not None else {"code": "code"}, status="approved")
        s.add(tpl)
        s.flush()
        return tpl.id


@pytest.fixture
def recorder(app):
    """The app's check recorder; closed (everything written) after the test."""
    from app.services import checks

    rec = checks.install(app)
    yield rec
    rec.close()


@pytest.fixture
def flush(recorder):
    def do() -> None:
        assert recorder.flush(10), "the check records were not written within 10 s"

    return do


@pytest.fixture
def reviewer(make_client):
    return make_client("reviewer")


@pytest.fixture
def beta(make_client, db):
    """A tenant of another account, BETA."""
    with db.session() as s:
        if s.get(Account, "BETA") is None:
            s.add(Account(id="BETA", name="Beta"))
    return make_client("tenant", "BETA")


@pytest.fixture
def acme_template(db, tenant):
    return make_template(db, "ACME")


@pytest.fixture
def beta_template(db, beta):
    return make_template(db, "BETA")


def presend(client, template_id: int, phone: str = "+8613800138000", code: str = "482915", **extra):
    body = {"template_id": template_id, "phone": phone, "params": {"code": code}}
    body.update(extra)
    r = client.post("/v1/messages/check", body)
    assert r.status_code == 200, r.json
    return r.json


def item(at: datetime, account: str | None = "ACME", verdict: str = "allow", categories=(), rules=(),
         source: str = "presend", message_id: str | None = None, phone: str | None = "+8613800138000",
         text: str = "您的验证码是482915", template_id: int | None = 1):
    """A check record as the recorder would be handed it (a stand-in Verdict)."""
    from app.services.checks import Item

    reasons = [{"rule": r, "category": (categories[0] if categories else None), "detector": "keyword",
                "score": 1.0} for r in rules]
    v = {"verdict": verdict, "categories": list(categories), "score": 10.0 if verdict == "reject" else 0.0,
         "reasons": reasons, "ruleset_version": "rs-test", "model_version": "m-test", "forced_by": None}
    return Item(source, at, account, message_id, template_id if source == "presend" else None, phone, v, text)


def hours_ago(h: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(hours=h)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf token in the page"
    return m.group(1)


@pytest.fixture
def web_user(db):
    from app.services import users

    with db.session() as s:
        users.create(s, "rita", PASSWORD, "reviewer", actor="test")
    return "rita"


@pytest.fixture
def web(app, web_user):
    """A Flask test client signed in as the reviewer rita, who reads the pages in English (the
    language cookie of app/web/i18n.py; the pages are Chinese by default)."""
    from app.web.i18n import COOKIE

    c = app.test_client()
    c.set_cookie(COOKIE, "en")
    page = c.get("/login")
    r = c.post("/login", data={"username": web_user, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 302, r.text[:500]
    return c
