"""The review item page (reviewers and admins): the text with its highlighted spans, the reasons,
the decision forms, claims, withdrawal and the account's context. The queue and bulk decisions
are in app/web/queue.py, on this same blueprint."""
from __future__ import annotations

import re
from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext, ngettext

from app.engine.template_lint import RULES as TPL_RULES
from app.services import claims, review, workbench
from app.services.errors import Conflict, ServiceError
from app.store.models import INFORMATIONAL_CATEGORIES, Account
from app.web import web_blueprint
from app.web.auth import current_user, login_required
from app.web.i18n import item_name, service_message

bp = web_blueprint("review", __name__)

# labels in the page's language (lazy: looked up when a page shows them)
AGES = {"": (lazy_gettext("any age"), None), "1h": (lazy_gettext("waiting > 1 hour"), timedelta(hours=1)),
        "4h": (lazy_gettext("waiting > 4 hours"), timedelta(hours=4)),
        "24h": (lazy_gettext("waiting > 1 day"), timedelta(days=1)),
        "3d": (lazy_gettext("waiting > 3 days"), timedelta(days=3)),
        "7d": (lazy_gettext("waiting > 7 days"), timedelta(days=7))}
TYPE_LABELS = {"": lazy_gettext("All"), "signature": lazy_gettext("Signatures"),
               "verification": lazy_gettext("Verification"), "notification": lazy_gettext("Notification"),
               "promotional": lazy_gettext("Promotional"), "feedback": lazy_gettext("Feedback")}
SORT_LABELS = {"risk": lazy_gettext("risk (engine verdict, score, then age)"),
               "age": lazy_gettext("age (oldest first)")}
VAR_SPLIT = re.compile(r"(\$\{[^{}\s]*\})")
SEVERITIES = ("info", "weak", "strong", "reject")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
INFORMATIONAL = tuple(INFORMATIONAL_CATEGORIES)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _severity(r: dict) -> str:
    """reject: forces reject; strong: forces review or scores >= 5; weak: adds to the score;
    info: informational (marketing, zero or negative scores)."""
    if r.get("action") == "reject":
        return "reject"
    if r.get("category") in INFORMATIONAL or (r.get("score") or 0) <= 0:
        return "info"
    if r.get("action") == "review" or (r.get("score") or 0) >= 5:
        return "strong"
    return "weak"


def _db():
    return current_app.extensions["smsguard.db"]


def _claim_minutes() -> int:
    settings = current_app.config.get("SMSGUARD")
    return getattr(settings, "claim_minutes", claims.DEFAULT_MINUTES) or claims.DEFAULT_MINUTES


def _filters() -> dict[str, str]:
    """The queue filters, search and sort of this request (only known values; unknown ones are
    dropped, a search longer than workbench.SEARCH_MAX characters is a 400), carried from page
    to page in the query string."""
    f = {}
    t = request.values.get("type", "")
    if t in workbench.TYPE_FILTERS:
        f["type"] = t
    c = request.values.get("category", "").strip()
    if c and re.fullmatch(r"[a-z_]{1,64}", c):
        f["category"] = c
    a = _CONTROL.sub("", request.values.get("account", "")).strip()
    if a and len(a) <= 64:
        f["account"] = a
    v = request.values.get("verdict", "")
    if v in workbench.VERDICTS:
        f["verdict"] = v
    age = request.values.get("age", "")
    if age in AGES and age:
        f["age"] = age
    q = request.values.get("q", "")
    if len(q) > workbench.SEARCH_MAX:
        abort(400, description=gettext("The search text is %(n)s characters long; search for at most "
                                       "%(max)s characters.", n=format(len(q), ","), max=workbench.SEARCH_MAX))
    q = _CONTROL.sub("", q).strip()
    if q:
        f["q"] = q
    sort = request.values.get("sort", "")
    if sort in workbench.SORTS and sort != "risk":
        f["sort"] = sort
    return f


def _wb_filters(f: dict[str, str]) -> workbench.Filters:
    return workbench.Filters(type=f.get("type"), category=f.get("category"), account_id=f.get("account"),
                             verdict=f.get("verdict"), min_age=AGES[f.get("age", "")][1], search=f.get("q"))


def _sort(f: dict[str, str]) -> str:
    return f.get("sort", "risk")


def _url_of(kind: str, item_id: int, f: dict[str, str]) -> str:
    """An item's page, carrying the queue's filters (feedback has its own: app/web/feedback.py)."""
    if kind == "feedback":
        return url_for("feedback_pages.item", feedback_id=item_id, **f)
    return url_for("review.item", kind=kind, item_id=item_id, **f)


def _item_url(it, f: dict[str, str]) -> str | None:
    return _url_of(it.kind, it.id, f) if it else None


