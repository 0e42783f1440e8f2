"""The review queue page and bulk decisions (issue 15), on the "review" blueprint of
app/web/review.py: sorted by risk or age, filtered, searched, grouped, paged in SQL
(app/services/workbench.py); a selection of rows approved or rejected with one reason."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext

from app.services import feedback as fbs, review, workbench
from app.services.errors import ServiceError
from app.store.models import INFORMATIONAL_CATEGORIES
from app.web.auth import current_user, login_required
from app.web.i18n import item_name, label, service_message
from app.web.review import (
    AGES,
    SORT_LABELS,
    TYPE_LABELS,
    _db,
    _filters,
    _item_url,
    _sort,
    _wb_filters,
    bp,
)

SKIPPED_LISTED = 10


def _number(raw: str | None, digits: int = 10) -> int | None:
    """A plain ASCII whole number (not "²", "1e9", "-1" or 50 digits long), else None."""
    if not raw or len(raw) > digits or not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


def _page_number() -> int:
    """?page=N: a whole number from 1; anything else is page 1 (past the last page: the last)."""
    n = _number(request.args.get("page"), 6)
    return min(max(1, n), workbench.MAX_PAGE) if n is not None else 1


@bp.get("/review/")
@login_required(role="reviewer")
def queue():
    f = _filters()
    number = _page_number()
    with _db().session() as s:
        counts = review.counts(s)
        counts["feedback"] = fbs.counts(s).get("pending", 0)
        counts["all"] += counts["feedback"]
        stats = workbench.stats(s)
        page = workbench.page(s, _wb_filters(f), _sort(f), number)

    def page_url(n: int) -> str:
        return url_for("review.queue", **f, **({"page": n} if n > 1 else {}))

    return render_template("queue.html", page=page, rows=page.rows, counts=counts, stats=stats,
                           filters=f, sort=_sort(f), sorts=SORT_LABELS, verdicts=workbench.VERDICTS,
                           ages=AGES, type_labels=TYPE_LABELS, item_url=lambda it: _item_url(it, f),
                           page_url=page_url, actor=current_user().actor,
                           bulk_url=url_for("review.bulk", **f, **({"page": page.number} if page.number > 1 else {})),
                           risk_label=workbench.risk_label)


def _selection(raw: str) -> tuple[str, int, int, int] | None:
    """A row's checkbox value "kind:first_id:max_id:count" (what the row showed)."""
    parts = raw.split(":")
    if len(parts) != 4 or parts[0] not in review.KINDS:
        return None
    first, newest, n = (_number(p) for p in parts[1:])
    if first is None or newest is None or n is None or not (0 < first <= newest < 2**31) or n < 1:
        return None
    return parts[0], first, newest, n


@bp.post("/review/bulk")
@login_required(role="reviewer")
def bulk():
    """Approve or reject the selected rows (a group row: every item it stood for) with one reason.
    Each item goes through review.decide on its own (its decision row and event); items decided
    meanwhile or held by another reviewer are skipped and listed. Approving when any selected
    item was flagged by the engine needs the confirmation box (checked here, not only in the
    page's script)."""
    f = _filters()
    user = current_user()
    number = _page_number()
    back = url_for("review.queue", **f, **({"page": number} if number > 1 else {}))
    decision = request.form.get("decision", "")
    if decision not in review.DECISIONS:
        abort(400, description=gettext("Choose approve or reject."))
    reason = request.form.get("reason", "").strip()
    if len(reason) > review.REASON_MAX:
        flash(gettext("The reason is longer than %(max)s characters.", max=review.REASON_MAX), "error")
        return redirect(back)
    confirm = request.form.get("confirm_flagged") == "1"
    raw = request.form.getlist("sel")
    if not raw:
        flash(gettext("Select the rows to decide first (the boxes on the left, or x on a row)."), "error")
        return redirect(back)
    if len(raw) > workbench.PAGE_SIZE:
        flash(gettext("Select at most %(n)s rows at once.", n=workbench.PAGE_SIZE), "error")
        return redirect(back)
    selections = [_selection(r) for r in raw]
    if any(sel is None for sel in selections):
        abort(400, description=gettext("The selection is malformed; reload the queue and select again."))
    if decision == "reject" and not reason:
        flash(gettext("A bulk rejection needs a reason the customers can act on."), "error")
        return redirect(back)

    wb = _wb_filters(f)
    targets: dict[tuple[str, int], workbench.Row | None] = {}
    gone = 0
    with _db().session() as s:
        for kind, first, newest, n in selections:
            members = workbench.group_members(s, wb, kind, first, newest)
            if len(members) + len(targets) > workbench.BULK_MAX:
                flash(gettext("The selection holds more than %(n)s items; select fewer rows.",
                              n=format(workbench.BULK_MAX, ",")), "error")
                return redirect(back)
            found = {(m.kind, m.id) for m in members}
            for m in members:
                targets[(m.kind, m.id)] = m
            if (kind, first) not in found:
                targets.setdefault((kind, first), None)  # decided meanwhile: decide() reports it
                gone += max(0, n - len(members) - 1)
            else:
                gone += max(0, n - len(members))
    flagged = [m for m in targets.values() if m is not None and m.flagged]
    if decision == "approve" and flagged and not confirm:
        cats = sorted({c for m in flagged for c in m.categories if c not in INFORMATIONAL_CATEGORIES})
        flash(gettext("%(n)s of the selected items were flagged by the engine (%(categories)s): tick \u201cI checked "
                      "the flagged items\u201d to approve them, or reject them. Nothing was decided.", n=len(flagged),
                      categories=", ".join(cats) or label("reject", "verdict")), "error")
        return redirect(back)

    done: list[tuple[str, int]] = []
    skipped: list[str] = []
    for kind, item_id in sorted(targets, key=lambda k: (k[0], k[1])):
        try:
            with _db().session(immediate=True) as s:
                review.decide(s, kind, item_id, decision, reason, user.actor, user.role, confirm_flagged=confirm)
            done.append((kind, item_id))
        except ServiceError as exc:
            skipped.append(f"{item_name(kind, item_id)}: {service_message(exc, kind, item_id)}")
    if done:
        n = len(done)
        flash(ngettext("Approved %(num)s item.", "Approved %(num)s items.", n) if decision == "approve"
              else ngettext("Rejected %(num)s item.", "Rejected %(num)s items.", n), "ok")
    if skipped or gone:
        listed = "; ".join(skipped[:SKIPPED_LISTED])
        if len(skipped) > SKIPPED_LISTED:
            listed += gettext("; and %(n)s more", n=len(skipped) - SKIPPED_LISTED)
        extra = gettext("%(n)s item(s) of the selected groups were decided meanwhile", n=gone) if gone else ""
        flash(gettext("Skipped %(n)s: %(what)s.", n=len(skipped) + gone,
                      what="; ".join(x for x in (listed, extra) if x)), "error")
    return redirect(back)
