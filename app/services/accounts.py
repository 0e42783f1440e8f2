"""Accounts and their per-account keyword lists."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import events
from app.services.errors import Conflict, Invalid, NotFound
from app.store.models import Account, CustomTerm

ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LIST_KINDS = ("block", "review", "allow")


def create(session: Session, account_id: str, name: str = "", actor: str = "cli") -> Account:
    if not ACCOUNT_ID.match(account_id):
        raise Invalid("account id must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
                      field="id")
    if session.get(Account, account_id) is not None:
        raise Conflict(f"account {account_id} already exists")
    acct = Account(id=account_id, name=name or account_id)
    session.add(acct)
    events.record(session, "account.created", actor, account_id, name=acct.name)
    return acct


def get(session: Session, account_id: str) -> Account:
    acct = session.get(Account, account_id)
    if acct is None:
        raise NotFound(f"no account {account_id}")
    return acct


def get_or_create(session: Session, account_id: str, actor: str = "cli") -> Account:
    return session.get(Account, account_id) or create(session, account_id, actor=actor)


def list_terms(session: Session, account_id: str) -> list[CustomTerm]:
    get(session, account_id)
    return list(session.scalars(select(CustomTerm).where(CustomTerm.account_id == account_id)
                                .order_by(CustomTerm.kind, CustomTerm.term)))


def add_terms(session: Session, account_id: str, kind: str, terms: list[str],
              category: str | None, actor: str, categories=None) -> list[CustomTerm]:
    """``categories``: the taxonomy ids a term may be filed under (the rules in force)."""
    get(session, account_id)
    if kind not in LIST_KINDS:
        raise Invalid(f"list kind must be one of {', '.join(LIST_KINDS)}", field="kind")
    if category is not None and categories is not None and category not in categories:
        raise Invalid(f"category {category!r} is not a taxonomy id ({', '.join(sorted(categories))})",
                      field="category", errors={"category": ["not a taxonomy id"]})
    existing = {t.term for t in session.scalars(select(CustomTerm).where(
        CustomTerm.account_id == account_id, CustomTerm.kind == kind))}
    added = []
    for term in dict.fromkeys(t.strip() for t in terms):
        if not term:
            raise Invalid("terms must not be empty", field="terms")
        if term in existing:
            continue
        row = CustomTerm(account_id=account_id, kind=kind, term=term,
                         category=None if kind == "allow" else category)
        session.add(row)
        added.append(row)
    session.flush()
    events.record(session, "account.list_changed", actor, account_id, list_kind=kind,
                  added=[r.term for r in added])
    return added


def remove_term(session: Session, account_id: str, term_id: int, actor: str) -> None:
    row = session.get(CustomTerm, term_id)
    if row is None or row.account_id != account_id:
        raise NotFound(f"no list entry {term_id} for account {account_id}")
    session.delete(row)
    events.record(session, "account.list_changed", actor, account_id, list_kind=row.kind, removed=[row.term])
