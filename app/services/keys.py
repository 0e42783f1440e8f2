"""API key pairs: create, revoke, rotate, verify request signatures."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.services import accounts, events
from app.services.errors import Invalid, NotFound
from app.store.models import ROLES, ApiKey, RequestNonce

PUBLIC_PREFIX = "pk_"
PRIVATE_PREFIX = "sk_"


@dataclass(frozen=True)
class IssuedKey:
    """Returned once at creation: the only time the private key is shown."""

    id: int
    account_id: str | None
    role: str
    public_key: str
    private_key: str


def create(session: Session, account_id: str | None, role: str, label: str = "",
           actor: str = "cli") -> IssuedKey:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    if role == "tenant" and not account_id:
        raise Invalid("a tenant key needs an account", field="account")
    if role == "platform" and account_id:
        raise Invalid("a platform key serves every account: give no account", field="account")
    if account_id:
        accounts.get_or_create(session, account_id, actor=actor)
    key = ApiKey(public_key=PUBLIC_PREFIX + secrets.token_hex(12),
                 private_key=PRIVATE_PREFIX + secrets.token_urlsafe(32),
                 account_id=account_id, role=role, label=label)
    session.add(key)
    session.flush()
    events.record(session, "key.created", actor, account_id, subject=key.public_key, role=role)
    return IssuedKey(key.id, account_id, role, key.public_key, key.private_key)


def _find(session: Session, public_key: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.public_key == public_key))
    if key is None:
        raise NotFound(f"no key {public_key}")
    return key


def revoke(session: Session, public_key: str, actor: str = "cli") -> ApiKey:
    key = _find(session, public_key)
    if key.status != "revoked":
        key.status = "revoked"
        key.revoked_at = datetime.now(UTC)
        events.record(session, "key.revoked", actor, key.account_id, subject=public_key)
    return key


def rotate(session: Session, public_key: str, actor: str = "cli") -> IssuedKey:
    """A new pair with the same account and role; the old one is revoked."""
    old = _find(session, public_key)
    if old.status == "revoked":
        raise Invalid(f"key {public_key} is revoked; create a new one instead")
    new = create(session, old.account_id, old.role, label=old.label, actor=actor)
    revoke(session, public_key, actor=actor)
    old.replaced_by = new.id
    events.record(session, "key.rotated", actor, old.account_id, subject=public_key,
                  replaced_by=new.public_key)
    return new


def list_keys(session: Session, account_id: str | None = None) -> list[ApiKey]:
    q = select(ApiKey).order_by(ApiKey.id)
    if account_id:
        q = q.where(ApiKey.account_id == account_id)
    return list(session.scalars(q))


# --- request signing -------------------------------------------------------------------------

def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Parameters sorted by name (then value), RFC 3986 percent-encoded, k=v joined by &."""
    enc = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def string_to_sign(method: str, path: str, query_pairs: list[tuple[str, str]], timestamp: str,
                   nonce: str, body: bytes) -> str:
    return "\n".join([method.upper(), path, canonical_query(query_pairs), timestamp, nonce,
                      hashlib.sha256(body).hexdigest()])


def sign(private_key: str, method: str, path: str, query_pairs: list[tuple[str, str]],
         timestamp: str, nonce: str, body: bytes) -> str:
    msg = string_to_sign(method, path, query_pairs, timestamp, nonce, body)
    return hmac.new(private_key.encode(), msg.encode(), hashlib.sha256).hexdigest()


_NONCE_STMTS: dict = {}


def _nonce_stmt(dialect: str):
    """Built once per dialect (bound parameters): no statement construction per request."""
    stmt = _NONCE_STMTS.get(dialect)
    if stmt is None:
        from sqlalchemy import bindparam

        insert = {"sqlite": sqlite_insert, "postgresql": pg_insert}[dialect]
        stmt = _NONCE_STMTS[dialect] = insert(RequestNonce).values(
            key_id=bindparam("k"), nonce=bindparam("n"), seen_at=bindparam("t")
        ).on_conflict_do_nothing().returning(RequestNonce.nonce)
    return stmt


def remember_nonce(session: Session, key_id: int, nonce: str, window_s: int) -> bool:
    """Store the nonce; False if this key already used it within the window (a replay).
    Nonces older than twice the window are purged now and then. ``session`` may also be a
    Core Connection (the pre-send check's hot path)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    params = {"k": key_id, "n": nonce, "t": datetime.now(UTC)}
    if session.execute(_nonce_stmt(bind.dialect.name), params).first() is None:
        return False
    if secrets.randbelow(200) == 0:
        cutoff = datetime.now(UTC) - timedelta(seconds=2 * window_s)
        session.execute(delete(RequestNonce).where(RequestNonce.seen_at < cutoff))
    return True
