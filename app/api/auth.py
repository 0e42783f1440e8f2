"""Signed requests (docs/signing.md) and roles.

Every /v1 request is verified in a before_request hook, so no route can forget it; each view
then declares the roles it accepts with @require(...)."""
from __future__ import annotations

import functools
import hmac
import re
import secrets
import time
from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app, g, request
from sqlalchemy import select, update

from app.store.db import unavailable
from app.store.hotpath import HotPath, Tx, utc

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
    values = [request.headers.get(h) for h in HEADERS]
    missing = [h for h, v in zip(HEADERS, values) if not v]
    if missing:
        raise _unauthorized(f"missing header(s): {', '.join(missing)}", "missing_header")
    public_key, ts, nonce, signature = values
    if not NONCE.match(nonce):
        raise _unauthorized("X-Nonce must be 16-64 characters of letters, digits, '-', '_', '.', '~'", "bad_nonce")
    # digits only: int() would also take "+1764…", " 1764…" and "17_64…" (the signed string holds
    # the header as sent, so two spellings of one time would sign differently)
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise _unauthorized("X-Timestamp must be Unix seconds (digits only)", "bad_timestamp")
    ts_value = int(ts)
    tolerance = current_app.config["SMSGUARD"].signature_tolerance_s
    skew = abs(time.time() - ts_value)
    if skew > tolerance:
        raise _unauthorized(f"X-Timestamp is {int(skew)} s away from the server clock (limit {tolerance} s)",
                            "stale_timestamp")
    db = current_app.extensions["smsguard.db"]
    if _defers_nonce():
        # the view stores the nonce in its own write transaction (consume_nonce): one commit per
        # request; the key is only read here, on the connection the request keeps for that
        # transaction (given back by release_connection at the end of the request)
        hp = hotpath()
        try:
            hp.hold()
            row = hp.read(KEY_SQL, {"pk": public_key})
        except Exception as exc:
            if not unavailable(exc):
                raise
            return _verify_offline(exc, public_key, ts, nonce, signature, tolerance)
        key = _Key(*row) if row is not None else None
        _check_key(key, ts, nonce, signature)
        _known_keys().remember(key)
        now = datetime.now(UTC)
        last = utc(key.last_used_at)
        stale = last is None or now - last > LAST_USED_RESOLUTION
        g.pending_nonce = (key.id, nonce, tolerance, stale)
        return Principal(key.id, key.public_key, key.account_id, key.role)
    # read-then-write: take the write lock up front on SQLite (a deferred transaction that read
    # first fails with "database is locked" when another worker wrote in between)
    with db.session(immediate=True) as s:
        key = s.scalar(select(ApiKey).where(ApiKey.public_key == public_key))
        _check_key(key, ts, nonce, signature)
        if not keys.remember_nonce(s, key.id, nonce, tolerance):
            raise _unauthorized("this nonce was already used: a replayed request", "replayed_nonce")
        now = datetime.now(UTC)
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            key.last_used_at = now  # written at most once a minute, not on every request
        return Principal(key.id, key.public_key, key.account_id, key.role)


class KnownKeys:
    """Keys this process verified recently, for the pre-send check while the database is down:
    the check then answers by SMSGUARD_PRESEND_FAIL_MODE (a reject saying why, or a degraded
    allow) instead of failing the call. Nonces of such requests are kept in memory for the
    signature window (per process: the database cannot be asked)."""

    MAX_KEYS = 10_000

    def __init__(self):
        self.keys: dict[str, _Key] = {}
        self.nonces: dict[tuple[str, str], float] = {}

    def remember(self, key: "_Key") -> None:
        if len(self.keys) >= self.MAX_KEYS and key.public_key not in self.keys:
            self.keys.clear()
        self.keys[key.public_key] = key

    def fresh_nonce(self, public_key: str, nonce: str, window_s: int) -> bool:
        now = time.time()
        if len(self.nonces) > 100_000:
            self.nonces = {k: t for k, t in self.nonces.items() if now - t < window_s}
        if (public_key, nonce) in self.nonces:
            return False
        self.nonces[(public_key, nonce)] = now
        return True


def _known_keys() -> KnownKeys:
    kk = current_app.extensions.get("smsguard.known_keys")
    if kk is None:
        kk = current_app.extensions["smsguard.known_keys"] = KnownKeys()
    return kk


def _verify_offline(exc: Exception, public_key: str, ts: str, nonce: str, signature: str,
                    tolerance: int) -> Principal:
    """The database is unreachable: verify against a key this process saw, or re-raise (503)."""
    known = _known_keys()
    key = known.keys.get(public_key)
    if key is None:
        raise exc
    _check_key(key, ts, nonce, signature)
    if not known.fresh_nonce(public_key, nonce, tolerance):
        raise _unauthorized("this nonce was already used: a replayed request", "replayed_nonce")
    g.pending_nonce = None  # nothing can be stored; the view answers by the fail mode
    return Principal(key.id, key.public_key, key.account_id, key.role)


