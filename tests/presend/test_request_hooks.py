"""What runs around a pre-send call: the reviewer pages' hooks (CSRF, security headers, the
language cookie) only on pages, never on the signed /v1 API; the API's own guard (signature,
replay) on every /v1 call; and the one pooled connection a check holds is given back whatever
the answer."""
from __future__ import annotations

import json
import secrets
import time

from tests.presend.conftest import check

PAGE_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


def test_the_page_hooks_do_not_run_on_the_api(tenant, templates):
    r = tenant.post("/v1/messages/check", {"template_id": templates["verification"], "phone": "+8613800138000",
                                           "params": {"code": "482915"}}, query={"lang": "en"})
    assert r.status_code == 200, r.get_json()
    for h in PAGE_HEADERS:
        assert h not in r.headers
    assert r.headers.get("Cache-Control") != "no-store"
    assert "smsguard_lang" not in r.headers.get("Set-Cookie", "")
    assert r.headers["X-Request-Id"]  # the app-wide hooks still run


def test_the_api_guard_still_runs(app, tenant, templates):
    c = app.test_client()
    r = c.post("/v1/messages/check", json={"template_id": templates["verification"], "phone": "+8613800138000"})
    assert r.status_code == 401 and r.get_json()["reason"] == "missing_header"
    assert "Content-Security-Policy" not in r.headers

    body = {"template_id": templates["verification"], "phone": "+8613800138000", "params": {"code": "482915"}}
    raw = json.dumps(body).encode()
    headers = tenant.headers("POST", "/v1/messages/check", [], raw, ts=str(int(time.time())),
                             nonce=secrets.token_hex(16))
    first = c.post("/v1/messages/check", data=raw, headers=headers, content_type="application/json")
    again = c.post("/v1/messages/check", data=raw, headers=headers, content_type="application/json")
    assert first.status_code == 200, first.get_json()
    assert again.status_code == 401 and again.get_json()["reason"] == "replayed_nonce"
    assert app.extensions["smsguard.db"].engine.pool.checkedout() == 0


def test_pages_keep_their_hooks(app):
    c = app.test_client()
    r = c.get("/login?lang=en")
    assert r.status_code == 200
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"
    assert "smsguard_lang=en" in r.headers.get("Set-Cookie", "")
    asset = c.get("/web/static/web.css")
    assert asset.status_code == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"
    assert asset.headers.get("Cache-Control") != "no-store"
    # a form posted without its CSRF token is refused
    assert c.post("/login", data={"username": "rita", "password": "x"}).status_code == 400


def test_a_check_gives_its_connection_back(tenant, templates, db):
    pool = db.engine.pool
    assert check(tenant, templates["verification"]).status_code == 200
    assert pool.checkedout() == 0
    assert check(tenant, templates["verification"], phone="not a phone").status_code == 422
    assert pool.checkedout() == 0
    assert check(tenant, 999_999).status_code == 200  # TPL_NOT_FOUND: a reject, answered
    assert pool.checkedout() == 0
    r = tenant.post("/v1/messages/check", {"template_id": "x", "phone": "+8613800138000"})
    assert r.status_code == 422 and pool.checkedout() == 0
