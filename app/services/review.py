"""Signature and template review (issue 5): submit -> lint + content engine -> rejected /
pending / approved; reviewers decide the pending ones. Every decision, automatic or a person's,
is a ReviewDecision row (who, when, decision, the verdict with its reasons, the note) plus an
Event. Decided items never change again: approved templates are immutable (a change is a new
template) and deciding an already decided item is a Conflict (409).

Approved items can be withdrawn (issue 15): ``withdraw`` moves an approved signature or template to
``withdrawn`` (a ReviewDecision "withdraw" with the reason, and an event); the pre-send check then
refuses the template, and every template under a withdrawn signature, with TPL_WITHDRAWN.
Deciding honours review claims (app/services/claims.py): another reviewer's live claim is a 409.

Services take a Session; the API (app/api/signatures.py, templates.py), the web pages
(app/web/review.py, app/web/queue.py) and the CLI are thin callers. The content engine is passed in (the
``Moderator`` of app.extensions["smsguard.moderator"]), with the account's own lists.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.engine import template_lint as tl
from app.engine.types import Hit, Verdict
from app.services import accounts, claims, events
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.store.models import (
    INFORMATIONAL_CATEGORIES,
    REVIEW_STATUSES,
    RISK_FLAGGED,
    TEMPLATE_TYPES,
    ReviewDecision,
    Signature,
    Template,
    risk_of,
)

KINDS = ("signature", "template")
DECISIONS = ("approve", "reject")
WITHDRAW = "withdraw"
#: decisions that set an item's status (the "reason" an item answers with is the latest of these)
FINAL_DECISIONS = DECISIONS + (WITHDRAW,)
REASON_MAX = 2000
REGIONS = ("cn", "intl")
DECIDER_ROLES = ("reviewer", "admin")
SYSTEM = "system"
MODELS = {"signature": Signature, "template": Template}


def _invalid(detail: str, field: str) -> Invalid:
    """A 422 that names the field, like a schema error does."""
    return Invalid(detail, field=field, errors={field: [detail]})


# --------------------------------------------------------------------------- checking

def _summary(verdict: Verdict, limit: int = 6) -> str:
    """The rules that weighed (informational marketing hits left out unless nothing else fired)."""
    weighed = [h for h in verdict.reasons if h.score > 0 or h.action in ("review", "reject")]
    rules = list(dict.fromkeys(h.rule for h in weighed if h.category != "marketing")) or \
        list(dict.fromkeys(h.rule for h in weighed))
    more = f" (+{len(rules) - limit})" if len(rules) > limit else ""
    return ", ".join(rules[:limit]) + more


def _stored(verdict: Verdict, rules: tl.TemplateRules) -> dict:
    d = verdict.to_dict()
    d["template_rules_version"] = rules.version
    return d


def check_signature(moderator, name: str, account_lists=None,
                    rules: tl.TemplateRules | None = None) -> Verdict:
    """Lint + content engine on a signature name (spans index the name)."""
    rules = rules or tl.load()
    return moderator.check(name, account_lists=account_lists, extra_hits=tl.lint_signature(name, rules))


def check_template(moderator, content: str, type: str, variables: Mapping[str, Any] | None,
                   region: str = "cn", account_lists=None, rules: tl.TemplateRules | None = None) -> Verdict:
    """Lint + content engine on a template with its variables masked; every span indexes the
    template content as written."""
    rules = rules or tl.load()
    lint = tl.lint_template(content, type, variables, region, rules)
    masked = tl.mask(content, variables, region, rules)
    verdict = masked.remap(moderator.check(masked.text, account_lists=account_lists, extra_hits=lint))
    if type in ("verification", "notification"):
        # the content engine's marketing wording counts against non-promotional templates too
        seen = {h.span for h in lint if h.rule == "TPL_MARKETING_CONTENT"}
        extra = [h for h in tl.marketing_hits_from(verdict.reasons, rules) if h.span not in seen]
        if extra:
            verdict = masked.remap(moderator.check(masked.text, account_lists=account_lists,
                                                   extra_hits=lint + extra))
    return verdict


def _outcome(verdict: Verdict, kind: str, rules: tl.TemplateRules) -> tuple[str, str, str]:
    """(status, decision, reason) of the automatic decision."""
    if verdict.verdict == "reject":
        return "rejected", "reject", f"automatic: rejected by {_summary(verdict)}"
    if verdict.verdict == "review":
        return "pending", "pending", f"automatic: a reviewer decides ({_summary(verdict)})"
    found = "no findings" if not verdict.reasons else (verdict.why or "allowed by the content engine")
    if rules.auto_approve(kind):
        return "approved", "approve", f"automatic: {found}; approved by the review policy"
    return "pending", "pending", f"automatic: {found}; the review policy sends {kind} to a reviewer"


def _record(session: Session, kind: str, item, decision: str, actor: str, reason: str) -> ReviewDecision:
    row = ReviewDecision(subject_type=kind, subject_id=item.id, decision=decision, actor=actor,
                         verdict=item.verdict, reason=reason)
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------- submitting

def submit_signature(session: Session, moderator, account_id: str, name: str, note: str = "",
                     actor: str = SYSTEM, account_lists=None,
                     rules: tl.TemplateRules | None = None) -> Signature:
    rules = rules or tl.load()
    accounts.get(session, account_id)
    name = (name or "").strip()
    if not name:
        raise _invalid("the signature name must not be empty", "name")
    dup = session.scalar(select(Signature).where(Signature.account_id == account_id, Signature.name == name,
                                                 Signature.status.in_(("pending", "approved"))))
    if dup is not None:
        raise Conflict(f"signature {name} is already {dup.status} for {account_id} (id {dup.id})", id=dup.id)
    verdict = check_signature(moderator, name, account_lists, rules)
    status, decision, reason = _outcome(verdict, "signature", rules)
    sig = Signature(account_id=account_id, name=name, note=note or "", status=status,
                    verdict=_stored(verdict, rules))
    session.add(sig)
    session.flush()
    _record(session, "signature", sig, decision, SYSTEM, reason)
    events.record(session, "signature.submitted", actor, account_id, subject=f"signature:{sig.id}",
                  name=name, status=status, verdict=verdict.verdict,
                  rules=[h.rule for h in verdict.reasons])
    return sig


def find_signature(session: Session, account_id: str, ref: int | str) -> Signature:
    """The account's signature by id or by name (the newest pending or approved one)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        sig = session.get(Signature, ref)
    else:
        sig = session.scalar(select(Signature).where(Signature.account_id == account_id, Signature.name == str(ref))
                             .order_by(Signature.status.in_(("rejected", "withdrawn")).asc(), Signature.id.desc())
                             .limit(1))
    if sig is None or sig.account_id != account_id:
        raise NotFound(f"no signature {ref} for account {account_id}")
    return sig


