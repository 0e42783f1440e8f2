"""The reviewer workbench's queue (issue 15): pending signatures and templates sorted, filtered,
grouped and paged in SQL, never loaded whole.

- One row source, :func:`items`: ``UNION ALL`` of pending signatures and templates with the
  queue columns the models keep beside each verdict (``engine_verdict``, ``engine_score``,
  ``engine_categories``, ``risk``, ``dup_key``: app/store/models.py ``review_index``), pending
  feedback on verdicts (issue 16: the same columns computed, see :func:`_feedback_columns`), and
  the item's live claim (outer join on ``review_claims``, by the claims' clock).
- Orders (:data:`SORTS`): ``risk`` (default) = risk descending (the engine says reject, then
  flagged with a category, then review, then allow), score descending, oldest first; ``age`` =
  oldest first. Ties break on kind and id, so every order is total (paging and j/k agree).
- Groups: identical submissions (same ``dup_key``: kind, type, text, variables, region) are one
  row, represented by their first item in the queue's order, with the count and the accounts
  (:func:`page`). A window function picks the representative, so a page costs one query plus
  one for the accounts of its groups.
- Navigation (:func:`neighbours`): the previous / next pending item around any item, in the
  queue's order under its filters, skipping items another reviewer holds (keyset conditions,
  no offsets).
- Bulk (:func:`group_members`): the items a selected row stood for when the page was drawn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Float, Integer, String, and_, case, cast, func, literal, literal_column, null, or_, select, true, union_all
from sqlalchemy.orm import Session

from app.services import claims
from app.store.models import (
    RISK_FLAGGED,
    RISK_REVIEW,
    TEMPLATE_TYPES,
    ReviewClaim,
    ReviewDecision,
    Signature,
    Template,
)
from app.store.records import Feedback

SORTS = ("risk", "age")
KINDS = ("signature", "template", "feedback")
#: the type filter values: a signature, a template type, or feedback on a verdict
TYPE_FILTERS = ("signature",) + TEMPLATE_TYPES + ("feedback",)
VERDICTS = ("reject", "review", "allow")
PAGE_SIZE = 50
SEARCH_MAX = 200
MAX_PAGE = 100_000
GROUP_ACCOUNTS_SHOWN = 5
BULK_MAX = 1000


@dataclass(frozen=True)
class Filters:
    """What the queue shows. Values are validated by the caller (the page)."""

    type: str | None = None          # "signature" or a template type
    category: str | None = None      # a taxonomy id found in the verdict
    account_id: str | None = None
    verdict: str | None = None       # the engine's: reject | review | allow
    min_age: timedelta | None = None
    search: str | None = None        # substring of the text (or a template's signature name)


@dataclass(frozen=True)
class Row:
    kind: str
    id: int
    account_id: str
    label: str            # "signature" or the template type
    text: str
    signature: str | None
    verdict: str | None
    score: float
    categories: tuple[str, ...]
    risk: int
    dup_key: str
    created_at: datetime
    claimed_by: str | None = None      # actor of the live claim
    claimed_until: datetime | None = None
    count: int = 1                     # items in its group (under the filters)
    max_id: int = 0                    # the newest item of the group when drawn
    accounts: tuple[str, ...] = ()     # the group's accounts (the first few)
    more_accounts: int = 0             # accounts beyond those
    rules: tuple[str, ...] = ()        # the rules that fired (page rows only)

    @property
    def flagged(self) -> bool:
        return self.risk >= RISK_FLAGGED

    @property
    def expected(self) -> str | None:
        """A feedback row: what its sender expected (its risk encodes it, see feedback_risk)."""
        if self.kind != "feedback":
            return None
        return "reject" if self.risk >= RISK_FLAGGED else "allow"

    @property
    def score_text(self) -> str:
        """6, 6.5, 0.6: one decimal at most, no trailing zeros."""
        return f"{round(self.score, 1):g}"

    @property
    def claimed_who(self) -> str:
        return claims.who(self.claimed_by)

    @property
    def claimed_hhmm(self) -> str:
        return self.claimed_until.astimezone(UTC).strftime("%H:%M UTC") if self.claimed_until else ""

    def claimed_by_other(self, actor: str | None) -> bool:
        return bool(self.claimed_by) and self.claimed_by != actor


@dataclass
class Page:
    rows: list[Row]
    number: int           # 1-based, clamped to the pages there are
    pages: int
    groups: int           # rows over all pages
    items: int            # pending items over all pages
    size: int = PAGE_SIZE


def _cat_like(col, category: str):
    """engine_categories is ",a,b,": the category between commas (LIKE wildcards escaped)."""
    return col.contains(f",{category},", autoescape=True)


def feedback_risk(expected: str | None) -> int:
    """A feedback item's place in the risk order: "this should have been stopped" (expected
    reject: prohibited content may be going out) ranks with flagged items, "this should have
    gone" (a customer's message held back) with items the engine sends to review."""
    return RISK_FLAGGED if expected == "reject" else RISK_REVIEW


