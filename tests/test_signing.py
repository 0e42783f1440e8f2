"""Signed requests: the good path, every 401 reason, replays, roles and tenant isolation."""
from __future__ import annotations

import time

import pytest

from app.services import keys
from app.services.keys import canonical_query, string_to_sign


def test_string_to_sign_matches_the_documented_example():
    # the worked example of docs/signing.md
    sts = string_to_sign("post", "/v1/moderate", [("b", "2 3"), ("a", "é")], "1767225600",
                         "3f1c0a9d7e6b4c21a8f0e5d4c3b2a190", b'{"text":"hi"}')
    assert sts.split("\n")[:5] == ["POST", "/v1/moderate", "a=%C3%A9&b=2%203", "1767225600",
                                   "3f1c0a9d7e6b4c21a8f0e5d4c3b2a190"]
    assert sts.split("\n")[5] == "e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500"
    assert keys.sign("sk_example_private_key_do_not_use", "POST", "/v1/moderate",
                     [("b", "2 3"), ("a", "é")], "1767225600", "3f1c0a9d7e6b4c21a8f0e5d4c3b2a190",
                     b'{"text":"hi"}') == "07c7b3eb24d8b9625c72d603337c196a89b354e1bd1f21c49f2d14fb5d28a9d4"


def test_canonical_query_sorts_and_percent_encodes():
    assert canonical_query([("z", "1"), ("a", "x y"), ("a", "b/c")]) == "a=b%2Fc&a=x%20y&z=1"
    assert canonical_query([]) == ""


def test_a_good_signed_request_is_answered(tenant):
    r = tenant.get("/v1/accounts/ACME")
    assert r.status_code == 200, r.json
    assert r.json["id"] == "ACME"
    assert r.headers["X-Request-Id"]


def test_signed_request_with_query_and_body(admin):
    r = admin.post("/v1/accounts", {"id": "BETA", "name": "Beta 公司"})
    assert r.status_code == 201, r.json
    assert r.json["name"] == "Beta 公司"


def _problem(r, status, reason=None):
    assert r.status_code == status, (r.status_code, r.data)
    assert r.mimetype == "application/problem+json"
    body = r.json
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    if reason:
        assert body["reason"] == reason, body
    return body


@pytest.mark.parametrize("header", ["X-Api-Key", "X-Timestamp", "X-Nonce", "X-Signature"])
def test_missing_header_is_401(tenant, header):
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"")
    del h[header]
    r = tenant.client.get("/v1/accounts/ACME", headers=h)
    body = _problem(r, 401, "missing_header")
    assert header in body["detail"]


def test_unknown_key_is_401(tenant):
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"")
    h["X-Api-Key"] = "pk_doesnotexist0000000000"
    _problem(tenant.client.get("/v1/accounts/ACME", headers=h), 401, "unknown_key")


def test_revoked_key_is_401(tenant, db):
    assert tenant.get("/v1/accounts/ACME").status_code == 200
    with db.session() as s:
        keys.revoke(s, tenant.public_key, actor="test")
    _problem(tenant.get("/v1/accounts/ACME"), 401, "revoked_key")


def test_rotated_key_works_and_old_one_is_refused(tenant, db):
    with db.session() as s:
        new = keys.rotate(s, tenant.public_key, actor="test")
    _problem(tenant.get("/v1/accounts/ACME"), 401, "revoked_key")
    tenant.public_key, tenant.private_key = new.public_key, new.private_key
    assert tenant.get("/v1/accounts/ACME").status_code == 200


def test_bad_signature_is_401(tenant):
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"")
    h["X-Signature"] = "0" * 64
    _problem(tenant.client.get("/v1/accounts/ACME", headers=h), 401, "bad_signature")


def test_tampered_body_is_401(admin):
    body = b'{"id": "GOOD"}'
    h = admin.headers("POST", "/v1/accounts", [], body)
    r = admin.client.post("/v1/accounts", data=b'{"id": "EVIL"}', headers=h, content_type="application/json")
    _problem(r, 401, "bad_signature")


def test_tampered_query_is_401(admin):
    h = admin.headers("GET", "/v1/accounts", [("page", "1")], b"")
    r = admin.client.get("/v1/accounts", query_string=[("page", "2")], headers=h)
    _problem(r, 401, "bad_signature")


def test_signature_with_wrong_private_key_is_401(tenant):
    tenant.private_key = "sk_" + "x" * 43
    _problem(tenant.get("/v1/accounts/ACME"), 401, "bad_signature")


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_timestamp_out_of_window_is_401(tenant, offset):
    ts = str(int(time.time()) + offset)
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"", ts=ts)
    _problem(tenant.client.get("/v1/accounts/ACME", headers=h), 401, "stale_timestamp")


