"""Helpers for the workbench tests (issue 15): web users signed in, items seeded straight into
the database with the verdict the engine would store (fast: no engine run per item)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.store.models import Account, Signature, Template

from .conftest import PASSWORD, csrf_of


def sign_in(app, db, username: str, role: str = "reviewer"):
    """A test client signed in as a new web user."""
    from app.services import users

    with db.session() as s:
        if not _user_exists(s, username):
            users.create(s, username, PASSWORD, role, actor="test")
    c = app.test_client()
    page = c.get("/login")
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 302, r.text[:300]
    return c


def _user_exists(s, username: str) -> bool:
    from app.store.models import User

    return s.scalar(select(User.id).where(User.username == username)) is not None


def verdict(outcome: str = "review", categories=(), score: float = 5.0, rules=("KW_TEST",)) -> dict:
    cats = list(categories)
    return {"verdict": outcome, "categories": cats, "score": score, "forced_by": None,
            "reasons": [{"rule": r, "category": cats[0] if cats else None, "detector": "keyword",
                         "score": score} for r in rules],
            "ruleset_version": "test", "model_version": None, "subcategories": []}


def seed(db, account: str = "ACME", content: str = "您好，这是一条测试通知。", outcome: str = "review",
         categories=(), score: float = 5.0, type: str = "notification", status: str = "pending",
         age: timedelta | None = None, sig_name: str | None = None) -> int:
    """A template with a stored verdict (and its account and approved signature); its id."""
    with db.session() as s:
        if s.get(Account, account) is None:
            s.add(Account(id=account, name=account))
            s.flush()
        name = sig_name or f"签名{account}"[:12]
        sig = s.scalar(select(Signature).where(Signature.account_id == account, Signature.name == name))
        if sig is None:
            sig = Signature(account_id=account, name=name, status="approved", verdict=verdict("allow", score=0))
            s.add(sig)
            s.flush()
        created = datetime.now(UTC) - (age or timedelta(0))
        tpl = Template(account_id=account, signature_id=sig.id, type=type, content=content, variables={},
                       status=status, verdict=verdict(outcome, categories, score), created_at=created,
                       updated_at=created)
        s.add(tpl)
        s.flush()
        return tpl.id


def row_ids(html: str) -> list[str]:
    """The queue rows in page order: ["template #3", ...]."""
    return re.findall(r'<td class="nowrap"><a href="[^"]*">((?:template|signature) #\d+)</a>', html)


def sel_values(html: str) -> dict[str, str]:
    """{"template #3": "template:3:7:2", ...}: each row's bulk checkbox value."""
    out = {}
    for value in re.findall(r'name="sel" value="([^"]+)"', html):
        kind, first = value.split(":")[:2]
        out[f"{kind} #{first}"] = value
    return out