def _per_million(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:,.2f}".rstrip("0").rstrip(".")
    return f"{x:.2g}"


@bp.get("/")
def home():
    return redirect(url_for("review.queue"))


def _pieces(text: str, reasons: list[dict]) -> list[dict]:
    """Highlight pieces for the template: text, the reasons covering it (each with its "idx"),
    variable tokens apart."""
    out = []
    lint = gettext("lint")  # what a reason without a category is called
    for piece, covering in review.highlight(text, reasons):
        for part in VAR_SPLIT.split(piece):
            if not part:
                continue
            sev = max((SEVERITY_RANK[r["severity"]] for r in covering), default=0)
            out.append({"text": part, "var": bool(VAR_SPLIT.fullmatch(part)), "severity": SEVERITIES[sev],
                        "reasons": covering, "ids": " ".join(r["idx"] for r in covering),
                        "title": "\n".join(f"{r['rule']} · {r.get('category') or lint}" for r in covering)})
    return out


def _account_context(s, account_id: str, kind: str, item_id: int) -> dict:
    """The account's state, complaint rate, other pending items and recent decisions."""
    from app.api.messages import service
    from app.services import enforcement

    acct = s.get(Account, account_id)
    ctx: dict = {"account": acct, "rate": None}
    if acct is not None:
        settings = service().policy().enforcement
        r = enforcement.rates(s, account_id, settings)
        ctx["rate"] = {"per_million": _per_million(r.total_rate) if r.total_volume else None,
                       "complaints": ngettext("%(count)s complaint", "%(count)s complaints", r.total_complaints,
                                              count=format(r.total_complaints, ",")),
                       "messages": f"{r.total_volume:,}", "window_days": settings.window_days}
    ctx["pending"], ctx["pending_total"] = workbench.account_items(s, account_id, exclude=(kind, item_id))
    ctx["decisions"] = workbench.account_decisions(s, account_id)
    return ctx


@bp.get("/review/<kind>/<int:item_id>")
@login_required(role="reviewer")
def item(kind: str, item_id: int):
    if kind not in review.KINDS:
        abort(404)
    f = _filters()
    user = current_user()
    # opening a pending item claims it (its own short write transaction: exactly one of two
    # reviewers opening it at once gets it; the other sees who holds it)
    try:
        with _db().session(immediate=True) as s:
            claimed = claims.claim(s, kind, item_id, user.actor, _claim_minutes())
    except ServiceError:
        abort(404, description=_no_such(kind, item_id))
    with _db().session() as s:
        try:
            obj = review.get(s, kind, item_id)
        except ServiceError:
            abort(404, description=_no_such(kind, item_id))
        history = review.decisions(s, kind, item_id)
        prev_it, next_it, position, total = workbench.neighbours(s, _wb_filters(f), _sort(f), kind, item_id,
                                                                 user.actor)
        if prev_it is None and next_it is None and obj.status != "pending":
            next_it = workbench.first_free(s, _wb_filters(f), _sort(f), user.actor)
        signature = obj.signature.name if kind == "template" and obj.signature else None
        signature_status = obj.signature.status if kind == "template" and obj.signature else None
        same, same_total = workbench.same_text(s, kind, item_id)
        context = _account_context(s, obj.account_id, kind, item_id)
    verdict = obj.verdict or {}
    reasons = [dict(r) for r in verdict.get("reasons") or []]
    text = obj.name if kind == "signature" else obj.content
    for i, r in enumerate(reasons):
        r["idx"] = f"r{i}"
        r["severity"] = _severity(r)
        r["lint_applies"] = TPL_RULES.get(r["rule"], (None,))[0]
        span = r.get("span")
        r["where"] = f"{span[0]}–{span[1]}" if span else ""
    held_by_other = claimed.claim if claimed.claim is not None and not claimed.held else None
    return render_template("item.html", kind=kind, obj=obj, text=text, pieces=_pieces(text, reasons),
                           reasons=reasons, verdict=verdict, history=history, filters=f,
                           signature=signature, signature_status=signature_status,
                           prev_url=_item_url(prev_it, f), next_url=_item_url(next_it, f),
                           position=position, total=total, queue_url=url_for("review.queue", **f),
                           claim=claimed.claim if claimed.held else None, claimed_by_other=held_by_other,
                           flagged=review.flagged(obj), same=same, same_total=same_total,
                           ctx=context, claim_minutes=_claim_minutes(),
                           flagged_categories=[c for c in verdict.get("categories") or () if c not in INFORMATIONAL])


def _no_such(kind: str, item_id: int) -> str:
    return gettext("There is no %(what)s.", what=item_name(kind, item_id))


