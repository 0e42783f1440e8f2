"""The record of checks, feedback and the training store (issue 16). SQLAlchemy models on the
same ``Base`` as app/store/models.py; migration 0006 makes their tables. docs/checks.md
describes every table, its indexes and the PostgreSQL index plan.

- ``check_records``: one row per pre-send check and per /v1/moderate call (written in batches by
  a background thread, app/services/checks.py); ``check_labels``: its categories and rules, one
  row each (the filters of /v1/checks); ``check_stats``: hourly counts per account, source,
  verdict and category / rule, kept in the same transaction as the records (the dashboard and
  /v1/stats read these, never the records themselves).
- ``feedback``: "this verdict was wrong", from tenants and reviewers, pending until a reviewer
  decides it (app/services/feedback.py).
- ``training_examples``: labelled examples made by reviewer decisions, read by
  ``smsguard export-training`` (one row = one line of the ../shared/data format).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, Complaint, utcnow

#: an id column that is 64-bit on PostgreSQL and SQLite's rowid on SQLite (autoincrement)
BigId = BigInteger().with_variant(Integer, "sqlite")

SOURCES = ("presend", "moderate")
TEXT_MODES = ("full", "masked", "none")
FEEDBACK_STATUSES = ("pending", "accepted", "dismissed")


class CheckRecord(Base):
    """One verdict given by the service: a pre-send check or a /v1/moderate call."""

    __tablename__ = "check_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]                                         # when the check was made (UTC)
    source: Mapped[str] = mapped_column(String(16))              # presend | moderate
    account_id: Mapped[str | None] = mapped_column(String(64))   # None: a reviewer's /v1/moderate without one
    message_id: Mapped[str | None] = mapped_column(String(128))
    template_id: Mapped[int | None] = mapped_column(Integer)
    # the recipient as SMSGUARD_CHECK_TEXT allows (full: E.164; masked: +86*******8000; none: NULL)
    phone: Mapped[str | None] = mapped_column(String(32))
    # HMAC-SHA256 of the E.164 number under a key derived from the secret key: the phone filter
    phone_hash: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(8))
    categories: Mapped[str] = mapped_column(Text, default="")    # "gambling,fraud" (also in result)
    rules: Mapped[str] = mapped_column(Text, default="")         # the reasons' rule ids, in order, unique
    score: Mapped[float] = mapped_column(Float, default=0.0)
    forced_by: Mapped[str | None] = mapped_column(String(64))
    ruleset_version: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(64))
    text_mode: Mapped[str] = mapped_column(String(8))            # full | masked | none
    text: Mapped[str | None] = mapped_column(Text)               # as text_mode allows
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the whole Verdict JSON (evidence masked alike)


class CheckLabel(Base):
    """A category or a rule of a check: what the category / rule filters of /v1/checks use."""

    __tablename__ = "check_labels"
    check_id: Mapped[int] = mapped_column(BigId, ForeignKey("check_records.id", ondelete="CASCADE"),
                                          primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)    # category | rule
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime]                                              # the check's time (copied)
    account_id: Mapped[str] = mapped_column(String(64), default="")   # the check's ("" = none, copied)


class CheckStat(Base):
    """Checks per UTC hour, account, source and verdict: ``dim`` "all" (value "") counts every
    check, "category" / "rule" count the checks carrying that category / rule. ``account_id``
    "*" holds the same counts over every account (the dashboard's default view reads a few rows
    per hour, however many accounts there are), "" the checks without an account. Written in
    the record writer's transaction, so it always agrees with check_records."""

    __tablename__ = "check_stats"
    bucket: Mapped[datetime] = mapped_column(primary_key=True)       # the hour's start (UTC)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" = no account, "*" = all
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    verdict: Mapped[str] = mapped_column(String(8), primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)    # all | category | rule
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class Feedback(Base):
    """"This verdict was wrong": about a recorded check, a message id or a text."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    account_id: Mapped[str | None] = mapped_column(String(64))
    submitted_by: Mapped[str] = mapped_column(String(128))            # "key:pk_…"
    submitted_role: Mapped[str] = mapped_column(String(16))           # tenant | reviewer | admin
    check_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("check_records.id", ondelete="SET NULL"))
    message_id: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str | None] = mapped_column(Text)                    # a copy: outlives the check's retention
    text_mode: Mapped[str] = mapped_column(String(8), default="full")  # the copy's: full | masked | none
    verdict: Mapped[dict[str, Any] | None]                            # what the engine said
    engine_verdict: Mapped[str | None] = mapped_column(String(8))
    expected: Mapped[str] = mapped_column(String(8))                  # allow | reject
    category: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[Any]] = mapped_column(default=list)          # what accepting it did


class TrainingExample(Base):
    """A labelled example made by a reviewer's decision: one line of the ../shared/data format
    ({"text", "labels", "lang", "source": origin, "orig": ref}). ``smsguard export-training``
    reads it; docs/checks.md is the contract."""

    __tablename__ = "training_examples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    labels: Mapped[list[Any]] = mapped_column(default=list)           # taxonomy ids; [] = normal
    lang: Mapped[str] = mapped_column(String(8))                      # zh | en
    origin: Mapped[str] = mapped_column(String(32))                   # feedback
    ref: Mapped[str] = mapped_column(String(128))                     # "feedback:12" (+ check / message)
    decided_by: Mapped[str] = mapped_column(String(128))              # "user:ann", "key:pk_…"
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("origin", "ref"),)


# listing: newest first, globally and per account (keyset pagination on (at, id))
Index("ix_check_records_at_id", CheckRecord.at, CheckRecord.id)
Index("ix_check_records_account_id_at_id", CheckRecord.account_id, CheckRecord.at, CheckRecord.id)
# a complaint's message id -> its check; the message id filter
Index("ix_check_records_message_id", CheckRecord.message_id)
Index("ix_check_records_phone_hash_at", CheckRecord.phone_hash, CheckRecord.at)
# category / rule filters: /v1/checks walks these in (at, check_id) order, so a page costs its
# matches, however rare the value (globally, and within one account)
Index("ix_check_labels_kind_value_at_check_id", CheckLabel.kind, CheckLabel.value, CheckLabel.at, CheckLabel.check_id)
Index("ix_check_labels_account_id_kind_value_at_check_id", CheckLabel.account_id, CheckLabel.kind, CheckLabel.value,
      CheckLabel.at, CheckLabel.check_id)
Index("ix_check_stats_account_id_dim_bucket", CheckStat.account_id, CheckStat.dim, CheckStat.bucket)
Index("ix_feedback_status_id", Feedback.status, Feedback.id)
Index("ix_feedback_account_id_id", Feedback.account_id, Feedback.id)
Index("ix_feedback_check_id", Feedback.check_id)
Index("ix_training_examples_decided_at", TrainingExample.decided_at)
# a check -> its complaints (complaints.message_id, filed by the sending platform)
Index("ix_complaints_account_id_message_id", Complaint.account_id, Complaint.message_id)
