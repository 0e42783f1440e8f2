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
"""
from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for

from app.services import users
from app.store.models import User
from app.web import web_blueprint

bp = web_blueprint("auth", __name__)

ROLE_RANK = {"reviewer": 1, "admin": 2}


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


def _pw_mark(password_hash: str) -> str:
    """A short fingerprint of the stored hash: a password change ends open sessions."""
    import hashlib

    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def current_user() -> WebUser | None:
    """The signed-in user of this request (looked up once per request), or None."""
    if "web_user" in g:
        return g.web_user
    user = None
    uid = session.get("uid")
    if uid is not None:
        with _db().session() as s:
            row = s.get(User, uid)
            if row is not None and row.active and hmac.compare_digest(session.get("pw", ""),
                                                                       _pw_mark(row.password_hash)):
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
                abort(403, description=f"This page needs the {role if isinstance(role, str) else ' or '.join(role)} "
                                       f"role; you are signed in as {user.role}.")
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


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next", "")
    if request.method == "GET":
        if current_user() is not None:
            return redirect(_safe_next(next_url))
        return render_template("login.html", next=next_url, username="")
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")[:users.MAX_PASSWORD]
    with _db().session() as s:
        row = users.authenticate(s, username, password)
        found = (row.id, row.username, row.role, _pw_mark(row.password_hash)) if row is not None else None
    if found is None or found[2] not in ROLE_RANK:
        return render_template("login.html", next=next_url, username=username,
                               error="Wrong username or password, or the user is disabled."), 401
    session.clear()  # a fresh session: no fixation
    session.permanent = True
    session["uid"], session["pw"] = found[0], found[3]
    g.pop("web_user", None)
    flash(f"Signed in as {found[1]}.", "ok")
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout():
    user = current_user()
    session.clear()
    g.pop("web_user", None)
    if user is not None:
        flash("Signed out.", "ok")
    return redirect(url_for("auth.login"))