@pytest.mark.parametrize("spelling", ["+{t}", "{a}_{b}", " {t}", "{t}.0", "٣{t}"])
def test_timestamp_must_be_plain_digits(tenant, spelling):
    """Issue 14: X-Timestamp accepted "+17..." and "17_96..." (Python's int() is lenient)."""
    t = str(int(time.time()))
    ts = spelling.format(t=t, a=t[:2], b=t[2:])
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"", ts=ts)
    _problem(tenant.client.get("/v1/accounts/ACME", headers=h), 401, "bad_timestamp")


@pytest.mark.parametrize("given, echoed", [("req-42.a:b_C", True), ("x" * 8192, False), ("bad id\twith tab", False),
                                           ("", False)])
def test_request_ids_are_echoed_only_when_short_and_plain(tenant, given, echoed):
    """Issue 14: an 8 KB X-Request-Id was echoed and logged."""
    r = tenant.client.get("/healthz", headers={"X-Request-Id": given})
    rid = r.headers["X-Request-Id"]
    assert (rid == given) is echoed and len(rid) <= 128


def test_timestamp_inside_window_is_accepted(tenant):
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"", ts=str(int(time.time()) - 250))
    assert tenant.client.get("/v1/accounts/ACME", headers=h).status_code == 200


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space in it!!!!"])
def test_malformed_nonce_is_401(tenant, nonce):
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"", nonce=nonce)
    _problem(tenant.client.get("/v1/accounts/ACME", headers=h), 401, "bad_nonce")


def test_replayed_request_is_401(tenant):
    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"")
    assert tenant.client.get("/v1/accounts/ACME", headers=h).status_code == 200
    _problem(tenant.client.get("/v1/accounts/ACME", headers=h), 401, "replayed_nonce")


def test_replay_is_seen_by_another_app_instance(tenant, settings, moderator):
    """Nonces live in the database, so a second worker process refuses the replay too."""
    from app import create_app

    h = tenant.headers("GET", "/v1/accounts/ACME", [], b"")
    assert tenant.client.get("/v1/accounts/ACME", headers=h).status_code == 200
    other = create_app(settings, moderator=moderator).test_client()
    _problem(other.get("/v1/accounts/ACME", headers=h), 401, "replayed_nonce")


def test_unsigned_request_to_v1_is_401(app):
    _problem(app.test_client().get("/v1/accounts"), 401, "missing_header")


# --- roles and tenant isolation --------------------------------------------------------------

def test_tenant_cannot_read_another_account(make_client, admin):
    assert admin.post("/v1/accounts", {"id": "OTHER"}).status_code == 201
    acme = make_client("tenant", "ACME")
    r = acme.get("/v1/accounts/OTHER")
    _problem(r, 404)
    assert "OTHER" in r.json["detail"]


def test_tenant_cannot_list_accounts_or_manage_lists(tenant):
    _problem(tenant.get("/v1/accounts"), 403)
    _problem(tenant.post("/v1/accounts", {"id": "NEW"}), 403)
    _problem(tenant.get("/v1/accounts/ACME/lists"), 403)
    _problem(tenant.post("/v1/accounts/ACME/lists", {"kind": "allow", "terms": ["x"]}), 403)


def test_reviewer_can_read_but_not_create_accounts(make_client):
    reviewer = make_client("reviewer")
    assert reviewer.get("/v1/accounts").status_code == 200
    _problem(reviewer.post("/v1/accounts", {"id": "NEW"}), 403)


def test_admin_creates_accounts_and_sees_any(admin, make_client):
    assert admin.post("/v1/accounts", {"id": "ZED"}).status_code == 201
    _problem(admin.post("/v1/accounts", {"id": "ZED"}), 409)
    assert admin.get("/v1/accounts/ZED").json["status"] == "active"
    ids = [a["id"] for a in admin.get("/v1/accounts").json]
    assert "ZED" in ids


def test_every_v1_route_declares_its_roles(app):
    """No /v1 view can be reached by a role it did not name."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        cls = getattr(view, "view_class", None)
        methods = [m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}]
        for m in methods:
            fn = getattr(cls, m) if cls else view
            assert getattr(fn, "_roles", None), f"{rule.rule} {m.upper()} declares no roles"


def test_the_client_signs_a_query_written_in_the_path(app, admin):
    """Issue 14, item 13: Client.get("/v1/signatures?status=pending") failed with bad_signature."""
    import threading

    from werkzeug.serving import make_server

    from app.client import Client

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        c = Client(f"http://127.0.0.1:{srv.server_port}", admin.public_key, admin.private_key)
        in_path = c.request("GET", "/v1/signatures?status=pending&limit=5", raise_for_status=False)
        as_params = c.request("GET", "/v1/signatures", params={"status": "pending", "limit": 5}, raise_for_status=False)
        assert in_path.status == as_params.status == 200, in_path.body[:200]
        both = c.request("GET", "/v1/signatures?status=pending", params={"limit": 5}, raise_for_status=False)
        assert both.status == 200
    finally:
        srv.shutdown()
        t.join(5)
