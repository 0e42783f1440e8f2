"""Complaint-driven enforcement (issue 6): complaint rate per account -> warn / suspend /
terminate, admins suspend by hand and reinstate with a note. Every state change is an
AccountStateChange row (rule, rate, evidence = the complaint ids and the figures, actor, note)
plus an Event.

The policy is the ``enforcement:`` section of rules/policy.yaml (see presend.sending_policy):

- the metric: over the last ``window_days``, and only since the account's last state change
  (so each step on the ladder needs NEW complaints), complaints per million allowed messages
  (DailyVolume) when the account sent at least ``rate.min_volume`` of them; below that volume the
  plain complaint ``count``;
- the level the metric reaches: 1 warn, 2 suspend, 3 terminate (thresholds ``rate.*`` /
  ``count.*``);
- the ladder on repeat: the step taken is max(level, highest step in the last
  ``ladder_memory_days`` + 1): a first breach warns, a breach after a warning suspends, a breach
  after a suspension (once reinstated) terminates.

``ladder()`` says where an account stands on it and, per metric, the value from which its next
breach takes each step (a warned account's first threshold suspends): ``evaluate`` takes its step
and writes its note from it, and the accounts pages show it, so the threshold a page shows and
the one a note names are the same figure.

Only active and warned accounts are evaluated: a suspended or terminated account waits for an
admin. Callers hold the account's row lock (``lock_account``) and run in
``db.session(immediate=True)``, so complaints arriving at once on several workers are counted
one after the other and the account is suspended once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import events
from app.services.errors import Conflict, Invalid, NotFound
from app.services.presend import EnforcementSettings
from app.store.models import Account, AccountStateChange, Complaint, DailyVolume

RULES = {
    "ACCT_COMPLAINT_RATE": "complaints per million allowed messages over the window reached a threshold",
    "ACCT_COMPLAINT_COUNT": "complaints over the window reached a threshold (senders below the minimum volume)",
    "ACCT_MANUAL_SUSPEND": "suspended by an admin",
    "ACCT_MANUAL_REINSTATE": "reinstated by an admin",
}
STEPS = {1: "warned", 2: "suspended", 3: "terminated"}
STEP_OF = {"warned": 1, "suspended": 2, "terminated": 3}
STEP_NAMES = ("warn", "suspend", "terminate")
SYSTEM = "system:enforcement"


def lock_account(session: Session, account_id: str) -> Account:
    """The account, its row locked until the transaction ends (FOR UPDATE on PostgreSQL; on
    SQLite the caller's BEGIN IMMEDIATE already serialises writers)."""
    acct = session.get(Account, account_id, with_for_update=True, populate_existing=True)
    if acct is None:
        raise NotFound(f"no account {account_id}")
    return acct


@dataclass(frozen=True)
class Rates:
    since: datetime            # the start of the window the metric covers
    window_from: datetime      # now - window_days
    complaints: list[int]      # ids of the complaints counted
    volume: int                # allowed messages since the start of `since`'s day
    rate: float | None         # complaints per million allowed messages (None without volume)
    metric: str                # "rate" or "count"
    level: int                 # 0 none, 1 warn, 2 suspend, 3 terminate
    total_complaints: int      # in the whole window (regardless of state changes)
    total_volume: int
    total_rate: float | None

    def to_dict(self, settings: EnforcementSettings) -> dict:
        return {
            "window_days": settings.window_days,
            "window_from": self.window_from.isoformat(),
            "complaints": self.total_complaints,
            "allowed_messages": self.total_volume,
            "rate_per_million": _round(self.total_rate),
            "since_last_change": {"from": self.since.isoformat(), "complaints": len(self.complaints),
                                  "allowed_messages": self.volume, "rate_per_million": _round(self.rate),
                                  "metric": self.metric,
                                  "level": STEP_NAMES[self.level - 1] if self.level else None},
            "thresholds": thresholds(settings),
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def thresholds(settings: EnforcementSettings) -> dict:
    return {"min_volume": settings.min_volume,
            "rate_per_million": dict(zip(STEP_NAMES, settings.rate)),
            "count": dict(zip(STEP_NAMES, settings.count))}


def _level(value: float, limits) -> int:
    level = 0
    for i, lim in enumerate(limits):
        if lim is not None and value >= lim:
            level = i + 1
    return level


def _step(level: int, highest: int) -> int:
    """The step a breach of ``level`` takes when the highest step in memory is ``highest``."""
    return min(3, max(level, highest + 1)) if level else 0


AFTER = {1: "a warning", 2: "a suspension"}


@dataclass(frozen=True)
class Ladder:
    """Where an account stands on the ladder: the one source of the thresholds ``evaluate``
    applies, the accounts pages show and the automatic notes name."""

    status: str
    previous: int                # the highest step in memory, the current state included (0: none)
    settings: EnforcementSettings

    @property
    def automatic(self) -> bool:
        """Is the account evaluated at all (active or warned)?"""
        return self.status in ("active", "warned")

    def step(self, level: int) -> int:
        return _step(level, self.previous)

    def outcomes(self, metric: str) -> list[tuple[str, float]]:
        """(step, threshold), lowest threshold first: from which value of the metric ("count":
        complaints, "rate": complaints per million allowed messages, counted since the last state
        change) the account's next breach takes each step. A fresh account: warn 3, suspend 6,
        terminate 12; a warned one: suspend 3, terminate 12 (a breach after a warning suspends)."""
        limits = self.settings.rate if metric == "rate" else self.settings.count
        first: dict[int, float] = {}
        for lim in limits:  # sorted (parse_enforcement checks it): the first one per step is its lowest
            if lim is not None:
                first.setdefault(self.step(_level(lim, limits)), lim)
        return [(STEP_NAMES[s - 1], first[s]) for s in sorted(first) if s]

    def threshold(self, metric: str, step: int) -> float | None:
        """The least value of the metric from which the next breach takes ``step``."""
        return dict(self.outcomes(metric)).get(STEP_NAMES[step - 1])

    def to_dict(self) -> dict:
        return {"previous_step": STEP_NAMES[self.previous - 1] if self.previous else None,
                "automatic": self.automatic,
                "count": dict(self.outcomes("count")), "rate_per_million": dict(self.outcomes("rate"))}


def ladder(session: Session, acct: Account, settings: EnforcementSettings, now: datetime | None = None) -> Ladder:
    now = now or datetime.now(UTC)
    memory_from = now - timedelta(days=settings.ladder_memory_days)
    past = session.scalars(select(AccountStateChange.to_status).where(
        AccountStateChange.account_id == acct.id, AccountStateChange.created_at > memory_from,
        AccountStateChange.to_status.in_(("warned", "suspended"))))
    highest = max([STEP_OF[s] for s in past] + [STEP_OF.get(acct.status, 0)])
    return Ladder(acct.status, highest, settings)


def figure(value: float | None, metric: str) -> str:
    """A threshold or a metric value in words: "3 complaints", "0.25 per million"."""
    if value is None:
        return "–"
    if metric == "count":
        n = int(value)
        return f"{n:,} complaint{'' if n == 1 else 's'}"
    return f"{value:.4g} per million"


def _note(r: Rates, lad: Ladder, step: int) -> str:
    """The automatic state change's note: the figure reached and the threshold it reached, as
    ``lad`` (the page's source too) has it."""
    n = len(r.complaints)
    since = ("in the window" if r.since == r.window_from
             else f"since the last change ({r.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    if r.metric == "count":
        value = figure(n, "count")
    else:
        value = f"{figure(r.rate, 'rate')} ({n:,} complaint{'' if n == 1 else 's'}, {r.volume:,} allowed messages)"
    after = f" after {AFTER[lad.previous]}" if lad.previous in AFTER else ""
    return (f"{value} {since}: reached {figure(lad.threshold(r.metric, step), r.metric)}, "
            f"the {STEP_NAMES[step - 1]} threshold{after}")


def _volume(session: Session, account_id: str, since: datetime) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(DailyVolume.allowed), 0)).where(
        DailyVolume.account_id == account_id, DailyVolume.day >= since.date())) or 0)


