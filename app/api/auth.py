"""Signed requests (docs/signing.md) and roles.

Every /v1 request is verified in a before_request hook, so no route can forget it; each view
then declares the roles it accepts with @require(...)."""
from __future__ import annotations

import functools
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app, g, request
from sqlalchemy import select

from app.api.problems import Problem
from app.services import keys
from app.store.models import ApiKey

HEADERS = ("X-Api-Key", "X-Timestamp", "X-Nonce", "X-Signature")
NONCE = re.compile(r"^[A-Za-z0-9_\-.~]{16,64}$")
SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    key_id: int
    public_key: str
    account_id: str | None
    role: str

    @property
    def actor(self) -> str:
        return f"key:{self.public_key}"


def _unauthorized(detail: str, reason: str) -> Problem:
    return Problem(401, detail, reason=reason, headers={"WWW-Authenticate": 'HMAC-SHA256 realm="smsguard"'})


def verify_request() -> Principal:
    """Check the four headers, the key, the signature, the clock and the nonce."""
    missing = [h for h in HEADERS if not request.headers.get(h)]
    if missing:
        raise _unauthorized(f"missing header(s): {', '.join(missing)}", "missing_header")
    public_key = request.headers["X-Api-Key"]
    ts, nonce, signature = (request.headers[h] for h in HEADERS[1:])
    if not NONCE.match(nonce):
        raise _unauthorized("X-Nonce must be 16-64 characters of letters, digits, '-', '_', '.', '~'", "bad_nonce")
    try:
        ts_value = int(ts)
    except ValueError:
        raise _unauthorized("X-Timestamp must be Unix seconds", "bad_timestamp") from None
    tolerance = current_app.config["SMSGUARD"].signature_tolerance_s
    skew = abs(time.time() - ts_value)
    if skew > tolerance:
        raise _unauthorized(f"X-Timestamp is {int(skew)} s away from the server clock (limit {tolerance} s)",
                            "stale_timestamp")
    db = current_app.extensions["smsguard.db"]
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.public_key == public_key))
        if key is None:
            raise _unauthorized("unknown API key", "unknown_key")
        if key.status != "active":
            raise _unauthorized("this API key has been revoked", "revoked_key")
        body = request.get_data(cache=True)
        expected = keys.sign(key.private_key, request.method, request.path,
                             list(request.args.items(multi=True)), ts, nonce, body)
        if not SIGNATURE.match(signature) or not hmac.compare_digest(expected, signature):
            raise _unauthorized("the signature does not match the request (see docs/signing.md)", "bad_signature")
        if not keys.remember_nonce(s, key.id, nonce, tolerance):
            raise _unauthorized("this nonce was already used: a replayed request", "replayed_nonce")
        now = datetime.now(UTC)
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            key.last_used_at = now  # written at most once a minute, not on every request
        return Principal(key.id, key.public_key, key.account_id, key.role)


def principal() -> Principal:
    return g.principal


def require(*roles: str):
    """Allow only these roles on a view (after the signature was verified)."""

    def deco(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            p = g.get("principal")
            if p is None:  # defensive: the before_request hook always sets it on /v1
                raise _unauthorized("this endpoint needs a signed request", "missing_header")
            if p.role not in roles:
                raise Problem(403, f"the {p.role} role may not do this (needs {' or '.join(roles)})")
            return view(*args, **kwargs)

        wrapper._roles = roles
        return wrapper

    return deco


def scope_account(account_id: str | None) -> str:
    """The account a request acts on: a tenant only ever its own; reviewers/admins any.
    A tenant naming another account gets 404, as if it did not exist."""
    p = principal()
    if p.role == "tenant":
        if account_id not in (None, p.account_id):
            raise Problem(404, f"no account {account_id}")
        return p.account_id
    if not account_id:
        raise Problem(422, "name the account this request acts on", errors={"account": ["required for this role"]})
    return account_id
