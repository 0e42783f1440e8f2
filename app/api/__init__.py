"""The HTTP API: flask-smorest blueprints, one per resource."""
from __future__ import annotations

import importlib

from flask import Flask, g, json, request
from flask_smorest import Api

from app.api import auth, problems

# resource modules; each defines `blp` (a flask_smorest.Blueprint) with its /v1 routes
RESOURCES = ("accounts", "moderation", "signatures", "templates", "messages", "complaints", "replies", "optouts")

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
    return api


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
                json.loads(body.decode("utf-8"))
            except UnicodeDecodeError:
                raise problems.Problem(400, "the body is not valid UTF-8") from None
            except ValueError as exc:
                raise problems.Problem(400, f"the body is not valid JSON: {exc}") from None
    g.principal = auth.verify_request()
    return None