def submit_template(session: Session, moderator, account_id: str, signature: int | str, type: str,
                    content: str, variables: Mapping[str, Any] | None = None, region: str = "cn",
                    actor: str = SYSTEM, account_lists=None,
                    rules: tl.TemplateRules | None = None) -> Template:
    rules = rules or tl.load()
    accounts.get(session, account_id)
    if type not in TEMPLATE_TYPES:
        raise _invalid(f"type must be one of {', '.join(TEMPLATE_TYPES)}", "type")
    if region not in REGIONS:
        raise _invalid(f"region must be one of {', '.join(REGIONS)}", "region")
    if not content or not content.strip():
        raise _invalid("the content must not be empty", "content")
    try:
        declared = tl.canonical_variables(variables or {}, rules)
    except ValueError as exc:
        raise _invalid(str(exc), "variables") from None
    sig = find_signature(session, account_id, signature)
    if sig.status in ("rejected", "withdrawn"):
        raise _invalid(f"signature {sig.name} (id {sig.id}) was {sig.status}; submit a new signature first",
                       "signature")
    verdict = check_template(moderator, content, type, declared, region, account_lists, rules)
    status, decision, reason = _outcome(verdict, type, rules)
    tpl = Template(account_id=account_id, signature_id=sig.id, type=type, content=content,
                   variables=declared, region=region, status=status, verdict=_stored(verdict, rules))
    session.add(tpl)
    session.flush()
    _record(session, "template", tpl, decision, SYSTEM, reason)
    events.record(session, "template.submitted", actor, account_id, subject=f"template:{tpl.id}",
                  type=type, signature_id=sig.id, status=status, verdict=verdict.verdict,
                  rules=[h.rule for h in verdict.reasons])
    return tpl


