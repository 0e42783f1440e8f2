"""Fixtures for the review tests: an approved signature, seeded templates, web users.

The pages default to Simplified Chinese; these tests assert their English wording, so every
test client here asks for English (the language cookie, tests/review/english.py), except the
tests of the language itself (test_i18n.py), which make their clients without it."""
from __future__ import annotations

import re

import pytest

from .english import english_test_clients

GAMBLING = "${name}您好，百家乐新玩法上线，拒收请回复R"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _english_pages(monkeypatch):
    english_test_clients(monkeypatch)


@pytest.fixture
def reviewer(make_client):
    return make_client("reviewer")


@pytest.fixture
def approved_sig(tenant, reviewer):
    r = tenant.post("/v1/signatures", {"name": "阿克米科技", "note": "our brand"})
    assert r.status_code == 201, r.json
    r = reviewer.post(f"/v1/signatures/{r.json['id']}/decision", {"decision": "approve"})
    assert r.status_code == 200, r.json
    return r.json


@pytest.fixture
def gambling_template(tenant, approved_sig):
    r = tenant.post("/v1/templates", {"signature": approved_sig["id"], "type": "promotional",
                                      "content": GAMBLING, "variables": {"name": "name"}})
    assert r.status_code == 201 and r.json["status"] == "pending", r.json
    return r.json


@pytest.fixture
def web_user(db):
    from app.services import users

    with db.session() as s:
        users.create(s, "rita", PASSWORD, "reviewer", actor="test")
    return "rita"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf token in the page"
    return m.group(1)


@pytest.fixture
def web(app, web_user):
    """A Flask test client signed in as the reviewer rita."""
    c = app.test_client()
    page = c.get("/login")
    r = c.post("/login", data={"username": web_user, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 302, r.text[:500]
    return c
