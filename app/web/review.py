"""The review queue and the item page (reviewers and admins)."""
from __future__ import annotations

import re
from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from app.engine.template_lint import RULES as TPL_RULES
from app.services import review
from app.services.errors import Conflict, ServiceError
from app.web import web_blueprint
from app.web.auth import current_user, login_required

bp = web_blueprint("review", __name__)

AGES = {"": ("any age", None), "1h": ("waiting > 1 hour", timedelta(hours=1)),
        "4h": ("waiting > 4 hours", timedelta(hours=4)), "24h": ("waiting > 1 day", timedelta(days=1)),
        "3d": ("waiting > 3 days", timedelta(days=3)), "7d": ("waiting > 7 days", timedelta(days=7))}
TYPE_LABELS = {"": "All", "signature": "Signatures", "verification": "Verification",
               "notification": "Notification", "promotional": "Promotional"}
VAR_SPLIT = re.compile(r"(\$\{[^{}\s]*\})")
SEVERITIES = ("info", "weak", "strong", "reject")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
INFORMATIONAL = ("marketing",)


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


def _filters() -> dict[str, str]:
    """The queue filters of this request (only known values), carried from page to page."""
    f = {}
    t = request.values.get("type", "")
    if t in review.TYPE_FILTERS:
        f["type"] = t
    c = request.values.get("category", "").strip()
    if c and re.fullmatch(r"[a-z_]{1,64}", c):
        f["category"] = c
    a = request.values.get("account", "").strip()
    if a and len(a) <= 64:
        f["account"] = a
    age = request.values.get("age", "")
    if age in AGES and age:
        f["age"] = age
    return f


def _queue(session, f: dict[str, str]) -> list[review.QueueItem]:
    return review.queue(session, type=f.get("type"), category=f.get("category"),
                        account_id=f.get("account"), min_age=AGES[f.get("age", "")][1])


def _item_url(it: review.QueueItem | None, f: dict[str, str]) -> str | None:
    return url_for("review.item", kind=it.kind, item_id=it.id, **f) if it else None


@bp.get("/")
def home():
    return redirect(url_for("review.queue"))


@bp.get("/review/")
@login_required(role="reviewer")
def queue():
    f = _filters()
    with _db().session() as s:
        counts = review.counts(s)
        items = _queue(s, f)
        # categories and accounts across the whole pending queue, for the filter menus
        everything = review.queue(s) if f else items
    return render_template("queue.html", items=items, counts=counts, filters=f,
                           categories=review.category_counts(everything),
                           accounts=sorted({it.account_id for it in everything}),
                           ages=AGES, type_labels=TYPE_LABELS,
                           item_url=lambda it: _item_url(it, f))


def _pieces(text: str, reasons: list[dict]) -> list[dict]:
    """Highlight pieces for the template: text, the reasons covering it (each with its "idx"),
    variable tokens apart."""
    out = []
    for piece, covering in review.highlight(text, reasons):
        for part in VAR_SPLIT.split(piece):
            if not part:
                continue
            sev = max((SEVERITY_RANK[r["severity"]] for r in covering), default=0)
            out.append({"text": part, "var": bool(VAR_SPLIT.fullmatch(part)), "severity": SEVERITIES[sev],
                        "reasons": covering, "ids": " ".join(r["idx"] for r in covering),
                        "title": "\n".join(f"{r['rule']} · {r.get('category') or 'lint'}" for r in covering)})
    return out


@bp.get("/review/<kind>/<int:item_id>")
@login_required(role="reviewer")
def item(kind: str, item_id: int):
    if kind not in review.KINDS:
        abort(404)
    f = _filters()
    with _db().session() as s:
        try:
            obj = review.get(s, kind, item_id)
        except ServiceError:
            abort(404, description=f"There is no {kind} {item_id}.")
        history = review.decisions(s, kind, item_id)
        items = _queue(s, f)
        prev_it, next_it = review.neighbours(items, kind, item_id)
        if prev_it is None and next_it is None and obj.status != "pending":
            next_it = items[0] if items else None
        position = next((i + 1 for i, it in enumerate(items) if it.kind == kind and it.id == item_id), None)
        signature = obj.signature.name if kind == "template" and obj.signature else None
        signature_status = obj.signature.status if kind == "template" and obj.signature else None
    verdict = obj.verdict or {}
    reasons = [dict(r) for r in verdict.get("reasons") or []]
    text = obj.name if kind == "signature" else obj.content
    for i, r in enumerate(reasons):
        r["idx"] = f"r{i}"
        r["severity"] = _severity(r)
        r["lint_applies"] = TPL_RULES.get(r["rule"], (None,))[0]
        span = r.get("span")
        r["where"] = f"{span[0]}–{span[1]}" if span else ""
    return render_template("item.html", kind=kind, obj=obj, text=text, pieces=_pieces(text, reasons),
                           reasons=reasons, verdict=verdict, history=history, filters=f,
                           signature=signature, signature_status=signature_status,
                           prev_url=_item_url(prev_it, f), next_url=_item_url(next_it, f),
                           position=position, total=len(items),
                           queue_url=url_for("review.queue", **f))


@bp.post("/review/<kind>/<int:item_id>/decision")
@login_required(role="reviewer")
def decide(kind: str, item_id: int):
    if kind not in review.KINDS:
        abort(404)
    f = _filters()
    user = current_user()
    decision = request.form.get("decision", "")
    reason = request.form.get("reason", "")[:2000]
    try:
        with _db().session(immediate=True) as s:
            obj = review.decide(s, kind, item_id, decision, reason, user.actor, user.role)
            key = (obj.created_at, kind, obj.id)
    except Conflict as exc:
        flash(exc.detail, "error")
        return redirect(url_for("review.item", kind=kind, item_id=item_id, **f))
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, description=exc.detail)
        flash(exc.detail, "error")
        return redirect(url_for("review.item", kind=kind, item_id=item_id, **f))
    verb = "Approved" if decision == "approve" else "Rejected"
    flash(f"{verb} {kind} #{item_id}.", "ok")
    with _db().session() as s:
        nxt = review.next_after(_queue(s, f), key)
    if nxt is None:
        flash("The queue is empty.", "ok")
        return redirect(url_for("review.queue", **f))
    return redirect(_item_url(nxt, f))
