"""The accounts pages: status, complaint rate, history; admins suspend and reinstate with a note."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.store.models import Account, AccountStateChange, Complaint

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _english_pages(monkeypatch):
    """These tests assert the pages' English wording: their clients ask for English (the
    language cookie; the default is Chinese, tests/review/test_i18n.py)."""
    from tests.review.english import english_test_clients

    english_test_clients(monkeypatch)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf token in the page"
    return m.group(1)


def _login(app, db, name: str, role: str):
    from app.services import users

    with db.session() as s:
        users.create(s, name, PASSWORD, role, actor="test")
    c = app.test_client()
    r = c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": _csrf(c.get("/login").text)})
    assert r.status_code == 302, r.text[:300]
    return c


@pytest.fixture
def seeded(db):
    with db.session() as s:
        s.add(Account(id="ACME", name="Acme Ltd"))
        s.flush()
        for i in range(2):
            s.add(Complaint(account_id="ACME", phone=f"+86138001380{i:02d}", source="carrier", reason="spam"))


def test_pages_need_sign_in(app, seeded):
    c = app.test_client()
    assert c.get("/accounts/").status_code == 302
    assert c.get("/accounts/ACME").status_code == 302


def test_reviewer_sees_status_rate_and_history_but_cannot_act(app, db, seeded):
    c = _login(app, db, "rita", "reviewer")
    page = c.get("/accounts/")
    assert page.status_code == 200 and "ACME" in page.text and "Acme Ltd" in page.text
    detail = c.get("/accounts/ACME")
    assert detail.status_code == 200 and "No state changes." in detail.text
    assert "suspend-form" not in detail.text
    r = c.post("/accounts/ACME/suspend", data={"note": "x", "csrf_token": _csrf(detail.text)})
    assert r.status_code == 403
    assert c.get("/accounts/NOPE").status_code == 404


def test_admin_suspends_and_reinstates_with_a_note(app, db, seeded):
    c = _login(app, db, "ann", "admin")
    page = c.get("/accounts/ACME")
    token = _csrf(page.text)
    assert 'id="suspend-form"' in page.text
    # no CSRF token: refused
    assert c.post("/accounts/ACME/suspend", data={"note": "spam wave"}).status_code == 400
    # no note: refused with a message, nothing changes
    r = c.post("/accounts/ACME/suspend", data={"note": " ", "csrf_token": token}, follow_redirects=True)
    assert "needs a note" in r.text
    # a note alone asks for confirmation (issue 15): nothing changes yet
    r = c.post("/accounts/ACME/suspend", data={"note": "spam wave", "csrf_token": token})
    assert r.status_code == 200 and 'id="confirm-suspend"' in r.text and 'id="account-status">active' in r.text
    r = c.post("/accounts/ACME/suspend", data={"note": "spam wave", "csrf_token": token, "confirm": "ACME",
                                                "expect": "active"}, follow_redirects=True)
    assert r.status_code == 200 and 'id="account-status">suspended' in r.text and "spam wave" in r.text
    r = c.post("/accounts/ACME/reinstate", data={"note": "cleaned up", "csrf_token": token, "confirm": "ACME"},
               follow_redirects=True)
    assert 'id="account-status">active' in r.text and "ACCT_MANUAL_REINSTATE" in r.text
    with db.session() as s:
        ch = s.scalars(sa.select(AccountStateChange).order_by(AccountStateChange.id)).all()
        assert [(c.to_status, c.actor, c.note) for c in ch] == [("suspended", "user:ann", "spam wave"),
                                                                ("active", "user:ann", "cleaned up")]