# --------------------------------------------------------------------------- reading

def _model(kind: str):
    if kind not in MODELS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}")
    return MODELS[kind]


def get(session: Session, kind: str, item_id: int, account_id: str | None = None, lock: bool = False):
    """One signature or template; with ``account_id`` (a tenant) another account's is NotFound."""
    model = _model(kind)
    item = session.get(model, item_id, with_for_update=lock) if lock else session.get(model, item_id)
    if item is None or (account_id is not None and item.account_id != account_id):
        raise NotFound(f"no {kind} {item_id}")
    return item


def list_items(session: Session, kind: str, account_id: str | None = None, status: str | None = None,
               type: str | None = None, limit: int = 100, offset: int = 0) -> list:
    model = _model(kind)
    q = select(model)
    if account_id:
        q = q.where(model.account_id == account_id)
    if status:
        if status not in REVIEW_STATUSES:
            raise _invalid(f"status must be one of {', '.join(REVIEW_STATUSES)}", "status")
        q = q.where(model.status == status)
    if type and kind == "template":
        q = q.where(Template.type == type)
    return list(session.scalars(q.order_by(model.id.desc()).limit(limit).offset(offset)))


def decisions(session: Session, kind: str, item_id: int) -> list[ReviewDecision]:
    return list(session.scalars(select(ReviewDecision).where(
        ReviewDecision.subject_type == kind, ReviewDecision.subject_id == item_id).order_by(ReviewDecision.id)))


# --------------------------------------------------------------------------- deciding

def flagged(item) -> bool:
    """Did the engine flag this item: verdict reject, or review with a category that is not
    informational (marketing)? Approving a flagged item from the pages needs a confirmation."""
    return risk_of(item.verdict) >= RISK_FLAGGED


def _touch(item) -> None:
    """A new updated_at, strictly after the old one: the pre-send template cache compares it
    (app/services/presend.py), so a change must never keep the same stamp."""
    stamp = datetime.now(UTC)
    if item.updated_at is not None and stamp <= item.updated_at:
        stamp = item.updated_at + timedelta(microseconds=1)
    item.updated_at = stamp


def decide(session: Session, kind: str, item_id: int, decision: str, reason: str, actor: str,
           role: str, confirm_flagged: bool = True):
    """A reviewer's or admin's decision on a pending item. Use ``db.session(immediate=True)`` so
    two reviewers deciding at once cannot both win (rows are locked FOR UPDATE on PostgreSQL).

    Another actor's live claim on the item is a Conflict (409); the item's claim is released.
    ``confirm_flagged=False`` (the pages without the confirmation box ticked): approving an item
    the engine flagged is refused (422, field ``confirm_flagged``)."""
    if role not in DECIDER_ROLES:
        raise Forbidden(f"the {role} role may not decide reviews")
    if decision not in DECISIONS:
        raise _invalid(f"decision must be one of {', '.join(DECISIONS)}", "decision")
    reason = (reason or "").strip()[:REASON_MAX]
    if decision == "reject" and not reason:
        raise _invalid("a rejection needs a reason the customer can act on", "reason")
    item = get(session, kind, item_id, lock=True)
    if item.status != "pending":
        raise Conflict(f"{kind} {item_id} is already {item.status}; a decided {kind} never changes"
                       + (" (submit a new template instead)" if kind == "template" else ""),
                       current_status=item.status)
    claims.check_free(session, kind, item_id, actor)
    if decision == "approve" and not confirm_flagged and flagged(item):
        cats = ", ".join(c for c in (item.verdict or {}).get("categories") or ()
                         if c not in INFORMATIONAL_CATEGORIES)
        raise _invalid(f"the engine flagged {kind} {item_id} ({(item.verdict or {}).get('verdict')}: {cats}); "
                       f"confirm that you checked the findings to approve it", "confirm_flagged")
    item.status = "approved" if decision == "approve" else "rejected"
    _touch(item)
    _record(session, kind, item, decision, actor, reason)
    events.record(session, f"{kind}.{item.status}", actor, item.account_id, subject=f"{kind}:{item.id}",
                  decision=decision, reason=reason)
    claims.release(session, kind, item_id)
    return item


