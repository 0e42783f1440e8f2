"""Complaints, inbound replies and opt-outs (issue 6).

- ``file_complaint``: stores a complaint (idempotent on (source, external_id)), opts the phone
  out of the account's promotional messages, then evaluates enforcement (app/services/
  enforcement.py) in the same transaction, with the account's row locked.
- ``handle_reply``: R / TD / T / N / 退订 / 取消订阅 / STOP / UNSUBSCRIBE opt out; START / UNSTOP opt
  back in, except out of an opt-out a complaint made (an admin lifts those).
- ``opt_out`` / ``opt_in`` / ``list_opt_outs`` / ``remove``: the opt-out list itself.

Phones are stored in E.164 (presend.normalize_phone), the form the pre-send check looks up.
Run these in ``db.session(immediate=True)`` (they read then write).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.services import enforcement, events
from app.services.errors import Conflict, Invalid, NotFound
from app.services.presend import PresendSettings, EnforcementSettings, normalize_phone
from app.store.models import AccountStateChange, Complaint, OptOut

SOURCES = ("carrier", "regulator", "user", "internal")
OPT_OUT_WORDS = frozenset({"R", "TD", "T", "N", "退订", "取消订阅", "STOP", "UNSUBSCRIBE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)


def reply_action(text: str) -> str | None:
    """"opt_out", "opt_in" or None for a reply's text: the whole reply must be the keyword
    (case, width, spaces and punctuation ignored: " td ", "Ｔ", "STOP." count; "Tomorrow" does not)."""
    word = _STRIP.sub("", unicodedata.normalize("NFKC", text or "")).upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    return None


def _insert(session: Session):
    return {"sqlite": sqlite_insert, "postgresql": pg_insert}[session.get_bind().dialect.name]


def opt_out(session: Session, account_id: str, phone: str, source: str, detail: str, actor: str,
            presend: PresendSettings | None = None) -> tuple[OptOut, bool]:
    """(the opt-out, created?). Already opted out: the existing row, nothing changes."""
    phone = normalize_phone(phone, presend)
    stmt = _insert(session)(OptOut).values(account_id=account_id, phone=phone, source=source,
                                           detail=detail or "").on_conflict_do_nothing()
    created = session.execute(stmt.returning(OptOut.id)).first() is not None
    row = session.scalar(select(OptOut).where(OptOut.account_id == account_id, OptOut.phone == phone))
    if created:
        events.record(session, "optout.added", actor, account_id, subject=phone, source=source, detail=detail or "")
    return row, created


def opt_in(session: Session, account_id: str, phone: str, actor: str, source: str,
           presend: PresendSettings | None = None) -> bool:
    """Remove the recipient's opt-out; False when there was none, or when a complaint made it
    (those are lifted only by an admin: ``remove``)."""
    phone = normalize_phone(phone, presend)
    row = session.scalar(select(OptOut).where(OptOut.account_id == account_id, OptOut.phone == phone))
    if row is None:
        return False
    if row.source == "complaint":
        events.record(session, "optout.kept", actor, account_id, subject=phone, source=source,
                      opted_out_by="complaint", note="an opt-out made by a complaint is lifted only by an admin")
        return False
    session.delete(row)
    events.record(session, "optout.removed", actor, account_id, subject=phone, source=source,
                  opted_out_by=row.source, since=row.created_at.isoformat())
    return True


def list_opt_outs(session: Session, account_id: str | None = None, phone: str | None = None,
                  limit: int = 100, offset: int = 0, presend: PresendSettings | None = None) -> list[OptOut]:
    q = select(OptOut)
    if account_id:
        q = q.where(OptOut.account_id == account_id)
    if phone:
        q = q.where(OptOut.phone == normalize_phone(phone, presend))
    return list(session.scalars(q.order_by(OptOut.id.desc()).limit(limit).offset(offset)))


def remove(session: Session, opt_out_id: int, actor: str, note: str = "") -> OptOut:
    row = session.get(OptOut, opt_out_id)
    if row is None:
        raise NotFound(f"no opt-out {opt_out_id}")
    session.delete(row)
    events.record(session, "optout.removed", actor, row.account_id, subject=row.phone, source="admin",
                  opted_out_by=row.source, note=note or "")
    return row


@dataclass
class ReplyResult:
    action: str | None      # opt_out | opt_in | None
    changed: bool
    phone: str
    account_id: str


def handle_reply(session: Session, account_id: str, phone: str, text: str, actor: str,
                 presend: PresendSettings | None = None) -> ReplyResult:
    enforcement.lock_account(session, account_id)  # 404 for an unknown account
    e164 = normalize_phone(phone, presend)
    action = reply_action(text)
    changed = False
    if action == "opt_out":
        _, changed = opt_out(session, account_id, e164, "reply", (text or "").strip()[:200], actor, presend)
    elif action == "opt_in":
        changed = opt_in(session, account_id, e164, actor, "reply", presend)
    events.record(session, "reply.received", actor, account_id, subject=e164, action=action,
                  changed=changed, text=(text or "")[:200])
    return ReplyResult(action, changed, e164, account_id)


@dataclass
class ComplaintResult:
    complaint: Complaint
    created: bool
    change: AccountStateChange | None
    account_status: str


def file_complaint(session: Session, account_id: str, phone: str, reason: str, source: str, actor: str,
                   enforcement_settings: EnforcementSettings, message_id: str | None = None,
                   external_id: str | None = None, presend: PresendSettings | None = None) -> ComplaintResult:
    """Store a complaint, opt the phone out, evaluate enforcement. Idempotent on (account,
    source, external_id): the same complaint sent again returns the stored one and changes
    nothing; another account's ids are never looked at (nor shown)."""
    if source not in SOURCES:
        raise Invalid(f"source must be one of {', '.join(SOURCES)}", field="source",
                      errors={"source": [f"one of {', '.join(SOURCES)}"]})
    e164 = normalize_phone(phone, presend)
    acct = enforcement.lock_account(session, account_id)  # serialises this account's complaints
    if external_id:
        existing = session.scalar(select(Complaint).where(Complaint.account_id == account_id,
                                                          Complaint.source == source,
                                                          Complaint.external_id == external_id))
        if existing is not None:
            if existing.phone != e164:
                raise Conflict(f"complaint {source}:{external_id} was already filed for another phone",
                               id=existing.id)
            return ComplaintResult(existing, False, None, acct.status)
    c = Complaint(account_id=account_id, phone=e164, message_id=message_id, reason=reason or "",
                  source=source, external_id=external_id)
    session.add(c)
    session.flush()
    events.record(session, "complaint.received", actor, account_id, subject=f"complaint:{c.id}",
                  phone=e164, source=source, external_id=external_id, message_id=message_id)
    opt_out(session, account_id, e164, "complaint", f"complaint {c.id}", actor, presend)
    change = enforcement.evaluate(session, acct, enforcement_settings)
    return ComplaintResult(c, True, change, acct.status)