def rates(session: Session, account_id: str, settings: EnforcementSettings, now: datetime | None = None) -> Rates:
    now = now or datetime.now(UTC)
    window_from = now - timedelta(days=settings.window_days)
    last_change = session.scalar(select(func.max(AccountStateChange.created_at))
                                 .where(AccountStateChange.account_id == account_id))
    since = max(window_from, last_change) if last_change is not None else window_from
    ids = list(session.scalars(select(Complaint.id).where(
        Complaint.account_id == account_id, Complaint.created_at > since).order_by(Complaint.id)))
    volume = _volume(session, account_id, since)
    rate = len(ids) / volume * 1e6 if volume else None
    if volume >= settings.min_volume:
        metric, level = "rate", _level(rate or 0.0, settings.rate)
    else:
        metric, level = "count", _level(len(ids), settings.count)
    total = session.scalar(select(func.count()).select_from(Complaint).where(
        Complaint.account_id == account_id, Complaint.created_at > window_from)) or 0
    total_volume = _volume(session, account_id, window_from)
    total_rate = total / total_volume * 1e6 if total_volume else None
    return Rates(since, window_from, ids, volume, rate, metric, level if ids else 0, int(total), total_volume,
                 total_rate)


def _record(session: Session, acct: Account, to_status: str, rule: str, actor: str, note: str = "",
            rate: float | None = None, evidence: dict | None = None) -> AccountStateChange:
    change = AccountStateChange(account_id=acct.id, from_status=acct.status, to_status=to_status, rule=rule,
                                rate=rate, evidence=evidence or {}, actor=actor, note=note or "")
    session.add(change)
    acct.status = to_status
    acct.updated_at = datetime.now(UTC)
    session.flush()
    events.record(session, f"account.{to_status}", actor, acct.id, subject=f"state_change:{change.id}",
                  rule=rule, from_status=change.from_status, rate=rate, note=note or "",
                  complaints=(evidence or {}).get("complaints", []))
    return change


