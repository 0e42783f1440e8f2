"""The pages' language (issue 15, item 6): Simplified Chinese by default, English on choice.

Flask-Babel with the catalogue in app/translations/ (``zh_Hans/LC_MESSAGES/messages.po`` and
its compiled ``messages.mo``, both under version control; docs/review.md says how to add a
string). The source strings are English: wrap them with ``_()`` / ``gettext`` in templates
and ``gettext``, ``ngettext``, ``lazy_gettext`` (``_l``) in Python, and they are picked up by
``pybabel extract -F babel.cfg``.

Which language a page is in:

1. ``?lang=en`` / ``?lang=zh`` on any page: that language, remembered (the cookie below);
2. the ``smsguard_lang`` cookie (set by 1 or by the switcher in the header, ``/lang/<code>``;
   a cookie of its own rather than the session, so signing in or out keeps the choice);
3. otherwise Simplified Chinese (the browser's Accept-Language is not consulted: a reviewer's
   page is Chinese unless the reviewer picks English).

Only the web pages are translated: for any other request (the signed /v1 API, /healthz,
/docs ...) the locale is English, and the API's problem bodies never go through gettext (they
are a machine contract). Rule ids, category ids and what reviewers or customers wrote are data
and are shown as they are.

Enumerated values a page shows (a status, a verdict, a template type ...) go through the
``label`` filter: ``{{ obj.status|label('status') }}``. Their English label is the value itself
(so an English page reads exactly as before); the Chinese ones are in the catalogue, with a
message context per group (the engine's ``reject`` is 拦截, a reviewer's is 驳回).
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import current_app, g, has_request_context, redirect, request, url_for
from flask_babel import Babel, gettext, lazy_pgettext
from werkzeug.exceptions import HTTPException

from app.web import web_blueprint

COOKIE = "smsguard_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
DEFAULT = "zh"
#: code -> (Babel locale, the <html lang> value, the switcher's name for it, in its own language)
LANGUAGES = {"zh": ("zh_Hans", "zh-Hans", "中文"), "en": ("en", "en", "English")}
#: the catalogue: app/translations/<locale>/LC_MESSAGES/messages.{po,mo} (the .mo is committed)
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"

babel = Babel()
bp = web_blueprint("i18n", __name__)


def _code(raw) -> str | None:
    """"en", "en-US", "EN_gb" -> "en"; "zh", "zh-Hans", "zh_CN" -> "zh"; anything else None."""
    if not raw or not isinstance(raw, str) or len(raw) > 16:
        return None
    base = raw.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def _web_request() -> bool:
    names = current_app.extensions.get("smsguard.web_blueprints", frozenset())
    return request.blueprint in names


def current_lang() -> str:
    """The language code ("zh" or "en") of this request's page; "en" outside a page."""
    if not has_request_context():
        return "en"
    lang = g.get("page_lang")
    if lang is None:
        if not _web_request():
            lang = "en"
        else:
            lang = _code(request.args.get("lang")) or _code(request.cookies.get(COOKIE)) or DEFAULT
        g.page_lang = lang
    return lang


def is_english() -> bool:
    return current_lang() == "en"


def _locale_selector() -> str:
    return LANGUAGES[current_lang()][0]


def _remember(resp, code: str):
    settings = current_app.config.get("SMSGUARD")
    resp.set_cookie(COOKIE, code, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax",
                    secure=bool(settings and settings.session_cookie_secure))
    return resp


def switch_url(code: str) -> str:
    """The header switcher's link: /lang/<code>?next=<this page> (for a page drawn by a POST,
    the page it was posted from, when that is on this site)."""
    if request.method == "GET":
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
        here = request.path + ("?" + urlencode(args) if args else "")
    else:
        ref = urlsplit(request.referrer or "")
        here = ref.path + ("?" + ref.query if ref.query else "") if ref.netloc == request.host else ""
    return url_for("i18n.switch", code=code, **({"next": here} if here else {}))


def init_i18n(app) -> None:
    """Flask-Babel on the app (templates get ``_``, ``gettext``, ``ngettext``, ``pgettext``),
    the ``label`` / ``ago`` filters, ``html_lang`` and the switcher in every page's context.
    (The cookie that remembers ``?lang=`` is set by :func:`remember_asked_lang`, a hook of the
    web blueprints.)"""
    babel.init_app(app, default_locale="en", default_translation_directories=str(TRANSLATIONS),
                   default_timezone="UTC", locale_selector=_locale_selector)
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.globals["item_name"] = item_name

    @app.context_processor
    def _lang_context():
        if not has_request_context() or not _web_request():
            return {}
        code = current_lang()
        return {"page_lang": code, "html_lang": LANGUAGES[code][1],
                "languages": [(c, name, c == code, switch_url(c)) for c, (_, _, name) in LANGUAGES.items()]}


