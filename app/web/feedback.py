"""Feedback for reviewers (issue 16, item 2): /review/feedback lists feedback on verdicts
(pending first), with the text, what the engine said and what the sender expected, and a form
to accept it (adding an account allow / block term and / or a training example) or dismiss it.
The decisions go through app/services/feedback.py, like POST /v1/feedback/<id>/decision."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l

from app.engine.classifier import LABELS, PROHIBITED
from app.services import feedback as fbs
from app.services.errors import ServiceError
from app.store.records import FEEDBACK_STATUSES
from app.web import web_blueprint
from app.web.auth import current_user, login_required

bp = web_blueprint("feedback_pages", __name__)
PAGE = 50
STATUS_NAMES = {"pending": _l("Pending"), "accepted": _l("Accepted"), "dismissed": _l("Dismissed")}


def action_text(a: dict) -> str:
    """What accepting did, in a line: "“…” on ACME's allow list", "training example #3 (normal)"."""
    if a.get("action") == "training_example":
        return gettext("training example #%(id)s (%(labels)s)", id=a.get("example_id"),
                       labels=", ".join(a.get("labels") or ()) or gettext("normal"))
    if a.get("action") == "account_allow_term":
        return gettext("“%(term)s” on %(account)s's allow list", term=a.get("term"), account=a.get("account"))
    return gettext("“%(term)s” on %(account)s's block list", term=a.get("term"), account=a.get("account"))


def _db():
    return current_app.extensions["smsguard.db"]


def pieces(text: str | None, reasons: list[dict]) -> list[dict]:
    """The text cut at every reason's span: [{"text", "rules"}] (rules: the reasons covering it)."""
    if not text:
        return []
    n = len(text)
    spans = []
    for r in reasons or ():
        sp = r.get("span")
        if sp and 0 <= sp[0] < sp[1] <= n:
            spans.append((sp[0], sp[1], r))
    cuts = sorted({0, n, *[s for s, _, _ in spans], *[e for _, e, _ in spans]})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        covering = [r for s, e, r in spans if s <= a and b <= e]
        out.append({"text": text[a:b], "rules": covering,
                    "title": "\n".join(f"{r['rule']} · {r.get('category') or '–'}" for r in covering),
                    "reject": any(r.get("action") == "reject" for r in covering)})
    return out


@bp.get("/review/feedback")
@login_required(role="reviewer")
def feedback_list():
    status = request.args.get("status", "pending")
    if status not in FEEDBACK_STATUSES:
        status = "pending"
    before = request.args.get("before", "")
    with _db().session() as s:
        q_after = None
        if before.isdigit() and len(before) <= 10:
            anchor = s.get(fbs.Feedback, int(before))
            if anchor is not None:
                q_after = (anchor.created_at, anchor.id)
        rows, more = fbs.list_feedback(s, status=status, limit=PAGE, after=q_after)
        counts = fbs.counts(s)
        items = [{"fb": f, "pieces": pieces(f.text, (f.verdict or {}).get("reasons") or []),
                  "suggest": fbs.suggest_term(f), "lists": fbs.can_change_lists(f),
                  "learn": f.text_mode == "full" and bool(f.text)} for f in rows]
    return render_template("feedback.html", items=items, status=status, counts=counts, statuses=FEEDBACK_STATUSES,
                           labels=LABELS, prohibited=PROHIBITED, status_names=STATUS_NAMES, action_text=action_text,
                           older=url_for("feedback_pages.feedback_list", status=status, before=rows[-1].id)
                           if more and rows else None)


@bp.post("/review/feedback/<int:feedback_id>/decision")
@login_required(role="reviewer")
def decide(feedback_id: int):
    user = current_user()
    decision = request.form.get("decision", "")
    actions = [a for a in request.form.getlist("action") if a in fbs.ACTIONS] if decision == "accept" else []
    kind_term = {"account_allow_term": "allow_term", "account_block_term": "block_term"}
    term = None
    for a in actions:
        if a in kind_term:
            term = (request.form.get(kind_term[a], "") or "").strip()[:fbs.TERM_MAX] or None
    category = request.form.get("category") or None
    if category is not None and category not in LABELS:
        category = None
    note = request.form.get("note", "")[:fbs.NOTE_MAX]
    back = url_for("feedback_pages.feedback_list")
    if "account_allow_term" in actions and "account_block_term" in actions:
        flash(gettext("Choose the allow list or the block list, not both."), "error")
        return redirect(back)
    try:
        with _db().session(immediate=True) as s:
            fb = fbs.decide(s, feedback_id, decision, user.actor, actions, note, term=term, category=category)
            account, done = fb.account_id, list(fb.actions)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, description=exc.detail)
        flash(gettext("Feedback #%(id)s: %(detail)s", id=feedback_id, detail=exc.detail), "error")
        return redirect(back)
    lists = current_app.extensions.get("smsguard.lists")
    if lists is not None and account and any(a["action"].startswith("account_") for a in done):
        lists.invalidate(account)
    what = "; ".join(action_text(a) for a in done)
    if decision == "accept":
        msg = (gettext("Accepted feedback #%(id)s: %(what)s", id=feedback_id, what=what) if what
               else gettext("Accepted feedback #%(id)s.", id=feedback_id))
    else:
        msg = gettext("Dismissed feedback #%(id)s.", id=feedback_id)
    flash(msg, "ok")
    return redirect(back)
