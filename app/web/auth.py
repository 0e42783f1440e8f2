"""Sign-in for the web pages: users table, argon2 hashes, Flask session cookie.

For other page modules::

    from app.web.auth import current_user, login_required

    @bp.get("/accounts/")
    @login_required(role="admin")          # or @login_required / @login_required(role="reviewer")
    def accounts():
        user = current_user()              # WebUser(id, username, role) or None
        ...

``role="reviewer"`` admits reviewers and admins (admin ranks above reviewer); ``role="admin"``
admins only. Not signed in -> redirect to the sign-in page (then back); signed in without the
role -> 403 page. A disabled user, or one whose password changed, is signed out at the next
request. ``actor()`` is the string stored with decisions and events: "user:<name>".

Sessions (issue 14, item 8): the cookie holds the user id, the sign-in time and a fingerprint
of the user's stored password hash and session generation (``users.session_gen``). A session
is refused once ``SMSGUARD_SESSION_LIFETIME_S`` (12 h) has passed since its sign-in, whatever
the activity; sign-out bumps the generation, so every cookie issued to that user before it
(a copied one included, in any browser) stops working; a password change does the same
through the hash.

Sign-in attempts (issue 14, item 7): failures are counted per username and per client address
in the ``login_throttle`` table (shared by every worker and machine). Past the limit within the
window, attempts for that username / from that address get a 429 page with ``Retry-After``
until the lockout ends, before any password hashing. At most ``SMSGUARD_LOGIN_HASH_CONCURRENCY``
argon2 verifications run at once per worker process (an unknown username costs the same one
verification, against a placeholder hash); another attempt meanwhile is a 503 at once.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext
from sqlalchemy import BigInteger, and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.services import events, users
from app.store.models import LoginThrottle, User
from app.web import web_blueprint

bp = web_blueprint("auth", __name__)
log = logging.getLogger("smsguard.web.auth")

ROLE_RANK = {"reviewer": 1, "admin": 2}
CLOCK_SKEW_S = 300  # a session stamped this far in the future (another machine's clock) still counts


def _now() -> float:
    """The clock of the sign-in limits and of session ages (one place, so tests can move it)."""
    return time.time()


@bp.record_once
def _setup(state) -> None:
    """Per app (so per worker process after the fork): the gate bounding password hashing."""
    settings = state.app.config.get("SMSGUARD")
    n = settings.login_hash_concurrency if settings is not None else 1
    state.app.extensions["smsguard.login_gate"] = threading.BoundedSemaphore(max(1, n))


@dataclass(frozen=True)
class WebUser:
    id: int
    username: str
    role: str

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _db():
    return current_app.extensions["smsguard.db"]


def _settings():
    return current_app.config["SMSGUARD"]


def _session_mark(row: User) -> str:
    """A short fingerprint of what keeps a session valid: the stored hash (a password change
    ends open sessions) and the session generation (sign-out bumps it: every cookie issued
    before, copies included, stops working)."""
    return hashlib.sha256(f"{row.session_gen or 0}:{row.password_hash}".encode()).hexdigest()[:16]


def _session_fresh() -> bool:
    """Signed in less than the session lifetime ago (however busy the session was since)."""
    at = session.get("at")
    if not isinstance(at, int) or isinstance(at, bool):
        return False
    age = _now() - at
    return -CLOCK_SKEW_S <= age < _settings().session_lifetime_s


def current_user() -> WebUser | None:
    """The signed-in user of this request (looked up once per request), or None."""
    if "web_user" in g:
        return g.web_user
    user = None
    uid = session.get("uid")
    if uid is not None:
        if _session_fresh():
            with _db().session() as s:
                row = s.get(User, uid)
                if row is not None and row.active and hmac.compare_digest(str(session.get("pw", "")),
                                                                           _session_mark(row)):
                    user = WebUser(row.id, row.username, row.role)
        if user is None:
            session.clear()
    g.web_user = user
    return user


def _roles_ok(user: WebUser, role: str | tuple[str, ...]) -> bool:
    if isinstance(role, str):
        return ROLE_RANK.get(user.role, 0) >= ROLE_RANK.get(role, 99)
    return user.role in role


def login_required(view=None, *, role: str | tuple[str, ...] = "reviewer"):
    """Decorator for page views: ``@login_required`` or ``@login_required(role="admin")``."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                if request.method == "GET":
                    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
                return redirect(url_for("auth.login"))
            if not _roles_ok(user, role):
                from app.web.i18n import label

                needed = gettext(" or ").join(label(r, "role") for r in ((role,) if isinstance(role, str) else role))
                abort(403, description=gettext("This page needs the %(role)s role; you are signed in as %(yours)s.",
                                               role=needed, yours=label(user.role, "role")))
            return fn(*args, **kwargs)

        wrapper._login_role = role
        return wrapper

    return deco(view) if view is not None else deco


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //evil.example)."""
    default = url_for("review.queue")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