def _feedback_columns() -> list:
    """Feedback as queue rows: the engine's verdict then, the category the sender named, a
    risk from what they expected (:func:`feedback_risk`), score 0 (there is none to rank by),
    and a dup_key of its own (feedback items are decided one by one, never grouped)."""
    risk = case((Feedback.expected == "reject", RISK_FLAGGED), else_=RISK_REVIEW)
    cats = case((Feedback.category.is_(None), literal("")), else_=literal(",") + Feedback.category + literal(","))
    return [literal_column("'feedback'", String).label("kind"), Feedback.id.label("id"),
            func.coalesce(Feedback.account_id, "").label("account_id"),
            literal_column("'feedback'", String).label("label"),
            func.coalesce(Feedback.text, "").label("text"), cast(null(), String).label("signature"),
            Feedback.engine_verdict.label("verdict"), cast(literal(0.0), Float).label("score"),
            cats.label("categories"), cast(risk, Integer).label("risk"),
            (literal("feedback:") + cast(Feedback.id, String)).label("dup_key"),
            Feedback.created_at.label("created_at"),
            ReviewClaim.actor.label("claimed_by"), ReviewClaim.expires_at.label("claimed_until")]


def _feedback_items(f: Filters, at: datetime):
    q = (select(*_feedback_columns()).select_from(Feedback)
         .outerjoin(ReviewClaim, claims.live_condition("feedback", Feedback.id, at))
         .where(Feedback.status == "pending"))
    if f.account_id:
        q = q.where(Feedback.account_id == f.account_id)
    if f.verdict == "allow":
        q = q.where(or_(Feedback.engine_verdict == "allow", Feedback.engine_verdict.is_(None)))
    elif f.verdict:
        q = q.where(Feedback.engine_verdict == f.verdict)
    if f.category:
        q = q.where(Feedback.category == f.category)
    if f.min_age is not None:
        q = q.where(Feedback.created_at <= at - f.min_age)
    if f.search:
        q = q.where(Feedback.text.icontains(f.search, autoescape=True))
    return q


def items(f: Filters, at: datetime, kinds: tuple[str, ...] | None = None):
    """The queue's rows (a selectable): pending items matching the filters, with their live claim."""
    wanted = kinds or (("signature",) if f.type == "signature" else ("template",) if f.type in TEMPLATE_TYPES
                       else ("feedback",) if f.type == "feedback" else KINDS)
    parts = []
    for kind in wanted:
        if kind == "feedback":
            parts.append(_feedback_items(f, at))
            continue
        model = Signature if kind == "signature" else Template
        if kind == "signature":
            cols = [literal_column("'signature'", String).label("kind"), model.id.label("id"),
                    model.account_id.label("account_id"), literal_column("'signature'", String).label("label"),
                    model.name.label("text"), cast(null(), String).label("signature")]
        else:
            cols = [literal_column("'template'", String).label("kind"), model.id.label("id"),
                    model.account_id.label("account_id"), model.type.label("label"),
                    model.content.label("text"), Signature.name.label("signature")]
        cols += [model.engine_verdict.label("verdict"), model.engine_score.label("score"),
                 model.engine_categories.label("categories"), model.risk.label("risk"),
                 model.dup_key.label("dup_key"), model.created_at.label("created_at"),
                 ReviewClaim.actor.label("claimed_by"), ReviewClaim.expires_at.label("claimed_until")]
        q = select(*cols).select_from(model)
        if kind == "template":
            q = q.outerjoin(Signature, Signature.id == Template.signature_id)
        q = q.outerjoin(ReviewClaim, claims.live_condition(kind, model.id, at))
        q = q.where(model.status == "pending")
        if kind == "template" and f.type in TEMPLATE_TYPES:
            q = q.where(Template.type == f.type)
        if f.account_id:
            q = q.where(model.account_id == f.account_id)
        if f.verdict == "allow":  # an item stored without a verdict counts as allowed (as in stats)
            q = q.where(or_(model.engine_verdict == "allow", model.engine_verdict.is_(None)))
        elif f.verdict:
            q = q.where(model.engine_verdict == f.verdict)
        if f.category:
            q = q.where(_cat_like(model.engine_categories, f.category))
        if f.min_age is not None:
            q = q.where(model.created_at <= at - f.min_age)
        if f.search:
            text_col = model.name if kind == "signature" else model.content
            cond = text_col.icontains(f.search, autoescape=True)
            if kind == "template":
                cond = or_(cond, Signature.name.icontains(f.search, autoescape=True))
            q = q.where(cond)
        parts.append(q)
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("queue")


