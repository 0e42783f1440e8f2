"""smsguard: SMS content compliance. `create_app()` builds the Flask service."""
from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, g, request

from app.config import Settings

log = logging.getLogger("smsguard")


def load_moderator(settings: Settings):
    """The engine every caller shares: rules (hot-reloaded) and the shipped model."""
    from app.engine.moderator import Moderator

    return Moderator.from_paths(settings.rules_dir, model_dir=settings.model_dir,
                                watch=settings.watch_rules)


def create_app(settings: Settings | None = None, moderator=None) -> Flask:
    """Build the service. Pass a prebuilt `moderator` to share one engine (tests, gunicorn)."""
    from app import logs, metrics
    from app.api import init_api
    from app.services.moderation import AccountListCache
    from app.store.db import Database

    settings = settings or Settings.from_env()
    logs.setup(settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.config.update(SMSGUARD=settings, SECRET_KEY=settings.secret_key,
                      MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_AS_ASCII=False,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.json.ensure_ascii = False
    db = Database(settings.database_url)
    app.extensions["smsguard.db"] = db
    app.extensions["smsguard.moderator"] = moderator or load_moderator(settings)
    app.extensions["smsguard.lists"] = AccountListCache(db)

    @app.before_request
    def _start():
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.t0 = time.perf_counter()

    @app.after_request
    def _finish(resp):
        elapsed = time.perf_counter() - g.get("t0", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.REQUESTS.labels(endpoint, request.method, str(resp.status_code)).inc()
        metrics.LATENCY.labels(endpoint).observe(elapsed)
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        p = g.get("principal")
        log.info("request", extra={"method": request.method, "path": request.path,
                                   "status": resp.status_code, "ms": round(elapsed * 1000, 2),
                                   "key": p.public_key if p else None})
        return resp

    from app.web import init_web
    init_web(app)
    init_api(app)  # after the hooks above, so a rejected signature still gets a request id
    return app
