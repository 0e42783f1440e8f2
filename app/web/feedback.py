"""Feedback for reviewers (issue 16, item 2): /review/feedback lists feedback on verdicts
(pending first), with the text, what the engine said and what the sender expected, and a form
to accept it (adding an account allow / block term and / or a training example) or dismiss it.
The decisions go through app/services/feedback.py, like POST /v1/feedback/<id>/decision."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l

from app.engine.classifier import LABELS, PROHIBITED
from app.services import claims, feedback as fbs, workbench
from app.services.errors import ServiceError
from app.store.records import FEEDBACK_STATUSES
from app.web import web_blueprint
from app.web.auth import current_user, login_required
from app.web.i18n import item_name, service_message

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
        items = [_view(f) for f in rows]
    return render_template("feedback.html", items=items, status=status, counts=counts, statuses=FEEDBACK_STATUSES,
                           labels=LABELS, prohibited=PROHIBITED, status_names=STATUS_NAMES, action_text=action_text,
                           older=url_for("feedback_pages.feedback_list", status=status, before=rows[-1].id)
                           if more and rows else None)


def _view(f) -> dict:
    """What the feedback macro (_feedback.html) shows of one item."""
    return {"fb": f, "pieces": pieces(f.text, (f.verdict or {}).get("reasons") or []),
            "suggest": fbs.suggest_term(f), "lists": fbs.can_change_lists(f),
            "learn": f.text_mode == "full" and bool(f.text)}


@bp.get("/review/feedback/<int:feedback_id>")
@login_required(role="reviewer")
def item(feedback_id: int):
    """One feedback item as an item of the review queue: opening it claims it (as a template's
    page does), previous / next follow the queue's order and filters, deciding goes on to the
    next item."""
    from app.web.review import _claim_minutes, _filters, _item_url, _sort, _wb_filters

    f = _filters()
    user = current_user()
    try:
        with _db().session(immediate=True) as s:
            claimed = claims.claim(s, "feedback", feedback_id, user.actor, _claim_minutes())
    except ServiceError:
        abort(404, description=gettext("There is no %(what)s.", what=item_name("feedback", feedback_id)))
    with _db().session() as s:
        fb = s.get(fbs.Feedback, feedback_id)
        if fb is None:
            abort(404)
        prev_it, next_it, position, total = workbench.neighbours(s, _wb_filters(f), _sort(f), "feedback",
                                                                 feedback_id, user.actor)
        if prev_it is None and next_it is None and fb.status != "pending":
            next_it = workbench.first_free(s, _wb_filters(f), _sort(f), user.actor)
        view = _view(fb)
    held_by_other = claimed.claim if claimed.claim is not None and not claimed.held else None
    return render_template("feedback_item.html", fb=fb, it=view, filters=f, labels=LABELS, prohibited=PROHIBITED,
                           status_names=STATUS_NAMES, action_text=action_text,
                           prev_url=_item_url(prev_it, f), next_url=_item_url(next_it, f), position=position,
                           total=total, queue_url=url_for("review.queue", **f),
                           claim=claimed.claim if claimed.held else None, claimed_by_other=held_by_other,
                           claim_minutes=_claim_minutes())


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
    from_queue = request.form.get("back") == "queue"
    if from_queue:  # decided on its page in the queue: errors go back there, success to the next item
        from app.web.review import _filters, _next_after

        queue_filters = _filters()
        back = url_for("feedback_pages.item", feedback_id=feedback_id, **queue_filters)
    else:
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
        detail = service_message(exc, "feedback", feedback_id) if "claimed_by" in (exc.extra or {}) else exc.detail
        flash(gettext("Feedback #%(id)s: %(detail)s", id=feedback_id, detail=detail), "error")
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
    if from_queue:
        nxt = _next_after(queue_filters, "feedback", feedback_id)
        if nxt is None:
            flash(gettext("The queue is empty."), "ok")
            return redirect(url_for("review.queue", **queue_filters))
        return redirect(nxt)
    return redirect(back)