def _order(u, sort: str) -> list[tuple[Any, bool]]:
    """(column, descending) pairs: a total order."""
    if sort == "age":
        return [(u.c.created_at, False), (u.c.kind, False), (u.c.id, False)]
    return [(u.c.risk, True), (u.c.score, True), (u.c.created_at, False), (u.c.kind, False), (u.c.id, False)]


def _order_by(pairs) -> list:
    return [c.desc() if d else c.asc() for c, d in pairs]


def _row(m, **extra) -> Row:
    cats = tuple(c for c in (m["categories"] or "").split(",") if c)
    return Row(kind=m["kind"], id=m["id"], account_id=m["account_id"], label=m["label"], text=m["text"] or "",
               signature=m["signature"], verdict=m["verdict"], score=float(m["score"] or 0.0), categories=cats,
               risk=int(m["risk"] or 0), dup_key=m["dup_key"] or "", created_at=m["created_at"],
               claimed_by=m["claimed_by"], claimed_until=m["claimed_until"], **extra)


def page(session: Session, f: Filters, sort: str = "risk", number: int = 1, size: int = PAGE_SIZE,
         at: datetime | None = None) -> Page:
    """One page of the queue: groups of identical submissions, each shown by its first item."""
    at = at or claims.now(session)
    u = items(f, at)
    order = _order(u, sort)
    part = (u.c.kind, u.c.dup_key)
    ranked = select(*u.c,
                    func.row_number().over(partition_by=part, order_by=_order_by(order)).label("rn"),
                    func.count().over(partition_by=part).label("n"),
                    func.max(u.c.id).over(partition_by=part).label("max_id")).subquery("ranked")
    n_items = session.scalar(select(func.count()).select_from(u)) or 0
    n_groups = session.scalar(select(func.count()).select_from(ranked).where(ranked.c.rn == 1)) or 0
    pages = max(1, math.ceil(n_groups / size))
    number = min(max(1, number), pages)
    r_order = [(ranked.c[c.name], d) for c, d in order]
    rows = session.execute(select(ranked).where(ranked.c.rn == 1).order_by(*_order_by(r_order))
                           .limit(size).offset((number - 1) * size)).mappings().all()
    accounts = _group_accounts(session, u, [(m["kind"], m["dup_key"]) for m in rows if m["n"] > 1])
    rules = _rules(session, [(m["kind"], m["id"]) for m in rows])
    out = []
    for m in rows:
        shown, total = accounts.get((m["kind"], m["dup_key"]), ((m["account_id"],), 1))
        out.append(_row(m, count=int(m["n"]), max_id=int(m["max_id"]), accounts=shown,
                        more_accounts=max(0, total - len(shown)), rules=rules.get((m["kind"], m["id"]), ())))
    return Page(out, number, pages, n_groups, n_items, size)


def _rules(session: Session, keys: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[str, ...]]:
    """The fired rules of the page's rows, read from their stored verdicts (one query per kind)."""
    out: dict[tuple[str, int], tuple[str, ...]] = {}
    for kind, model in (("signature", Signature), ("template", Template), ("feedback", Feedback)):
        ids = [i for k, i in keys if k == kind]
        if not ids:
            continue
        for item_id, verdict in session.execute(select(model.id, model.verdict).where(model.id.in_(ids))):
            reasons = (verdict or {}).get("reasons") or ()
            out[(kind, item_id)] = tuple(dict.fromkeys(r.get("rule") for r in reasons if r.get("rule")))
    return out