# ------------------------------------------------------------------ sign-in attempt limits

def _client_addr(settings) -> str:
    """The address a sign-in comes from: the connection's, or with SMSGUARD_LOGIN_PROXY_HOPS=N
    the N-th X-Forwarded-For entry from the right (the one the outermost trusted proxy saw;
    entries further left are the client's own claims). IPv6 counts by /64, which one client
    usually holds whole."""
    addr = request.remote_addr or ""
    hops = settings.login_proxy_hops
    if hops:
        chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if len(chain) >= hops:
            addr = chain[-hops]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _throttle_key(kind: str, value: str) -> str:
    """The row key: an HMAC, so what someone typed as a username is never stored."""
    return hmac.new(current_app.secret_key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Counter:
    key: str
    limit: int
    what: str  # "user" | "address", for the log
    who: str


def _counters(settings, username: str) -> list[_Counter]:
    """The counters this attempt is subject to (the user's first), the ones whose limit is on."""
    out = []
    if settings.login_max_failures:
        out.append(_Counter(_throttle_key("u", username), settings.login_max_failures, "user", username))
    if settings.login_addr_max_failures:
        addr = _client_addr(settings)
        out.append(_Counter(_throttle_key("a", addr), settings.login_addr_max_failures, "address", addr))
    return out


def _locked_for(counters: list[_Counter]) -> int:
    """Seconds until every lock on these counters has ended (0: none holds)."""
    if not counters:
        return 0
    now = _now()
    with _db().session() as s:
        until = s.scalar(select(func.max(LoginThrottle.locked_until)).where(
            LoginThrottle.key.in_([c.key for c in counters]), LoginThrottle.locked_until > int(now)))
    return max(1, math.ceil(until - now)) if until else 0


_FAILURE_STMTS: dict = {}


def _failure_stmt(dialect: str):
    """One atomic upsert per counter (built once per dialect): a failure outside the window, or
    the first after a lockout ended, starts a new count; reaching the limit locks."""
    stmt = _FAILURE_STMTS.get(dialect)
    if stmt is None:
        t = LoginThrottle
        now, win = bindparam("now", type_=BigInteger), bindparam("win", type_=BigInteger)
        lim, lock_end = bindparam("lim", type_=BigInteger), bindparam("lock_end", type_=BigInteger)
        exp = bindparam("exp", type_=BigInteger)
        fresh = or_(t.window_start <= now - win, and_(t.locked_until > 0, t.locked_until <= now))
        count = case((fresh, 1), else_=t.failures + 1)
        insert = {"sqlite": sqlite_insert, "postgresql": pg_insert}[dialect]
        stmt = insert(t).values(key=bindparam("k"), window_start=now, failures=1,
                                locked_until=bindparam("first_lock", type_=BigInteger), expires_at=exp)
        stmt = _FAILURE_STMTS[dialect] = stmt.on_conflict_do_update(index_elements=[t.key], set_={
            "failures": count,
            "window_start": case((fresh, now), else_=t.window_start),
            "locked_until": case((count >= lim, lock_end), (fresh, 0), else_=t.locked_until),
            "expires_at": exp,
        }).returning(t.failures, t.locked_until)
    return stmt


def _record_failure(settings, counters: list[_Counter]) -> None:
    if not counters:
        return
    now = int(_now())
    lock_end = now + settings.login_lockout_s
    with _db().session() as s:
        stmt = _failure_stmt(s.get_bind().dialect.name)
        for c in counters:
            failures, locked_until = s.execute(stmt, {
                "k": c.key, "now": now, "win": settings.login_window_s, "lim": c.limit, "lock_end": lock_end,
                "first_lock": lock_end if c.limit <= 1 else 0,
                "exp": now + max(settings.login_window_s, settings.login_lockout_s)}).one()
            if failures == c.limit:
                log.warning("sign-in locked", extra={"locked": c.what, c.what: c.who[:64],
                                                     "failures": failures, "seconds": locked_until - now})
        if secrets.randbelow(50) == 0:  # forget rows whose window and lockout are both over
            s.execute(delete(LoginThrottle).where(LoginThrottle.expires_at < now))


def _clear_user(counters: list[_Counter]) -> None:
    """A successful sign-in: the user's count starts again (the address's does not)."""
    user = [c.key for c in counters if c.what == "user"]
    if user:
        with _db().session() as s:
            s.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(user)))


