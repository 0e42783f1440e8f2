"""The reviewer web pages: server-rendered Jinja, a small CSS file and a small script, no build.

``init_web(app)`` (called from create_app before init_api) sets up:

- the page blueprints named in ``PAGES`` (modules of this package, each defining ``bp``; add
  yours there, e.g. "accounts"), built with :func:`web_blueprint` so that their errors render as
  HTML pages instead of the API's problem+json;
- sign-in with a Flask session cookie (app/web/auth.py: ``login_required(role=...)``,
  ``current_user()``): HttpOnly, SameSite=Lax, Secure when ``SMSGUARD_SESSION_COOKIE_SECURE``,
  valid ``SMSGUARD_SESSION_LIFETIME_S`` (12 h) from sign-in; sign-in attempts limited per
  username and per address;
- CSRF protection (flask-wtf ``CSRFProtect``) on the web blueprints ONLY: every POST/PUT/PATCH/
  DELETE to a page must carry ``csrf_token`` (``{{ csrf_token() }}`` in the form). The signed
  /v1 API is not touched;
- security headers on every page (a Content-Security-Policy allowing only this site's own
  assets, so pages use static/ files and no inline script), ``Cache-Control: no-store``.

These page hooks (CSRF, headers, the language cookie of app/web/i18n.py) are registered on the
web blueprints themselves (:func:`web_blueprint`, and ``assets``), not on the app: the signed
/v1 API, which runs on every message, never calls them.

The pages are in Simplified Chinese by default and in English on choice (app/web/i18n.py:
Flask-Babel, the catalogue in app/translations/; wrap a page's strings with ``_()``).

Templates live flat in app/web/templates/ (``base.html`` has the nav with a ``nav_extra`` block
for more items, a ``title`` and a ``content`` block); static files in app/web/static/ under
/web/static/.
"""
from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

log = logging.getLogger("smsguard.web")

# page modules of this package; each defines `bp` (made with web_blueprint)
PAGES = ("auth", "i18n", "review", "accounts", "dashboard", "feedback")

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

csrf = CSRFProtect()


def _check_csrf():
    """before_request of the web blueprints: the CSRF token of a POST, PUT, PATCH or DELETE."""
    csrf.protect()  # only checks POST, PUT, PATCH, DELETE


def _page_headers(resp):
    """after_request of the web blueprints: security headers, the remembered ``?lang=``."""
    from app.web.i18n import remember_asked_lang

    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if request.blueprint != assets.name:
        resp.headers["Cache-Control"] = "no-store"
    return remember_asked_lang(resp)


def _with_page_hooks(bp: Blueprint) -> Blueprint:
    bp.before_request(_check_csrf)
    bp.after_request(_page_headers)
    return bp


assets = _with_page_hooks(Blueprint("web", __name__, static_folder="static", static_url_path="/web/static",
                                    template_folder="templates"))


def web_blueprint(name: str, import_name: str, **kwargs) -> Blueprint:
    """A blueprint for pages: HTTP errors (404, 403, CSRF failures ...) render error.html; CSRF
    checks, security headers and the language cookie run for its requests only."""
    bp = Blueprint(name, import_name, **kwargs)
    bp.register_error_handler(HTTPException, _html_error)
    bp.register_error_handler(Exception, _html_crash)
    return _with_page_hooks(bp)


def _html_error(exc: HTTPException):
    from flask_babel import gettext

    from app.web.i18n import error_text, error_title

    status = exc.code or 500
    if isinstance(exc, CSRFError):
        message = gettext("This form has expired or did not come from this site. Go back, reload the page "
                          "and try again.")
    else:
        message = error_text(exc)
    return render_template("error.html", status=status, title=error_title(exc), message=message), status


def _html_crash(exc: Exception):
    from flask_babel import gettext

    if isinstance(exc, HTTPException):  # pragma: no cover - routed to _html_error first
        return _html_error(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_template("error.html", status=500, title=gettext("Internal server error"),
                           message=gettext("The page failed; the error has been logged.")), 500


def _age(value: datetime | None) -> str:
    """'3d 4h', '2h 5m', '7m', 'just now', in the page's language (app/web/i18n.py)."""
    from app.web.i18n import age

    return age(value)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def init_web(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked for the web blueprints below
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)      # valid as long as the session
    # session cookies (docs/review.md): Flask's own default lifetime is 31 days, so set ours
    # outright; app/web/auth.py also refuses a session older than this from its sign-in time
    settings = app.config.get("SMSGUARD")
    app.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime_s if settings else 12 * 3600),
        SESSION_COOKIE_SECURE=bool(settings and settings.session_cookie_secure),
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    csrf.init_app(app)
    from app.web.i18n import init_i18n

    init_i18n(app)
    app.register_blueprint(assets)
    names = {assets.name}
    for page in PAGES:
        module = importlib.import_module(f"{__name__}.{page}")
        app.register_blueprint(module.bp)
        names.add(module.bp.name)
    app.extensions["smsguard.web_blueprints"] = frozenset(names)
    app.jinja_env.filters["age"] = _age
    app.jinja_env.filters["when"] = _when

    @app.context_processor
    def _user():
        from app.web.auth import current_user

        if request.blueprint in current_app.extensions["smsguard.web_blueprints"]:
            return {"current_user": current_user()}
        return {}
