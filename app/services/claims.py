"""Review claims (issue 15): a reviewer opening a pending item holds it for a few minutes, so two
reviewers do not work on the same signature or template.

- One ``review_claims`` row per item, shared by every worker and machine. ``claim`` takes it
  with ONE conditional upsert (``INSERT ... ON CONFLICT DO UPDATE ... WHERE the row expired or
  is mine ... RETURNING``): when two reviewers open an item at once, exactly one gets the row
  back; the other reads who holds it. Run it in ``db.session(immediate=True)``: on SQLite the
  write lock is taken up front; on PostgreSQL the item row is locked ``FOR UPDATE`` first, so a
  claim and a decision on the same item run one after the other (no claim is left on a decided
  item).
- Times come from ONE clock, :func:`now`: the database server's on PostgreSQL (several machines
  with skewed clocks still agree on when a claim ends), the machine's on SQLite (the database
  lives on it). Every comparison (still held? expired?) uses it; tests replace it.
- A reviewer holds one claim at a time: taking an item releases the others they held (looking
  at an item someone else holds releases nothing).
- Deciding an item (app/services/review.py ``decide``) refuses while another actor's claim holds
  (409) and deletes the item's claim. An admin may take a claim over explicitly (``takeover``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.services import events
from app.services.errors import Conflict, Forbidden, NotFound
from app.store.models import ReviewClaim, Signature, Template
from app.store.records import Feedback

MODELS = {"signature": Signature, "template": Template, "feedback": Feedback}
DEFAULT_MINUTES = 10


def now(session: Session) -> datetime:
    """The claims' clock: PostgreSQL's ``clock_timestamp()`` (the server's wall clock, not the
    transaction's start), else this machine's UTC time."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(select(func.clock_timestamp()))
        return value.astimezone(UTC)
    return datetime.now(UTC)


def who(actor: str | None) -> str:
    """'user:rita' -> 'rita' (what a page shows)."""
    if not actor:
        return ""
    return actor.split(":", 1)[1] if actor.startswith("user:") else actor


@dataclass(frozen=True)
class Claim:
    kind: str
    item_id: int
    actor: str
    expires_at: datetime

    @property
    def who(self) -> str:
        return who(self.actor)

    @property
    def until(self) -> str:
        """HH:MM UTC, for "claimed by rita until 10:42 UTC"."""
        return self.expires_at.astimezone(UTC).strftime("%H:%M UTC")

    def describe(self) -> str:
        return f"claimed by {self.who} until {self.until}"


@dataclass(frozen=True)
class ClaimResult:
    held: bool            # the caller holds the item now
    claim: Claim | None   # the live claim (the caller's, or who else holds it)
    taken_over_from: str | None = None


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def holder(session: Session, kind: str, item_id: int, at: datetime | None = None) -> Claim | None:
    """The live claim on an item, or None (an expired row counts as none)."""
    at = at or now(session)
    row = session.execute(select(ReviewClaim.actor, ReviewClaim.expires_at).where(
        ReviewClaim.subject_type == kind, ReviewClaim.subject_id == item_id,
        ReviewClaim.expires_at > at)).first()
    return Claim(kind, item_id, row[0], row[1]) if row else None


def blocking(session: Session, kind: str, item_id: int, actor: str, at: datetime | None = None) -> Claim | None:
    """Another actor's live claim on the item (what stops ``actor`` from deciding it)."""
    c = holder(session, kind, item_id, at)
    return c if c is not None and c.actor != actor else None


def claim(session: Session, kind: str, item_id: int, actor: str, minutes: int = DEFAULT_MINUTES,
          takeover: bool = False, role: str | None = None) -> ClaimResult:
    """Claim a pending item for ``actor`` for ``minutes`` (renewing their own claim). Someone
    else's live claim wins unless ``takeover`` (admins only: recorded as an event). An item that
    is not pending is not claimed (``held`` False, no claim)."""
    if kind not in MODELS:
        raise NotFound(f"no {kind} {item_id}")
    if takeover and role != "admin":
        raise Forbidden("only admins take over another reviewer's claim")
    model = MODELS[kind]
    # lock the item row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers):
    # a decision on it waits for this claim, or this claim sees the decision
    status = session.scalar(select(model.status).where(model.id == item_id).with_for_update())
    if status is None:
        raise NotFound(f"no {kind} {item_id}")
    at = now(session)
    if status != "pending":
        return ClaimResult(False, None)
    previous = holder(session, kind, item_id, at) if takeover else None
    until = at + timedelta(minutes=max(1, int(minutes)))
    stmt = _insert(session)(ReviewClaim).values(subject_type=kind, subject_id=item_id, actor=actor,
                                                claimed_at=at, expires_at=until)
    where = None if takeover else or_(ReviewClaim.expires_at <= at, ReviewClaim.actor == actor)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ReviewClaim.subject_type, ReviewClaim.subject_id],
        set_={"actor": stmt.excluded.actor, "claimed_at": stmt.excluded.claimed_at,
              "expires_at": stmt.excluded.expires_at},
        where=where).returning(ReviewClaim.actor, ReviewClaim.expires_at)
    row = session.execute(stmt).first()
    if row is None:  # someone else holds it (and the caller keeps what they held)
        return ClaimResult(False, holder(session, kind, item_id, at))
    # one claim per reviewer: holding this item lets go of the others
    session.execute(delete(ReviewClaim).where(
        ReviewClaim.actor == actor,
        or_(ReviewClaim.subject_type != kind, ReviewClaim.subject_id != item_id)))
    taken_from = previous.actor if previous is not None and previous.actor != actor else None
    if taken_from:
        item = session.get(model, item_id)
        events.record(session, "review.claim_taken_over", actor, item.account_id if item else None,
                      subject=f"{kind}:{item_id}", from_actor=taken_from)
    return ClaimResult(True, Claim(kind, item_id, row[0], row[1]), taken_from)


def release(session: Session, kind: str, item_id: int, actor: str | None = None) -> None:
    """Delete the item's claim (only ``actor``'s, when given)."""
    q = delete(ReviewClaim).where(ReviewClaim.subject_type == kind, ReviewClaim.subject_id == item_id)
    if actor is not None:
        q = q.where(ReviewClaim.actor == actor)
    session.execute(q)


def check_free(session: Session, kind: str, item_id: int, actor: str) -> None:
    """Conflict (409) when another actor's claim holds the item."""
    c = blocking(session, kind, item_id, actor)
    if c is not None:
        raise Conflict(f"{kind} {item_id} is {c.describe()}; wait for it to be released or ask "
                       f"an admin to take it over", claimed_by=c.who, claimed_until=c.expires_at.isoformat())


def live_condition(kind_col, id_col, at: datetime):
    """SQL: the join condition of an item's live claim (for the queue's outer join)."""
    return and_(ReviewClaim.subject_type == kind_col, ReviewClaim.subject_id == id_col,
                ReviewClaim.expires_at > at)
