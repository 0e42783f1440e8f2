"""SQLAlchemy 2 models. Schema changes go through Alembic (app/store/migrations)."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


ACCOUNT_STATUSES = ("active", "warned", "suspended", "terminated")
ROLES = ("tenant", "reviewer", "admin", "platform")  # platform: the sending platform relaying carrier-side events
# withdrawn: approved once, then taken back by a reviewer (issue 15); never sendable again
REVIEW_STATUSES = ("pending", "approved", "rejected", "withdrawn")
_STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in REVIEW_STATUSES) + ")"
TEMPLATE_TYPES = ("verification", "notification", "promotional")


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A public/private key pair. The private key is needed to verify HMAC signatures, so it
    is stored; it is never logged and never returned after creation."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    private_key: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | revoked
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))


class RequestNonce(Base):
    """Nonces seen within the signature window, shared by every worker process."""

    __tablename__ = "request_nonces"
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class User(Base):
    """A person signing in to the reviewer web pages."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="reviewer")  # reviewer | admin
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # bumped by sign-out: every session cookie issued before it stops working (app/web/auth.py)
    session_gen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LoginThrottle(Base):
    """Failed sign-ins to the reviewer pages, one row per username and per client address,
    shared by every worker and machine (app/web/auth.py). ``key`` is an HMAC of "u:<username>"
    or "a:<address>" (what was typed as a username is never stored); times are Unix seconds."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # the row means nothing after it


class Signature(Base):
    __tablename__ = "signatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    verdict: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # the queue's columns, derived from the verdict and the name (review_index, kept by the
    # before_insert / before_update hooks below): the queue sorts, filters and groups in SQL
    engine_verdict: Mapped[str | None] = mapped_column(String(8))
    engine_score: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    engine_categories: Mapped[str] = mapped_column(Text, default="", server_default="")
    risk: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dup_key: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    decisions: Mapped[list["ReviewDecision"]] = relationship(
        primaryjoin="and_(ReviewDecision.subject_type == 'signature', "
                    "foreign(ReviewDecision.subject_id) == Signature.id)",
        order_by="ReviewDecision.id", viewonly=True)
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)


class Template(Base):
    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    signature_id: Mapped[int] = mapped_column(ForeignKey("signatures.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    region: Mapped[str] = mapped_column(String(8), default="cn")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    verdict: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # the queue's columns (see Signature)
    engine_verdict: Mapped[str | None] = mapped_column(String(8))
    engine_score: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    engine_categories: Mapped[str] = mapped_column(Text, default="", server_default="")
    risk: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dup_key: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    signature: Mapped[Signature] = relationship()
    decisions: Mapped[list["ReviewDecision"]] = relationship(
        primaryjoin="and_(ReviewDecision.subject_type == 'template', "
                    "foreign(ReviewDecision.subject_id) == Template.id)",
        order_by="ReviewDecision.id", viewonly=True)
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)


class ReviewDecision(Base):
    """Every decision on a signature or template: automatic or a person's, never updated."""

    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # signature | template
    subject_id: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject | pending | withdraw
    actor: Mapped[str] = mapped_column(String(128))  # "system", "key:<public>", "user:<name>"
    verdict: Mapped[dict[str, Any] | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_review_decisions_subject", "subject_type", "subject_id"),)


class ReviewClaim(Base):
    """A reviewer working on a pending signature or template (issue 15): one row per item, held
    until ``expires_at`` (the database's clock, app/services/claims.py), deleted on decision.
    Shared by every worker and machine; taken with one conditional upsert, so two reviewers
    opening an item at once cannot both hold it."""

    __tablename__ = "review_claims"
    subject_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # signature | template
    subject_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)  # "user:<name>"
    claimed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))  # carrier | regulator | user | internal
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    __table_args__ = (UniqueConstraint("account_id", "source", "external_id"),)


class OptOut(Base):
    """A recipient who no longer wants an account's promotional messages."""

    __tablename__ = "opt_outs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    phone: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # reply | complaint | admin
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("account_id", "phone"),)


class AccountStateChange(Base):
    """warn / suspend / reinstate / terminate, with the evidence that caused it."""

    __tablename__ = "account_state_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(64))
    rate: Mapped[float | None]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DailyVolume(Base):
    """Allowed messages per account per day: the denominator of complaint rates."""

    __tablename__ = "daily_volumes"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    allowed: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)


