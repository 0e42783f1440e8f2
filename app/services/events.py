"""The append-only event log."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.store.models import Event


def record(session: Session, kind: str, actor: str, account_id: str | None = None,
           subject: str | None = None, **data: Any) -> Event:
    ev = Event(kind=kind, actor=actor, account_id=account_id, subject=subject, data=data)
    session.add(ev)
    return ev
