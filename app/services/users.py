"""People who sign in to the reviewer web pages: create, list, disable, authenticate.

Passwords are hashed with argon2id (argon2-cffi); they are never stored, logged or echoed."""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import events
from app.services.errors import Conflict, Invalid, NotFound
from app.store.models import User

USER_ROLES = ("reviewer", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

log = logging.getLogger("smsguard.users")
_hasher = PasswordHasher()
# verified against when the user does not exist, so both paths take the same time
_DUMMY_HASH = _hasher.hash("smsguard-no-such-user-placeholder")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password must have at least {MIN_PASSWORD} characters", field="password")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"the password must have at most {MAX_PASSWORD} characters", field="password")


def create(session: Session, username: str, password: str, role: str = "reviewer",
           actor: str = "cli") -> User:
    if not USERNAME.match(username or ""):
        raise Invalid("the username must be 2-64 letters, digits, '_', '.', '@' or '-', starting with a "
                      "letter or digit", field="username")
    if role not in USER_ROLES:
        raise Invalid(f"role must be one of {', '.join(USER_ROLES)}", field="role")
    _check_password(password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    events.record(session, "user.created", actor, subject=f"user:{username}", role=role)
    return user


def get(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def disable(session: Session, username: str, actor: str = "cli") -> User:
    """The user can no longer sign in; an open session ends at its next request."""
    user = get(session, username)
    if user.active:
        user.active = False
        events.record(session, "user.disabled", actor, subject=f"user:{username}")
    return user


def enable(session: Session, username: str, actor: str = "cli") -> User:
    user = get(session, username)
    if not user.active:
        user.active = True
        events.record(session, "user.enabled", actor, subject=f"user:{username}")
    return user


def set_password(session: Session, username: str, password: str, actor: str = "cli") -> User:
    _check_password(password)
    user = get(session, username)
    user.password_hash = hash_password(password)
    events.record(session, "user.password_changed", actor, subject=f"user:{username}")
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same work either way)."""
    user = session.scalar(select(User).where(User.username == username)) if username else None
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        log.info("sign-in refused", extra={"user": username[:64] if username else ""})
        return None
    if user is None or not user.active:
        log.info("sign-in refused", extra={"user": username[:64]})
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = datetime.now(UTC)
    events.record(session, "user.login", f"user:{username}", subject=f"user:{username}")
    return user