def _check_key(key, ts: str, nonce: str, signature: str) -> None:
    if key is None:
        raise _unauthorized("unknown API key", "unknown_key")
    if key.status != "active":
        raise _unauthorized("this API key has been revoked", "revoked_key")
    body = request.get_data(cache=True)
    expected = keys.sign(key.private_key, request.method, request.path,
                         list(request.args.items(multi=True)), ts, nonce, body)
    if not SIGNATURE.match(signature) or not hmac.compare_digest(expected, signature):
        raise _unauthorized("the signature does not match the request (see docs/signing.md)", "bad_signature")


KEY_SQL = ("SELECT id, public_key, private_key, account_id, role, status, last_used_at FROM api_keys "
           "WHERE public_key = :pk")
NONCE_SQL = ("INSERT INTO request_nonces (key_id, nonce, seen_at) VALUES (:k, :n, :t) "
             "ON CONFLICT (key_id, nonce) DO NOTHING RETURNING nonce")
_Key = namedtuple("_Key", "id public_key private_key account_id role status last_used_at")


def hotpath() -> HotPath:
    """The app's raw-connection hot path (app/store/hotpath.py), made on first use."""
    hp = current_app.extensions.get("smsguard.hotpath")
    if hp is None:
        hp = current_app.extensions["smsguard.hotpath"] = HotPath(current_app.extensions["smsguard.db"])
    return hp


def release_connection(_exc=None) -> None:
    """teardown_request: give back the connection a hot-path request held (HotPath.hold)."""
    hp = current_app.extensions.get("smsguard.hotpath")
    if hp is not None:
        hp.release()


# --- nonce stored by the view, in the view's own write transaction ----------------------------

_DEFER_CACHE: dict[tuple[str | None, str], bool] = {}


def nonce_in_view(fn):
    """Mark a view that stores the request's nonce itself, inside its write transaction, by
    calling ``consume_nonce(session)`` first thing in it (one commit per request on a hot path).
    Its blueprint registers ``finish_deferred_nonce`` as an after_request hook, which stores the
    nonce of a request that ended before the view got to it (a 422, a 404 ...)."""
    fn._nonce_in_view = True
    return fn


def _defers_nonce() -> bool:
    k = (request.endpoint, request.method)
    v = _DEFER_CACHE.get(k)
    if v is None:
        view = current_app.view_functions.get(request.endpoint)
        cls = getattr(view, "view_class", None)
        fn = getattr(cls, request.method.lower(), None) if cls is not None else view
        v = _DEFER_CACHE[k] = bool(getattr(fn, "_nonce_in_view", False))
    return v


def consume_nonce(session) -> None:
    """Store the pending nonce in ``session`` (the view's write transaction: a Session or a
    Core Connection); 401 on a replay.
    Call ``nonce_committed()`` once that transaction committed."""
    pending = g.get("pending_nonce")
    if pending is None:
        return
    key_id, nonce, tolerance, stale = pending
    if isinstance(session, Tx):  # the hot path: the same statements on the driver's connection
        now = datetime.now(UTC)
        fresh = session.fetchone(NONCE_SQL, {"k": key_id, "n": nonce, "t": session.hp.stamp(now)}) is not None
        if fresh and secrets.randbelow(200) == 0:  # purge now and then, like keys.remember_nonce
            session.execute("DELETE FROM request_nonces WHERE seen_at < :cut",
                            {"cut": session.hp.stamp(now - timedelta(seconds=2 * tolerance))})
        if fresh and stale:
            session.execute("UPDATE api_keys SET last_used_at = :t WHERE id = :id",
                            {"t": session.hp.stamp(now), "id": key_id})
    else:
        fresh = keys.remember_nonce(session, key_id, nonce, tolerance)
        if fresh and stale:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC)))
    if not fresh:
        g.pending_nonce = None
        raise _unauthorized("this nonce was already used: a replayed request", "replayed_nonce")
    g.nonce_in_txn = True


def nonce_committed() -> None:
    if g.get("nonce_in_txn"):
        g.pending_nonce = None


def finish_deferred_nonce(response):
    """after_request: a request whose view did not store its nonce (it failed before or inside
    the transaction, which rolled back) stores it now; a replay becomes the 401 it is."""
    if g.get("pending_nonce") is None:
        return response
    key_id, nonce, tolerance, _ = g.pending_nonce
    g.pending_nonce = None
    try:
        with current_app.extensions["smsguard.db"].session(immediate=True) as s:
            fresh = keys.remember_nonce(s, key_id, nonce, tolerance)
    except Exception as exc:
        if not unavailable(exc):
            raise
        return response  # the answer stands (it was decided by the fail mode); nothing to store
    if not fresh:
        from app.api.problems import problem_response

        return problem_response(401, "this nonce was already used: a replayed request", reason="replayed_nonce",
                                headers={"WWW-Authenticate": 'HMAC-SHA256 realm="smsguard"'})
    return response


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
