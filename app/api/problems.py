"""RFC 9457 problem details: every error the API returns is application/problem+json."""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from app.services.errors import ServiceError
from app.store.db import unavailable

PROBLEM_TYPE = "/docs/problems#{}"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
          415: "Unsupported media type", 422: "Unprocessable entity", 429: "Too many requests",
          500: "Internal server error", 503: "Service unavailable"}
SLUGS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
         405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
         415: "unsupported-media-type", 422: "validation", 429: "rate-limited",
         500: "internal", 503: "unavailable"}
#: what each problem type means to a caller (served at /docs/problems, the `type` URIs' page)
MEANINGS = {
    400: "The request could not be read (malformed JSON, a bad query string). Fix the request; do not retry it as is.",
    401: "The request is not signed as docs/signing.md says: missing or malformed headers, a timestamp off the "
         "server clock, a reused nonce, an unknown or revoked key, or a bad signature. `reason` names which.",
    403: "The key's role may not do this (`detail` names the roles that may).",
    404: "No such resource, or one that belongs to another account (tenants see only their own).",
    405: "This path does not take this method.",
    409: "The request conflicts with the stored state (an item already decided, an id already used).",
    413: "The body is larger than the service accepts (SMSGUARD_MAX_BODY_BYTES).",
    415: "The body must be JSON (Content-Type: application/json).",
    422: "The body or query failed validation; `errors` names each field and what is wrong with it.",
    429: "This key sent more requests than its rate allows; wait `Retry-After` seconds.",
    500: "The server failed; the request id (X-Request-Id) finds it in the logs. Nothing is promised about "
         "what was done: retry only idempotent requests.",
    503: "The database (or another dependency) is unavailable; nothing was done. Retry after `Retry-After` "
         "seconds.",
}
log = logging.getLogger("smsguard.api")


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem body."""

    def __init__(self, status: int, detail: str, title: str | None = None,
                 headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, detail: str, title: str | None = None,
                     headers: dict | None = None, **extra) -> Response:
    body = {"type": PROBLEM_TYPE.format(SLUGS.get(status, str(status))),
            "title": title or TITLES.get(status, "Error"), "status": status, "detail": detail,
            "instance": request.path if request else None}
    body.update({k: v for k, v in extra.items() if v is not None})
    resp = Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/problem+json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    errors = data.get("messages") or data.get("errors")
    if isinstance(errors, dict) and len(errors) == 1 and next(iter(errors)) in ("json", "query", "form", "headers", "view_args"):
        # webargs nests errors by location; keep the location visible but flat
        (loc, errs), = errors.items()
        errors = {f"{loc}.{k}" if loc != "json" else k: v for k, v in errs.items()} if isinstance(errs, dict) else errs
    detail = data.get("message") or exc.description or TITLES.get(status, "Error")
    if status == 422 and errors:
        detail = "the request body failed validation: " + "; ".join(
            f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items())
    if status == 413:
        detail = f"request body larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    return problem_response(status, detail, errors=errors or None, headers=headers)


def register(app: Flask) -> None:
    """Route every error through problem bodies. Call after flask-smorest's Api.init_app so
    these handlers replace its own JSON error shape."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return _from_http_exception(exc)

    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(exc.status, exc.detail, exc.title, exc.headers, **exc.extra)

    @app.errorhandler(ServiceError)
    def _service(exc: ServiceError):
        return problem_response(exc.status, exc.detail, exc.title, **exc.extra)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if unavailable(exc):
            log.error("database unavailable on %s %s: %s: %s", request.method, request.path,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return problem_response(503, "the database is unavailable; nothing was done, try again shortly",
                                    headers={"Retry-After": "5"}, reason="database_unavailable")
        if out_of_range(exc):
            log.warning("number out of range on %s %s: %s", request.method, request.path,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return problem_response(422, "a number in the request is larger than this service stores",
                                    reason="out_of_range")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "the server failed to handle this request; it has been logged")


def out_of_range(exc: BaseException) -> bool:
    """A number the database cannot hold (an offset or id past 64 or 32 bits) reached a
    statement: the request's fault, a 422, not a 500."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OverflowError):  # sqlite3: "Python int too large to convert to SQLite INTEGER"
        return True
    try:
        from psycopg import errors
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, errors.NumericValueOutOfRange)
