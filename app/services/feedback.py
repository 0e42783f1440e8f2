"""Feedback on verdicts (issue 16, item 2): "this one was wrong", from tenants (about their own
checks) and reviewers, decided by a reviewer.

``submit`` stores a feedback item (status ``pending``) about a recorded check (``check_id``), a
message id (the account's latest check with it) or a text (scored by the engine now). It keeps
its own copy of the text and the verdict, so it outlives the check's retention.

``decide`` (``decide_feedback``) accepts or dismisses it. Accepting may:

- ``account_allow_term``: add an allow phrase to the account's own list (expected ``allow``),
- ``account_block_term``: add a block term to the account's own list (expected ``reject``),

both only when a tenant asked about its own account (a reviewer's feedback changes no
customer's lists), and/or

- ``training_example``: store a labelled example in ``training_examples`` (the training store
  ``smsguard export-training`` reads; docs/checks.md): labels ``[category]`` for expected
  ``reject`` (a prohibited category is needed), ``[]`` for expected ``allow`` (``["marketing"]``
  when the category given is marketing). Only from a full text: a check recorded masked or
  without its text cannot teach the model.

Run both in ``db.session(immediate=True)``: they read then write.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.engine.classifier import INFORMATIONAL, LABELS, PROHIBITED
from app.services import accounts, checks, claims, events
from app.services.errors import Conflict, Invalid, NotFound
from app.store.records import CheckRecord, Feedback, TrainingExample

EXPECTED = ("allow", "reject")
DECISIONS = ("accept", "dismiss")
ACTIONS = ("account_allow_term", "account_block_term", "training_example")
NOTE_MAX = 2000
TERM_MAX = 200
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def lang_of(text: str) -> str:
    """"zh" when the text holds a Chinese character, else "en" (the ../shared/data ``lang``)."""
    return "zh" if _CJK.search(text or "") else "en"


def _check_category(category: str | None, field: str = "category") -> str | None:
    if category is None:
        return None
    if category not in LABELS:
        raise Invalid(f"category {category!r} is not a taxonomy id ({', '.join(LABELS)})", field=field,
                      errors={field: ["not a taxonomy id"]})
    return category


def submit(session: Session, *, actor: str, role: str, account: str | None, expected: str,
           check_id: int | None = None, message_id: str | None = None, text: str | None = None,
           category: str | None = None, note: str = "", moderator=None, lists=None,
           max_chars: int = 1000) -> tuple[Feedback, bool]:
    """(feedback, created). ``account``: the tenant's own account (tenants), or the account a
    reviewer names (optional; needed with ``message_id``). A tenant only ever reaches its own
    checks: another account's check is a 404, as if it did not exist. The same pending feedback
    (same check, same submitter, same expected verdict) sent again is the stored one (created
    False)."""
    given = [k for k, v in (("check_id", check_id), ("message_id", message_id), ("text", text)) if v is not None]
    if len(given) != 1:
        raise Invalid("give exactly one of check_id, message_id or text",
                      errors={"_schema": ["exactly one of check_id, message_id, text"]})
    if expected not in EXPECTED:
        raise Invalid(f"expected must be one of {', '.join(EXPECTED)}", errors={"expected": ["allow or reject"]})
    _check_category(category)
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise Invalid(f"the note is longer than {NOTE_MAX} characters", errors={"note": ["too long"]})
    tenant = role == "tenant"
    rec: CheckRecord | None = None
    if check_id is not None:
        rec = session.get(CheckRecord, check_id)
        if rec is None or (tenant and rec.account_id != account):
            raise NotFound(f"no check {check_id}")
    elif message_id is not None:
        if not account:
            raise Invalid("name the account whose message this is", errors={"account": ["required with message_id"]})
        cid = checks.check_of_message(session, account, message_id)
        if cid is None:
            raise NotFound(f"no recorded check of account {account} with message id {message_id!r} (records appear "
                           f"within a second of the check and are kept SMSGUARD_CHECK_RETENTION_DAYS)")
        rec = session.get(CheckRecord, cid)
    fb = Feedback(submitted_by=actor, submitted_role=role, expected=expected, category=category, note=note,
                  status="pending", decision_note="", actions=[])
    if rec is not None:
        dup = session.scalar(select(Feedback).where(Feedback.check_id == rec.id, Feedback.submitted_by == actor,
                                                    Feedback.expected == expected, Feedback.status == "pending"))
        if dup is not None:
            return dup, False
        fb.check_id, fb.account_id, fb.message_id = rec.id, rec.account_id, rec.message_id
        fb.text, fb.text_mode = rec.text, rec.text_mode
        fb.verdict, fb.engine_verdict = rec.result, rec.verdict
    else:
        text = text.strip() if text else ""
        if not text:
            raise Invalid("the text is empty", errors={"text": ["empty"]})
        if len(text) > max_chars:
            raise Invalid(f"text is longer than the limit of {max_chars} characters",
                          errors={"text": [f"longer than {max_chars} characters"]})
        if account and not tenant:
            accounts.get(session, account)  # a reviewer naming an account: it must exist
        fb.account_id, fb.text, fb.text_mode = account, text, "full"
        if moderator is not None:
            v = moderator.check(text, account_lists=lists.get(account) if lists is not None and account else None)
            fb.verdict, fb.engine_verdict = v.to_dict(), v.verdict
    session.add(fb)
    session.flush()
    events.record(session, "feedback.received", actor, fb.account_id, subject=f"feedback:{fb.id}",
                  expected=expected, category=category, check_id=fb.check_id, engine_verdict=fb.engine_verdict)
    return fb, True


def get(session: Session, feedback_id: int, account: str | None = None) -> Feedback:
    """One feedback item; ``account``: a tenant's (another account's item is a 404)."""
    fb = session.get(Feedback, feedback_id)
    if fb is None or (account is not None and fb.account_id != account):
        raise NotFound(f"no feedback {feedback_id}")
    return fb


def suggest_term(fb: Feedback) -> str:
    """What an allow / block term would most likely be: for expected allow, the evidence of the
    keyword reason that weighed most toward the verdict (from a full text only); "" otherwise."""
    if fb.expected != "allow" or fb.text_mode != "full" or not fb.verdict:
        return ""
    best, score = "", float("-inf")
    for r in (fb.verdict or {}).get("reasons") or ():
        if r.get("detector") != "keyword" or not r.get("evidence"):
            continue
        s = float(r.get("score") or 0) + (100 if r.get("action") in ("reject", "review") else 0)
        if s > score:
            best, score = r["evidence"], s
    return best[:TERM_MAX]


def can_change_lists(fb: Feedback) -> bool:
    """Account terms come only from a tenant's feedback about its own account."""
    return fb.submitted_role == "tenant" and bool(fb.account_id)