def withdraw(session: Session, kind: str, item_id: int, reason: str, actor: str, role: str):
    """Take back an approved signature or template: status ``withdrawn`` for good (a change is a
    new submission). The pre-send check refuses it (and every template under a withdrawn
    signature) with TPL_WITHDRAWN from its next check on. Use ``db.session(immediate=True)``."""
    if role not in DECIDER_ROLES:
        raise Forbidden(f"the {role} role may not withdraw approvals")
    reason = (reason or "").strip()
    if not reason:
        raise _invalid("a withdrawal needs a reason the customer can act on", "reason")
    if len(reason) > REASON_MAX:
        raise _invalid(f"the reason is longer than {REASON_MAX} characters", "reason")
    item = get(session, kind, item_id, lock=True)
    if item.status != "approved":
        raise Conflict(f"{kind} {item_id} is {item.status}; only an approved {kind} can be withdrawn",
                       current_status=item.status)
    item.status = "withdrawn"
    _touch(item)
    _record(session, kind, item, WITHDRAW, actor, reason)
    extra: dict[str, Any] = {}
    if kind == "signature":
        # the templates it carries stop sending too: say how many in the event
        extra["approved_templates"] = session.scalar(select(func.count()).select_from(Template).where(
            Template.signature_id == item.id, Template.status == "approved")) or 0
    events.record(session, f"{kind}.withdrawn", actor, item.account_id, subject=f"{kind}:{item.id}",
                  decision=WITHDRAW, reason=reason, **extra)
    return item


# --------------------------------------------------------------------------- the queue
# (the queue itself, sorted, filtered, grouped and paged in SQL: app/services/workbench.py)

TYPE_FILTERS = ("signature",) + TEMPLATE_TYPES


def counts(session: Session) -> dict[str, int]:
    """Pending items per type ("signature", "verification", ...), and "all"."""
    out = {t: 0 for t in TYPE_FILTERS}
    out["signature"] = session.scalar(select(func.count()).select_from(Signature)
                                      .where(Signature.status == "pending")) or 0
    for t, n in session.execute(select(Template.type, func.count()).where(Template.status == "pending")
                                .group_by(Template.type)):
        out[t] = n
    out["all"] = sum(out[t] for t in TYPE_FILTERS)
    return out


def highlight(text: str, reasons: Iterable[Mapping[str, Any] | Hit]) -> list[tuple[str, list[dict]]]:
    """Split ``text`` into (piece, reasons covering it) so a page can <mark> each matched span
    (overlapping spans give pieces covered by several reasons)."""
    spans = []
    for r in reasons:
        d = r.to_dict() if isinstance(r, Hit) else dict(r)
        span = d.get("span")
        if not span:
            continue
        a, b = max(0, int(span[0])), min(len(text), int(span[1]))
        if a < b:
            spans.append((a, b, d))
    if not spans:
        return [(text, [])] if text else []
    cuts = sorted({0, len(text), *[a for a, _, _ in spans], *[b for _, b, _ in spans]})
    out: list[tuple[str, list[dict]]] = []
    for a, b in zip(cuts, cuts[1:]):
        covering = [d for sa, sb, d in spans if sa <= a and b <= sb]
        if out and not covering and not out[-1][1]:
            out[-1] = (out[-1][0] + text[a:b], [])
        else:
            out.append((text[a:b], covering))
    return out
