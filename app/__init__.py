"""smsguard: SMS content compliance. `create_app()` builds the Flask service."""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.routing import IntegerConverter

from app.config import Settings

log = logging.getLogger("smsguard")


class Int32Converter(IntegerConverter):
    """``<int:...>`` limited to what an INTEGER id column holds (32-bit on PostgreSQL): a larger
    id is a 404, not an out-of-range error from the driver (a 500)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class StartupError(RuntimeError):
    """The service cannot start; the message is one line saying why (gunicorn prints a
    RuntimeError raised while loading the app as "Error: <message>" and exits 1)."""


class WebOnlySessions(SecureCookieSessionInterface):
    """Cookie sessions belong to the reviewer pages; the signed /v1 API never reads or sets
    one, so it does not pay for decoding the cookie on every pre-send call."""

    def open_session(self, app, request):
        if request.path.startswith("/v1/"):
            return None  # Flask substitutes a NullSession
        return super().open_session(app, request)


MODEL_POINTER = "model-current"


def model_pointer(settings: Settings):
    """The pointer file of ``smsguard model promote`` (docs/operations.md, "Model lifecycle"):
    the promoted model the service switches to without a restart."""
    return settings.instance_dir / MODEL_POINTER


def load_moderator(settings: Settings):
    """The engine every caller shares: rules (hot-reloaded) and the shipped model, or the model
    promoted since (instance/model-current, watched like the rules). A broken rule file or a
    missing / mismatched / corrupt configured model refuses to start (StartupError); a promoted
    model that fails to load leaves the configured one in force (reported in /readyz)."""
    from app.engine.moderator import Moderator
    from app.engine.ruleset import RuleError

    try:
        return Moderator.from_paths(settings.rules_dir, model_dir=settings.model_dir,
                                    watch=settings.watch_rules, model_pointer=model_pointer(settings))
    except Exception as exc:
        where = (f"the rules from {settings.rules_dir}" if isinstance(exc, RuleError) or settings.model_dir is None
                 else f"the model from {settings.model_dir}")
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise StartupError(f"cannot load {where}: {type(exc).__name__}: {first}".rstrip(": ")) from exc


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def create_app(settings: Settings | None = None, moderator=None) -> Flask:
    """Build the service. Pass a prebuilt `moderator` to share one engine (tests, gunicorn)."""
    from app import logs, metrics
    from app.api import init_api
    from app.services.moderation import AccountListCache
    from app.store.db import Database

    settings = settings or Settings.from_env()
    logs.setup(settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.session_interface = WebOnlySessions()
    app.url_map.converters["int"] = Int32Converter  # before any route: ids past 2**31 are a 404
    app.config.update(SMSGUARD=settings, SECRET_KEY=settings.secret_key,
                      MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_AS_ASCII=False)  # cookies: init_web
    app.json.ensure_ascii = False
    db = Database(settings.database_url)
    app.extensions["smsguard.db"] = db
    app.extensions["smsguard.moderator"] = moderator or load_moderator(settings)
    metrics.watch_rules(app.extensions["smsguard.moderator"])
    metrics.watch_model(app.extensions["smsguard.moderator"])
    app.extensions["smsguard.lists"] = AccountListCache(db)

    @app.before_request
    def _start():
        given = request.headers.get("X-Request-Id", "")
        # a caller's id is echoed and logged only when it is a short, plain token
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.t0 = time.perf_counter()

    @app.after_request
    def _finish(resp):
        elapsed = time.perf_counter() - g.get("t0", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        requests, latency = metrics.request_metrics(endpoint, request.method, resp.status_code)
        requests.inc()
        latency.observe(elapsed)
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