def _next_after(f: dict[str, str], kind: str, item_id: int) -> str | None:
    """Where to go after deciding an item: the next free pending item in the queue's order,
    wrapping to the first one; None when nothing is left."""
    actor = current_user().actor
    with _db().session() as s:
        _, nxt, _, _ = workbench.neighbours(s, _wb_filters(f), _sort(f), kind, item_id, actor)
        if nxt is None:
            nxt = workbench.first_free(s, _wb_filters(f), _sort(f), actor)
    if nxt is not None and (nxt.kind, nxt.id) == (kind, item_id):
        nxt = None
    return _item_url(nxt, f)


@bp.post("/review/<kind>/<int:item_id>/decision")
@login_required(role="reviewer")
def decide(kind: str, item_id: int):
    if kind not in review.KINDS:
        abort(404)
    f = _filters()
    user = current_user()
    decision = request.form.get("decision", "")
    reason = request.form.get("reason", "")[:review.REASON_MAX]
    confirm = request.form.get("confirm_flagged") == "1"
    here = url_for("review.item", kind=kind, item_id=item_id, **f)
    try:
        with _db().session(immediate=True) as s:
            review.decide(s, kind, item_id, decision, reason, user.actor, user.role, confirm_flagged=confirm)
    except Conflict as exc:
        flash(service_message(exc, kind, item_id), "error")
        return redirect(here)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, description=_no_such(kind, item_id))
        flash(service_message(exc, kind, item_id), "error")
        return redirect(here)
    what = item_name(kind, item_id)
    flash(gettext("Approved %(what)s.", what=what) if decision == "approve"
          else gettext("Rejected %(what)s.", what=what), "ok")
    nxt = _next_after(f, kind, item_id)
    if nxt is None:
        flash(gettext("The queue is empty."), "ok")
        return redirect(url_for("review.queue", **f))
    return redirect(nxt)


@bp.post("/review/<kind>/<int:item_id>/withdraw")
@login_required(role="reviewer")
def withdraw(kind: str, item_id: int):
    """Withdraw an approved item: a reason (what the customer reads) and the confirmation box."""
    if kind not in review.KINDS:
        abort(404)
    f = _filters()
    user = current_user()
    here = url_for("review.item", kind=kind, item_id=item_id, **f)
    reason = request.form.get("reason", "")
    if request.form.get("confirm") != "1":
        flash(gettext("Tick the confirmation box to withdraw: a withdrawn item can never be sent again."), "error")
        return redirect(here)
    try:
        with _db().session(immediate=True) as s:
            review.withdraw(s, kind, item_id, reason, user.actor, user.role)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, description=_no_such(kind, item_id))
        flash(service_message(exc, kind, item_id, op="withdraw"), "error")
        return redirect(here)
    what = item_name(kind, item_id)
    if kind == "template":
        flash(gettext("Withdrew %(what)s: the pre-send check refuses it from now on (TPL_WITHDRAWN).", what=what), "ok")
    else:
        flash(gettext("Withdrew %(what)s: the pre-send check refuses every template under it from now on "
                      "(TPL_WITHDRAWN).", what=what), "ok")
    return redirect(here)


@bp.post("/review/<kind>/<int:item_id>/claim")
@login_required(role="reviewer")
def claim(kind: str, item_id: int):
    """``action=takeover`` (admins): take another reviewer's claim; ``action=release``: let go
    of one's own claim."""
    if kind not in workbench.KINDS:
        abort(404)
    f = _filters()
    user = current_user()
    action = request.form.get("action", "")
    here = _url_of(kind, item_id, f)
    if action == "release":
        with _db().session(immediate=True) as s:
            claims.release(s, kind, item_id, actor=user.actor)
        flash(gettext("Released %(what)s: another reviewer may take it.", what=item_name(kind, item_id)), "ok")
        return redirect(url_for("review.queue", **f))
    if action != "takeover":
        abort(400, description=gettext("Unknown claim action."))
    if not user.is_admin:
        abort(403, description=gettext("Only admins take over another reviewer's claim."))
    try:
        with _db().session(immediate=True) as s:
            res = claims.claim(s, kind, item_id, user.actor, _claim_minutes(), takeover=True, role=user.role)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, description=_no_such(kind, item_id))
        abort(exc.status, description=service_message(exc, kind, item_id, op="claim"))
    what = item_name(kind, item_id)
    if res.held and res.taken_over_from:
        flash(gettext("You hold %(what)s now (taken over from %(who)s).", what=what,
                      who=claims.who(res.taken_over_from)), "ok")
    elif res.held:
        flash(gettext("You hold %(what)s now.", what=what), "ok")
    else:
        flash(gettext("%(what)s is no longer pending; nothing to claim.", what=what), "error")
    return redirect(here)


from app.web import queue as _queue  # noqa: E402,F401  (the queue's routes, on this blueprint)
