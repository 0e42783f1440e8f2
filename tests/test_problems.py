"""Every error is application/problem+json with type, title, status and detail."""
from __future__ import annotations

import pytest


def _problem(r, status):
    assert r.status_code == status, (r.status_code, r.data[:300])
    assert r.mimetype == "application/problem+json"
    body = r.json
    for k in ("type", "title", "status", "detail"):
        assert body[k], k
    assert body["status"] == status
    return body


def test_malformed_json_is_400(admin):
    _problem(admin.post("/v1/accounts", raw=b'{"id": "X",'), 400)


def test_invalid_utf8_is_400(admin):
    body = _problem(admin.post("/v1/accounts", raw=b'{"id": "\xff\xfe"}'), 400)
    assert "UTF-8" in body["detail"]


def test_wrong_content_type_is_415(admin):
    _problem(admin.post("/v1/accounts", raw=b"id=X", content_type="application/x-www-form-urlencoded"), 415)


def test_oversized_body_is_413(admin, app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = _problem(admin.post("/v1/moderate", {"text": "好" * limit}), 413)
    assert str(limit) in body["detail"]


def test_unknown_field_is_422_with_field_errors(admin):
    body = _problem(admin.post("/v1/accounts", {"id": "X1", "colour": "red"}), 422)
    assert "colour" in body["errors"]


def test_missing_field_is_422_with_field_errors(admin):
    body = _problem(admin.post("/v1/accounts", {"name": "no id"}), 422)
    assert "id" in body["errors"]


def test_wrong_type_is_422(admin):
    body = _problem(admin.post("/v1/moderate", {"text": 12}), 422)
    assert "text" in body["errors"]


def test_unknown_route_is_404(app):
    _problem(app.test_client().get("/nope"), 404)


def test_unknown_v1_route_still_needs_signature_then_404(admin):
    _problem(admin.get("/v1/nothing-here"), 404)


def test_wrong_method_is_405_with_allow(admin):
    r = admin.open("DELETE", "/v1/accounts")
    body = _problem(r, 405)
    assert "GET" in r.headers["Allow"] and body["detail"]


def test_conflict_is_409(admin):
    admin.post("/v1/accounts", {"id": "DUP"})
    _problem(admin.post("/v1/accounts", {"id": "DUP"}), 409)


def test_unexpected_error_is_500_problem_without_internals(app, admin, monkeypatch):
    moderator = app.extensions["smsguard.moderator"]

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(moderator, "check", boom)
    body = _problem(admin.post("/v1/moderate", {"text": "hello"}), 500)
    assert "secret internals" not in body["detail"]


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz"])
def test_public_endpoints_need_no_signature(app, path):
    assert app.test_client().get(path).status_code == 200


def test_openapi_documents_the_signature_headers(app):
    spec = app.test_client().get("/openapi.json").json
    schemes = spec["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"X-Api-Key", "X-Timestamp", "X-Nonce", "X-Signature"}
    assert "/v1/accounts" in spec["paths"]


def test_interactive_docs_are_served_locally(app):
    c = app.test_client()
    page = c.get("/docs")
    assert page.status_code == 200 and b"/docs/assets/" in page.data
    assert c.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_every_problem_type_uri_leads_to_its_explanation(app):
    """Issue 14, item 14: problem bodies linked `type` to /docs/problems#..., a 404."""
    from app.api.problems import SLUGS

    c = app.test_client()
    body = c.get("/v1/nothing-here").get_json()
    path, _, anchor = body["type"].partition("#")
    page = c.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert f'id="{anchor}"' in html
    for slug in SLUGS.values():
        assert f'id="{slug}"' in html