def remember_asked_lang(resp):
    """A page asked with ``?lang=``: remember that language (the cookie). Called by the web
    blueprints' after_request hook (app/web/__init__.py), so only for pages."""
    asked = _code(request.args.get("lang"))
    if asked and asked != request.cookies.get(COOKIE):
        _remember(resp, asked)
    return resp


@bp.get("/lang/<code>")
def switch(code: str):
    """The switcher: remember the language, then back to the page (``next``, a path on this
    site; otherwise the queue). Open to everyone (the sign-in page has the switcher too)."""
    from app.web.auth import _safe_next

    lang = _code(code)
    resp = redirect(_safe_next(request.args.get("next")))
    return _remember(resp, lang) if lang else resp


# ------------------------------------------------------------------------------ labels


# Each group's English label is the value itself; the catalogue gives the Chinese one.
# (pybabel finds these through the literal calls below, one per value.)
LABELS = {
    "kind": {"signature": lazy_pgettext("kind", "signature"), "template": lazy_pgettext("kind", "template"),
             "feedback": lazy_pgettext("kind", "feedback")},
    "type": {"signature": lazy_pgettext("type", "signature"), "verification": lazy_pgettext("type", "verification"),
             "notification": lazy_pgettext("type", "notification"),
             "promotional": lazy_pgettext("type", "promotional"), "feedback": lazy_pgettext("type", "feedback")},
    "status": {"pending": lazy_pgettext("status", "pending"), "approved": lazy_pgettext("status", "approved"),
               "rejected": lazy_pgettext("status", "rejected"), "withdrawn": lazy_pgettext("status", "withdrawn")},
    "decision": {"pending": lazy_pgettext("decision", "pending"), "approve": lazy_pgettext("decision", "approve"),
                 "reject": lazy_pgettext("decision", "reject"), "withdraw": lazy_pgettext("decision", "withdraw")},
    "verdict": {"allow": lazy_pgettext("verdict", "allow"), "review": lazy_pgettext("verdict", "review"),
                "reject": lazy_pgettext("verdict", "reject")},
    "account": {"active": lazy_pgettext("account", "active"), "warned": lazy_pgettext("account", "warned"),
                "suspended": lazy_pgettext("account", "suspended"),
                "terminated": lazy_pgettext("account", "terminated")},
    "step": {"warn": lazy_pgettext("step", "warn"), "suspend": lazy_pgettext("step", "suspend"),
             "terminate": lazy_pgettext("step", "terminate")},
    "detector": {"keyword": lazy_pgettext("detector", "keyword"), "pattern": lazy_pgettext("detector", "pattern"),
                 "classifier": lazy_pgettext("detector", "classifier"),
                 "template": lazy_pgettext("detector", "template")},
    "source": {"carrier": lazy_pgettext("source", "carrier"), "regulator": lazy_pgettext("source", "regulator"),
               "user": lazy_pgettext("source", "user"), "internal": lazy_pgettext("source", "internal")},
    "role": {"reviewer": lazy_pgettext("role", "reviewer"), "admin": lazy_pgettext("role", "admin")},
    "metric": {"count": lazy_pgettext("metric", "count"), "rate": lazy_pgettext("metric", "rate")},
    "sort": {"risk": lazy_pgettext("sort", "risk"), "age": lazy_pgettext("sort", "age")},
}
# a rule's action is worded like the verdict it asks for
LABELS["action"] = LABELS["verdict"]


def label(value, group: str) -> str:
    """The page's name for an enumerated value (unknown values as they are)."""
    if value is None:
        return "–"
    found = LABELS.get(group, {}).get(str(value))
    return str(found) if found is not None else str(value)


def item_name(kind: str, item_id) -> str:
    """"template #5" / "模板 #5"."""
    return gettext("%(kind)s #%(id)s", kind=label(kind, "kind"), id=item_id)


# ------------------------------------------------------------------------------- times

def _seconds_ago(value: datetime) -> int:
    return int((datetime.now(UTC) - value).total_seconds())


def age(value: datetime | None) -> str:
    """How long ago, briefly: '3d 4h', '2h 5m', '7m', 'just now' (3天4小时, 2小时5分, 7分钟, 刚刚)."""
    if value is None:
        return ""
    secs = _seconds_ago(value)
    if secs < 60:
        return gettext("just now")
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    if days:
        return gettext("%(d)sd %(h)sh", d=days, h=hours % 24)
    if hours:
        return gettext("%(h)sh %(m)sm", h=hours, m=mins % 60)
    return gettext("%(m)sm", m=mins)


def ago(value: datetime | None) -> str:
    """'3d 4h ago' (3天4小时前), or 'just now' (刚刚)."""
    if value is None:
        return ""
    if _seconds_ago(value) < 60:
        return gettext("just now")
    return gettext("%(age)s ago", age=age(value))