class CustomTerm(Base):
    """Per-account keyword lists (block / review / allow), applied at check time."""

    __tablename__ = "custom_terms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # block | review | allow
    term: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("account_id", "kind", "term"),)


class AuditRun(Base):
    __tablename__ = "audit_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    inputs: Mapped[list[Any]] = mapped_column(default=list)
    output: Mapped[str] = mapped_column(Text, default="")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ruleset_version: Mapped[str] = mapped_column(String(64), default="")
    model_version: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Event(Base):
    """Append-only log of everything that changed state (a trigger forbids UPDATE and DELETE)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SendCounter(Base):
    """Per-recipient frequency counters of the pre-send check (issue 6), shared by every worker
    process: one row per (account, phone, message type) holding the current minute, hour and
    day windows (window index = local time // window length) and their counts. Updated with a
    single conditional upsert, so the check-and-count is atomic on SQLite and PostgreSQL."""

    __tablename__ = "send_counters"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    msg_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    minute_start: Mapped[int] = mapped_column(BigInteger, default=0)
    minute_count: Mapped[int] = mapped_column(Integer, default=0)
    hour_start: Mapped[int] = mapped_column(BigInteger, default=0)
    hour_count: Mapped[int] = mapped_column(Integer, default=0)
    day_start: Mapped[int] = mapped_column(BigInteger, default=0)
    day_count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[int] = mapped_column(BigInteger, default=0, index=True)  # Unix seconds, for the sweep


# complaint-rate queries: an account's complaints since a moment
Index("ix_complaints_account_id_created_at", Complaint.account_id, Complaint.created_at)
Index("ix_account_state_changes_account_id_created_at", AccountStateChange.account_id,
      AccountStateChange.created_at)


# --------------------------------------------------------------------------- the review queue's columns

#: categories that never change a verdict (rules/policy.yaml ``informational``): they do not
#: make an item "flagged"
INFORMATIONAL_CATEGORIES = frozenset({"marketing"})
#: Signature/Template.risk: 3 the engine says reject; 2 review with a (non-informational)
#: category: "flagged", approving needs a confirmation; 1 review (lint, policy); 0 allow / none
RISK_REJECT, RISK_FLAGGED, RISK_REVIEW, RISK_NONE = 3, 2, 1, 0


def risk_of(verdict: dict | None) -> int:
    v = verdict or {}
    outcome = v.get("verdict")
    if outcome == "reject":
        return RISK_REJECT
    if outcome == "review":
        cats = set(v.get("categories") or ())
        return RISK_FLAGGED if cats - INFORMATIONAL_CATEGORIES else RISK_REVIEW
    return RISK_NONE


def dup_key(kind: str, text: str, label: str = "", variables: Any = None, region: str | None = None) -> str:
    """Identical submissions (same kind, type, text, variables and region) share this key: the
    queue shows them as one row. Migration 0005 fills it for existing rows the same way."""
    doc = [kind, label or "", text or "", variables or {}, region or ""]
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def review_index(kind: str, item) -> dict[str, Any]:
    """The queue columns of a signature or template, from its verdict and text."""
    v = item.verdict or {}
    cats = [str(c) for c in v.get("categories") or ()]
    try:
        score = float(v.get("score") or 0.0)
    except (TypeError, ValueError):
        score = 0.0
    if kind == "signature":
        key = dup_key("signature", item.name, "signature")
    else:
        key = dup_key("template", item.content, item.type, item.variables, item.region)
    return {"engine_verdict": v.get("verdict"), "engine_score": score,
            "engine_categories": ("," + ",".join(cats) + ",") if cats else "",
            "risk": risk_of(v), "dup_key": key}


def _indexer(kind: str):
    def hook(_mapper, _conn, target) -> None:
        for k, val in review_index(kind, target).items():
            if getattr(target, k) != val:
                setattr(target, k, val)
    return hook


for _model, _kind in ((Signature, "signature"), (Template, "template")):
    event.listen(_model, "before_insert", _indexer(_kind))
    event.listen(_model, "before_update", _indexer(_kind))
