"""The HTTP API: flask-smorest blueprints, one per resource."""
from __future__ import annotations

import importlib
import re

from flask import Flask, g, json, request
from flask_smorest import Api

from app.api import auth, problems, ratelimit

# resource modules; each defines `blp` (a flask_smorest.Blueprint) with its /v1 routes
RESOURCES = ("accounts", "moderation", "signatures", "templates", "messages", "complaints", "replies", "optouts",
             "checks", "feedback")

SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "Timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp"},
    "Nonce": {"type": "apiKey", "in": "header", "name": "X-Nonce"},
    "Signature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                  "description": "lowercase hex HMAC-SHA256 of the string to sign (docs/signing.md)"},
}
BODY_METHODS = ("POST", "PUT", "PATCH")


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE="smsguard", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs", OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "security": [{name: [] for name in SECURITY_SCHEMES}],
            "components": {"securitySchemes": SECURITY_SCHEMES},
            "info": {"description": "SMS content compliance. Every /v1 request is signed: see docs/signing.md."},
        },
    )
    api = Api(app)
    for name in RESOURCES:
        module = importlib.import_module(f"app.api.{name}")
        api.register_blueprint(module.blp)
    from app.api import health

    app.register_blueprint(health.bp)
    problems.register(app)
    app.before_request(_guard_v1)
    app.teardown_request(auth.release_connection)
    return api


def json_body():
    """The request's JSON body as the /v1 guard parsed it (None when the request has none): a
    view on the hot path reads it from here instead of parsing the body a second time."""
    return g.get("json_body")


def _guard_v1():
    """Every /v1 request: a JSON body that really is JSON, then a valid signature."""
    if not request.path.startswith("/v1/"):
        return None
    if request.method in BODY_METHODS:
        body = request.get_data(cache=True)  # 413 when over MAX_CONTENT_LENGTH
        if body:
            if request.mimetype != "application/json":
                raise problems.Problem(415, "send the body as application/json")
            try:
                data = json.loads(body.decode("utf-8"))
            except UnicodeDecodeError:
                raise problems.Problem(400, "the body is not valid UTF-8") from None
            except ValueError as exc:
                raise problems.Problem(400, f"the body is not valid JSON: {exc}") from None
            except RecursionError:
                raise problems.Problem(400, "the body is not valid JSON: nested too deeply") from None
            if (b"\\ud" in body or b"\\uD" in body) and _lone_surrogate(data):
                # "\ud800" alone is no character: it could not be stored or answered in UTF-8
                raise problems.Problem(400, "the body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                                            "which is not a character")
            g.json_body = data
    g.principal = auth.verify_request()
    ratelimit.enforce(g.principal)  # 429 + Retry-After over the key's limit (app/api/ratelimit.py)
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value) -> bool:
    """Does any string (or key) of a parsed JSON value hold a lone surrogate? (Iterative: the
    value may be nested as deep as the JSON parser allows.)"""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v) is not None:
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False