# ------------------------------------------------------------------------------ errors

#: the error pages' titles: werkzeug's English names are the msgids
ERROR_TITLES = {400: lazy_pgettext("http", "Bad Request"), 401: lazy_pgettext("http", "Unauthorized"),
                403: lazy_pgettext("http", "Forbidden"), 404: lazy_pgettext("http", "Not Found"),
                405: lazy_pgettext("http", "Method Not Allowed"), 409: lazy_pgettext("http", "Conflict"),
                413: lazy_pgettext("http", "Request Entity Too Large"),
                422: lazy_pgettext("http", "Unprocessable Entity"),
                429: lazy_pgettext("http", "Too Many Requests"),
                500: lazy_pgettext("http", "Internal Server Error"),
                503: lazy_pgettext("http", "Service Unavailable")}
#: what an error page says when the error carries only werkzeug's default English description
ERROR_TEXTS = {400: lazy_pgettext("http", "The request could not be understood."),
               403: lazy_pgettext("http", "You do not have permission to see this page."),
               404: lazy_pgettext("http", "There is no such page."),
               405: lazy_pgettext("http", "This page does not accept that kind of request."),
               413: lazy_pgettext("http", "The request is too large."),
               429: lazy_pgettext("http", "Too many requests. Wait a moment and try again."),
               500: lazy_pgettext("http", "The page failed; the error has been logged."),
               503: lazy_pgettext("http", "The service is busy. Try again in a moment.")}


def error_title(exc: HTTPException) -> str:
    if is_english():
        return exc.name
    t = ERROR_TITLES.get(exc.code or 500)
    return str(t) if t is not None else exc.name


def error_text(exc: HTTPException) -> str:
    """The description given to abort() (already in the page's language), or, for werkzeug's
    own default description, the catalogue's words for that status."""
    desc = exc.description
    if desc == type(exc).description and not is_english():
        t = ERROR_TEXTS.get(exc.code or 500)
        if t is not None:
            return str(t)
    return desc or exc.name


def _hhmm(iso: str | None) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%H:%M UTC")
    except (TypeError, ValueError):
        return iso or ""


def service_message(exc, kind: str | None = None, item_id=None, op: str = "decide",
                    account_id: str | None = None) -> str:
    """A service error (app/services, also answered by the API) as a page says it. On an
    English page: the service's own words (``exc.detail``), unchanged. On a Chinese page: the
    catalogue's sentence for that error, built from what the error carries (the item's status,
    who holds its claim and until when, the field at fault); an error not known here keeps its
    detail. ``op``: "decide", "withdraw", "claim", "suspend" or "reinstate"."""
    if is_english():
        return exc.detail
    x = getattr(exc, "extra", {}) or {}
    what = item_name(kind, item_id) if kind else ""
    if "claimed_by" in x:
        return gettext("%(what)s is claimed by %(who)s until %(until)s: wait for it to be released, or ask an "
                       "admin to take it over.", what=what, who=x["claimed_by"], until=_hhmm(x.get("claimed_until")))
    if "current_status" in x and kind:
        status = label(x["current_status"], "status")
        if op == "withdraw":
            return gettext("%(what)s is %(status)s: only an approved item can be withdrawn.", what=what, status=status)
        return gettext("%(what)s is already %(status)s: a decided item never changes.", what=what, status=status)
    if "account_status" in x and account_id:
        status = label(x["account_status"], "account")
        if op == "reinstate" and x["account_status"] == "terminated":
            return gettext("Account %(account)s is terminated: a terminated account is not reinstated.",
                           account=account_id)
        return gettext("Account %(account)s is already %(status)s.", account=account_id, status=status)
    field = x.get("field")
    if field == "reason":
        if op == "withdraw":
            if "longer" in exc.detail:
                return gettext("The reason is too long.")
            return gettext("A withdrawal needs a reason the customer can act on.")
        return gettext("A rejection needs a reason the customer can act on.")
    if field == "confirm_flagged":
        return gettext("The engine flagged %(what)s: tick the confirmation box to say you checked the findings, "
                       "then approve it.", what=what)
    if field == "note":
        return gettext("A note saying why is required.")
    if exc.status == 403:
        return gettext("Your role may not do this.")
    if exc.status == 404:
        if account_id and not kind:
            return gettext("There is no account %(account)s.", account=account_id)
        return gettext("There is no %(what)s.", what=what) if what else gettext("Not found.")
    return exc.detail


__all__ = ["COOKIE", "DEFAULT", "LANGUAGES", "babel", "current_lang", "is_english", "label", "item_name",
           "age", "ago", "error_title", "error_text", "service_message", "init_i18n", "switch_url"]