def _group_accounts(session: Session, u,
                    keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[tuple[str, ...], int]]:
    """For each group on the page: its first accounts (by name) and how many accounts in all."""
    if not keys:
        return {}
    dups = sorted({k for _, k in keys})
    per = select(u.c.kind, u.c.dup_key, u.c.account_id).where(u.c.dup_key.in_(dups)).distinct().subquery("per")
    ranked = select(per.c.kind, per.c.dup_key, per.c.account_id,
                    func.row_number().over(partition_by=(per.c.kind, per.c.dup_key),
                                           order_by=per.c.account_id).label("rn"),
                    func.count().over(partition_by=(per.c.kind, per.c.dup_key)).label("n")).subquery("acc")
    out: dict[tuple[str, str], tuple[list[str], int]] = {}
    wanted = set(keys)
    for kind, key, account, _, n in session.execute(
            select(ranked).where(ranked.c.rn <= GROUP_ACCOUNTS_SHOWN).order_by(ranked.c.kind, ranked.c.dup_key,
                                                                               ranked.c.rn)):
        if (kind, key) in wanted:
            out.setdefault((kind, key), ([], n))[0].append(account)
    return {k: (tuple(v[0]), v[1]) for k, v in out.items()}


# --------------------------------------------------------------------------- filter menus

def stats(session: Session, limit_accounts: int = 200) -> dict[str, Any]:
    """Counts for the filter menus over the whole pending queue (GROUP BY on small value sets;
    no item is loaded): categories, engine verdicts, and the accounts with pending items."""
    cats: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    accounts: set[str] = set()
    for model in (Signature, Template):
        pending = model.status == "pending"
        for combo, n in session.execute(select(model.engine_categories, func.count()).where(pending)
                                        .group_by(model.engine_categories)):
            for c in (combo or "").split(","):
                if c:
                    cats[c] = cats.get(c, 0) + n
        for v, n in session.execute(select(model.engine_verdict, func.count()).where(pending)
                                    .group_by(model.engine_verdict)):
            verdicts[v or "allow"] = verdicts.get(v or "allow", 0) + n
        accounts.update(session.scalars(select(model.account_id).where(pending).distinct()
                                        .order_by(model.account_id).limit(limit_accounts)))
    pending = Feedback.status == "pending"
    for c, n in session.execute(select(Feedback.category, func.count()).where(pending, Feedback.category.is_not(None))
                                .group_by(Feedback.category)):
        cats[c] = cats.get(c, 0) + n
    for v, n in session.execute(select(Feedback.engine_verdict, func.count()).where(pending)
                                .group_by(Feedback.engine_verdict)):
        verdicts[v or "allow"] = verdicts.get(v or "allow", 0) + n
    accounts.update(a for a in session.scalars(select(Feedback.account_id).where(pending).distinct()
                                               .order_by(Feedback.account_id).limit(limit_accounts)) if a)
    return {"categories": dict(sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))),
            "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
            "accounts": sorted(accounts)[:limit_accounts]}


# --------------------------------------------------------------------------- navigation

def _key_of(session: Session, kind: str, item_id: int) -> dict | None:
    if kind == "feedback":
        r = session.execute(select(Feedback.expected, Feedback.created_at).where(Feedback.id == item_id)).first()
        if r is None:
            return None
        return {"risk": feedback_risk(r[0]), "score": 0.0, "created_at": r[1], "kind": kind, "id": item_id}
    model = Signature if kind == "signature" else Template
    r = session.execute(select(model.risk, model.engine_score, model.created_at).where(model.id == item_id)).first()
    if r is None:
        return None
    return {"risk": r[0], "score": r[1], "created_at": r[2], "kind": kind, "id": item_id}


def _after(pairs, key: dict, forward: bool):
    """Keyset condition: rows strictly after (``forward``) or before ``key`` in this order."""
    ors = []
    for i, (col, desc) in enumerate(pairs):
        value = key[col.name]
        later = (col < value) if desc == forward else (col > value)
        ands = [pairs[j][0] == key[pairs[j][0].name] for j in range(i)]
        ors.append(and_(*ands, later))
    return or_(*ors)


def neighbours(session: Session, f: Filters, sort: str, kind: str, item_id: int, actor: str | None,
               at: datetime | None = None) -> tuple[Row | None, Row | None, int | None, int]:
    """(previous, next, position, total) around an item in the queue's order under ``f``:
    previous / next skip items another actor holds (and the item itself); ``position`` is the
    item's place among the pending items (None when it is not one of them)."""
    at = at or claims.now(session)
    key = _key_of(session, kind, item_id)
    u = items(f, at)
    order = _order(u, sort)
    total = session.scalar(select(func.count()).select_from(u)) or 0
    if key is None:
        return None, None, None, total
    free = or_(u.c.claimed_by.is_(None), u.c.claimed_by == actor) if actor else u.c.claimed_by.is_(None)
    nxt = session.execute(select(u).where(_after(order, key, True), free)
                          .order_by(*_order_by(order)).limit(1)).mappings().first()
    prev = session.execute(select(u).where(_after(order, key, False), free)
                           .order_by(*_order_by([(c, not d) for c, d in order])).limit(1)).mappings().first()
    here = session.scalar(select(func.count()).select_from(u).where(u.c.kind == kind, u.c.id == item_id))
    position = None
    if here:
        position = (session.scalar(select(func.count()).select_from(u).where(_after(order, key, False))) or 0) + 1
    return (_row(prev) if prev else None), (_row(nxt) if nxt else None), position, total