def decide(session: Session, feedback_id: int, decision: str, actor: str, actions=(), note: str = "",
           term: str | None = None, category: str | None = None) -> Feedback:
    """Accept (doing ``actions``) or dismiss a pending feedback item. 409 when it was already
    decided; 422 when an action does not fit it (see the module's docstring)."""
    if decision not in DECISIONS:
        raise Invalid(f"decision must be one of {', '.join(DECISIONS)}", errors={"decision": ["accept or dismiss"]})
    actions = list(dict.fromkeys(actions or ()))
    bad = [a for a in actions if a not in ACTIONS]
    if bad:
        raise Invalid(f"unknown action(s) {', '.join(map(str, bad))} (allowed: {', '.join(ACTIONS)})",
                      errors={"actions": ["unknown action"]})
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise Invalid(f"the note is longer than {NOTE_MAX} characters", errors={"note": ["too long"]})
    _check_category(category)
    fb = session.get(Feedback, feedback_id, with_for_update=True, populate_existing=True)
    if fb is None:
        raise NotFound(f"no feedback {feedback_id}")
    if fb.status != "pending":
        raise Conflict(f"feedback {feedback_id} was already {fb.status} by {fb.decided_by}",
                       feedback_status=fb.status)
    claims.check_free(session, "feedback", feedback_id, actor)  # another reviewer holds it: 409
    if decision == "dismiss" and actions:
        raise Invalid("a dismissed feedback takes no actions", errors={"actions": ["not with dismiss"]})
    category = category or fb.category
    done: list[dict] = []
    for action in actions:
        if action in ("account_allow_term", "account_block_term"):
            kind = "allow" if action == "account_allow_term" else "block"
            if not can_change_lists(fb):
                raise Invalid("account terms come only from a tenant's feedback about its own account",
                              errors={"actions": [f"{action}: not a tenant's feedback"]})
            wanted = "allow" if kind == "allow" else "reject"
            if fb.expected != wanted:
                raise Invalid(f"{action} needs feedback that expected {wanted}",
                              errors={"actions": [f"{action}: expected is {fb.expected}"]})
            t = (term or (suggest_term(fb) if kind == "allow" else "")).strip()
            if not t:
                raise Invalid(f"name the term for {action}", errors={"term": ["required"]})
            if len(t) > TERM_MAX:
                raise Invalid(f"the term is longer than {TERM_MAX} characters", errors={"term": ["too long"]})
            cat = None if kind == "allow" else category
            added = accounts.add_terms(session, fb.account_id, kind, [t], cat, actor, categories=LABELS)
            done.append({"action": action, "account": fb.account_id, "term": t, "category": cat,
                         "term_id": added[0].id if added else None, "existed": not added})
        elif action == "training_example":
            if fb.text_mode != "full" or not fb.text:
                raise Invalid(f"feedback {fb.id} has no full text to learn from (its check was recorded with "
                              f"SMSGUARD_CHECK_TEXT={fb.text_mode})", errors={"actions": ["training_example: no text"]})
            if fb.expected == "reject":
                if category not in PROHIBITED:
                    raise Invalid("a reject example needs a prohibited category (the feedback's or the decision's)",
                                  errors={"category": [f"one of {', '.join(PROHIBITED)}"]})
                labels = [category]
            else:
                labels = [category] if category in INFORMATIONAL else []
            ref = f"feedback:{fb.id}"
            ex = TrainingExample(text=fb.text, labels=labels, lang=lang_of(fb.text), origin="feedback", ref=ref,
                                 decided_by=actor, decided_at=datetime.now(UTC))
            session.add(ex)
            session.flush()
            done.append({"action": action, "example_id": ex.id, "labels": labels})
    fb.status = "accepted" if decision == "accept" else "dismissed"
    fb.decided_by, fb.decided_at, fb.decision_note, fb.actions = actor, datetime.now(UTC), note, done
    session.flush()
    claims.release(session, "feedback", feedback_id)
    events.record(session, f"feedback.{fb.status}", actor, fb.account_id, subject=f"feedback:{fb.id}",
                  actions=done, note=note)
    return fb


decide_feedback = decide


def list_feedback(session: Session, *, status: str | None = None, account: str | None = None, limit: int = 50,
                  after: tuple[datetime, int] | None = None) -> tuple[list[Feedback], bool]:
    """Newest first (created_at, id); (items, more?)."""
    from sqlalchemy import and_, or_

    q = select(Feedback)
    if status:
        q = q.where(Feedback.status == status)
    if account is not None:
        q = q.where(Feedback.account_id == account)
    if after is not None:
        q = q.where(or_(Feedback.created_at < after[0], and_(Feedback.created_at == after[0], Feedback.id < after[1])))
    rows = list(session.scalars(q.order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return {s: n for s, n in session.execute(select(Feedback.status, func.count()).group_by(Feedback.status))}