def evaluate(session: Session, acct: Account, settings: EnforcementSettings, actor: str = SYSTEM,
             now: datetime | None = None) -> AccountStateChange | None:
    """One step on the ladder if the account's complaints call for it (the caller holds the lock)."""
    if acct.status not in ("active", "warned"):
        return None
    now = now or datetime.now(UTC)
    r = rates(session, acct.id, settings, now)
    if r.level == 0:
        return None
    lad = ladder(session, acct, settings, now)
    highest = lad.previous
    step = lad.step(r.level)
    rule = "ACCT_COMPLAINT_RATE" if r.metric == "rate" else "ACCT_COMPLAINT_COUNT"
    evidence = {
        "complaints": r.complaints, "complaint_count": len(r.complaints), "allowed_messages": r.volume,
        "rate_per_million": _round(r.rate), "metric": r.metric, "since": r.since.isoformat(),
        "level": STEP_NAMES[r.level - 1], "ladder_step": STEP_NAMES[step - 1], "previous_step":
        STEP_NAMES[highest - 1] if highest else None, "thresholds": thresholds(settings),
        # the threshold this step was taken at, for this account's place on the ladder (what the
        # accounts page showed as its next step), and the whole of that ladder
        "threshold": lad.threshold(r.metric, step), "ladder": lad.to_dict(),
    }
    return _record(session, acct, STEPS[step], rule, actor, rate=r.rate, evidence=evidence,
                   note=_note(r, lad, step))


def suspend(session: Session, account_id: str, note: str, actor: str) -> AccountStateChange:
    note = (note or "").strip()
    if not note:
        raise Invalid("a suspension needs a note saying why", field="note", errors={"note": ["required"]})
    acct = lock_account(session, account_id)
    if acct.status in ("suspended", "terminated"):
        raise Conflict(f"account {account_id} is already {acct.status}", account_status=acct.status)
    return _record(session, acct, "suspended", "ACCT_MANUAL_SUSPEND", actor, note=note,
                   evidence={"by": actor})


def reinstate(session: Session, account_id: str, note: str, actor: str) -> AccountStateChange:
    note = (note or "").strip()
    if not note:
        raise Invalid("a reinstatement needs a note saying why", field="note", errors={"note": ["required"]})
    acct = lock_account(session, account_id)
    if acct.status == "terminated":
        raise Conflict(f"account {account_id} is terminated; a terminated account is not reinstated",
                       account_status=acct.status)
    if acct.status == "active":
        raise Conflict(f"account {account_id} is already active", account_status=acct.status)
    return _record(session, acct, "active", "ACCT_MANUAL_REINSTATE", actor, note=note,
                   evidence={"by": actor, "from": acct.status})


def history(session: Session, account_id: str, limit: int = 100) -> list[AccountStateChange]:
    return list(session.scalars(select(AccountStateChange).where(AccountStateChange.account_id == account_id)
                                .order_by(AccountStateChange.id.desc()).limit(limit)))


def sweep(db, settings: EnforcementSettings, now: datetime | None = None, actor: str = "system:sweep",
          dry_run: bool = False) -> list[tuple[str, AccountStateChange | None, Rates]]:
    """Evaluate every active or warned account with complaints in the window (one transaction
    per account). Returns (account, change or None, rates) for each account looked at."""
    now = now or datetime.now(UTC)
    window_from = now - timedelta(days=settings.window_days)
    with db.session() as s:
        ids = list(s.scalars(select(Account.id).where(
            Account.status.in_(("active", "warned")),
            Account.id.in_(select(Complaint.account_id).where(Complaint.created_at > window_from)))
            .order_by(Account.id)))
    out = []
    for account_id in ids:
        with db.session(immediate=True) as s:
            acct = lock_account(s, account_id)
            r = rates(s, account_id, settings, now)
            change = None
            if not dry_run:
                change = evaluate(s, acct, settings, actor=actor, now=now)
            out.append((account_id, change, r))
    return out