def _refused(status: int, retry_after: int, next_url: str, username: str, error: str):
    resp = current_app.make_response(
        (render_template("login.html", next=next_url, username=username, error=error), status))
    resp.headers["Retry-After"] = str(retry_after)
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next", "")
    if request.method == "GET":
        if current_user() is not None:
            return redirect(_safe_next(next_url))
        return render_template("login.html", next=next_url, username="")
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")[:users.MAX_PASSWORD]
    settings = _settings()
    counters = _counters(settings, username)
    wait = _locked_for(counters)
    if wait:  # refused before any hashing
        minutes = math.ceil(wait / 60)
        return _refused(429, wait, next_url, username,
                        ngettext("Too many failed sign-in attempts. Try again in %(num)s minute.",
                                 "Too many failed sign-in attempts. Try again in %(num)s minutes.", minutes))
    gate = current_app.extensions["smsguard.login_gate"]
    with _db().session() as s:
        if not gate.acquire(blocking=False):  # hashing at capacity: answer now, never queue
            log.info("sign-in busy", extra={"user": username})
            return _refused(503, 1, next_url, username, gettext("Sign-in is busy. Try again in a moment."))
        try:
            row = users.authenticate(s, username, password)  # known or not: one argon2 verification
        finally:
            gate.release()
        found = (row.id, row.username, row.role, _session_mark(row)) if row is not None else None
    if found is None or found[2] not in ROLE_RANK:
        _record_failure(settings, counters)
        return render_template("login.html", next=next_url, username=username,
                               error=gettext("Wrong username or password, or the user is disabled.")), 401
    _clear_user(counters)
    session.clear()  # a fresh session: no fixation
    session.permanent = True
    session["uid"], session["pw"], session["at"] = found[0], found[3], int(_now())
    g.pop("web_user", None)
    flash(gettext("Signed in as %(user)s.", user=found[1]), "ok")
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout():
    """Ends the session on the server side too: the user's session generation moves on, so
    this cookie, any copy of it and the user's sessions in other browsers stop working."""
    user = current_user()
    if user is not None:
        with _db().session() as s:
            s.execute(update(User).where(User.id == user.id).values(session_gen=User.session_gen + 1))
            events.record(s, "user.logout", user.actor, subject=user.actor)
    session.clear()
    g.pop("web_user", None)
    if user is not None:
        flash(gettext("Signed out."), "ok")
    return redirect(url_for("auth.login"))