def first_free(session: Session, f: Filters, sort: str, actor: str | None, at: datetime | None = None) -> Row | None:
    """The first pending item under ``f`` that nobody else holds."""
    at = at or claims.now(session)
    u = items(f, at)
    free = or_(u.c.claimed_by.is_(None), u.c.claimed_by == actor) if actor else u.c.claimed_by.is_(None)
    m = session.execute(select(u).where(free).order_by(*_order_by(_order(u, sort))).limit(1)).mappings().first()
    return _row(m) if m else None


def same_text(session: Session, kind: str, item_id: int, limit: int = 20) -> tuple[list[Row], int]:
    """Other pending items identical to this one (its group), and how many there are."""
    model = Signature if kind == "signature" else Template
    key = session.scalar(select(model.dup_key).where(model.id == item_id))
    if not key:
        return [], 0
    at = claims.now(session)
    u = items(Filters(), at, kinds=(kind,))
    cond = and_(u.c.dup_key == key, u.c.id != item_id)
    n = session.scalar(select(func.count()).select_from(u).where(cond)) or 0
    rows = session.execute(select(u).where(cond).order_by(u.c.created_at, u.c.id).limit(limit)).mappings().all()
    return [_row(m) for m in rows], n


# --------------------------------------------------------------------------- bulk

def group_members(session: Session, f: Filters, kind: str, first_id: int, max_id: int,
                  at: datetime | None = None) -> list[Row]:
    """The pending items a queue row stood for: the group of ``first_id`` under the same filters,
    no newer than ``max_id`` (items submitted after the page was drawn are not decided unseen)."""
    if kind not in ("signature", "template"):
        return []
    model = Signature if kind == "signature" else Template
    key = session.scalar(select(model.dup_key).where(model.id == first_id))
    if key is None:
        return []
    at = at or claims.now(session)
    u = items(f, at, kinds=(kind,))
    rows = session.execute(select(u).where(u.c.dup_key == key, u.c.id <= max_id)
                           .order_by(u.c.id).limit(BULK_MAX + 1)).mappings().all()
    return [_row(m) for m in rows]


# --------------------------------------------------------------------------- account context

def account_items(session: Session, account_id: str, exclude: tuple[str, int] | None = None,
                  limit: int = 10) -> tuple[list[Row], int]:
    """The account's pending items, riskiest first (without ``exclude``), and how many."""
    at = claims.now(session)
    u = items(Filters(account_id=account_id), at)
    cond = true()
    if exclude is not None:
        cond = ~and_(u.c.kind == exclude[0], u.c.id == exclude[1])
    n = session.scalar(select(func.count()).select_from(u).where(cond)) or 0
    rows = session.execute(select(u).where(cond).order_by(*_order_by(_order(u, "risk"))).limit(limit)).mappings().all()
    return [_row(m) for m in rows], n


def account_decisions(session: Session, account_id: str, limit: int = 10) -> list[dict]:
    """The latest decisions of people (not the automatic step) on the account's items."""
    out = []
    for kind, model in (("signature", Signature), ("template", Template)):
        q = (select(ReviewDecision, model.status)
             .join(model, and_(ReviewDecision.subject_type == kind, ReviewDecision.subject_id == model.id))
             .where(model.account_id == account_id, ReviewDecision.actor != "system")
             .order_by(ReviewDecision.id.desc()).limit(limit))
        for d, status in session.execute(q):
            out.append({"kind": kind, "id": d.subject_id, "decision": d.decision, "actor": d.actor,
                        "reason": d.reason, "created_at": d.created_at, "status": status, "row_id": d.id})
    out.sort(key=lambda d: d["row_id"], reverse=True)
    return out[:limit]


def risk_label(risk: int) -> str:
    return {3: "reject", 2: "flagged", 1: "review", 0: "allow"}.get(risk, "allow")

