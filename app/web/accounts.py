"""Accounts pages (issues 6 and 15): status, complaint rate, history, the next step on the
enforcement ladder; admins suspend and reinstate with a note after a confirmation step, and reveal
a complainant's phone number (recorded as an event); reviewers see phone numbers masked.

Numbers are written for people by the template filters registered here (app-wide, so any page
may use them): ``thousands`` (1,000,000), ``complaint_rate`` (0.25 per million, 2.5 per 10k) and
``figure`` (a ladder threshold as the automatic notes write it)."""
from __future__ import annotations

import math

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext, ngettext
from sqlalchemy import func, select

from app.services import enforcement, events
from app.services.errors import ServiceError
from app.store.models import ACCOUNT_STATUSES, Account, Complaint, OptOut
from app.web import web_blueprint
from app.web.auth import current_user, login_required
from app.web.i18n import is_english, label, service_message

bp = web_blueprint("account_pages", __name__)

#: what each hand-made change does, and from which states it may be made (the service refuses
#: the others; the page offers only these)
ACTIONS = {
    "suspend": {"from": ("active", "warned"), "to": "suspended",
                "effect": lazy_gettext("Every pre-send check of this account will answer reject (ACCT_SUSPENDED) "
                                       "until an admin reinstates it.")},
    "reinstate": {"from": ("warned", "suspended"), "to": "active",
                  "effect": lazy_gettext("The account sends again. Complaints are counted afresh from now on, and "
                                         "the ladder remembers this account's earlier steps.")},
}


# ------------------------------------------------------------------------------ numbers


def _cut(v: float, digits: int = 3) -> str:
    """``v`` (>= 0) to ``digits`` significant digits, cut (never rounded up: 0.2496 is 0.249,
    so a figure never seems to reach a threshold it has not reached); thousands separated."""
    if v == 0:
        return "0"
    v = float(f"{v:.12g}")  # float noise off: 2.9999999999999996 (3 / 1e6 * 1e6) is 3
    if v >= 10 ** (digits - 1):
        return f"{math.floor(v):,}"
    decimals = digits - 1 - math.floor(math.log10(v))
    q = math.floor(v * 10 ** decimals) / 10 ** decimals
    s = f"{q:.{decimals}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


#: complaint-rate units, most detailed first: the first in which the figure stays below 100
RATE_UNITS = ((1e6, "per million"), (1e4, "per 10k"), (1e2, "per 100"), (1.0, "per message"))


def _rate_parts(per_million) -> tuple[str, str, str] | None:
    """(prefix, figure, unit) of a rate: ("", "0.25", "per million"), ("< ", "0.001", "per
    million"); None when there is no rate."""
    if per_million is None:
        return None
    try:
        per_million = float(per_million)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(per_million) or per_million < 0:
        return None
    if per_million == 0:
        return "", "0", "per million"
    if per_million < 0.001:
        return "< ", "0.001", "per million"
    per_message = per_million / 1e6
    for scale, unit in RATE_UNITS:
        v = per_message * scale
        if v < 100 or scale == 1.0:
            return "", _cut(v), unit
    return None  # pragma: no cover - the last unit always answers


def human_rate(per_million: float | None) -> str:
    """Complaints per million allowed messages in words: "0.25 per million", "2.5 per 10k",
    "1.5 per 100", "2 per message"; "–" when there is no rate (no allowed messages). English
    (the pages use :func:`page_rate`, in their language)."""
    parts = _rate_parts(per_million)
    if parts is None:
        return "–"
    prefix, figure, unit = parts
    return f"{prefix}{figure} {unit}"


#: the rate units in the page's language: 百万分之0.25, 万分之2.5, 百分之1.5, 每条2次
RATE_WORDS = {"per million": lazy_gettext("%(n)s per million"), "per 10k": lazy_gettext("%(n)s per 10k"),
              "per 100": lazy_gettext("%(n)s per 100"), "per message": lazy_gettext("%(n)s per message")}


def page_rate(per_million: float | None) -> str:
    """:func:`human_rate` in the page's language (the same figure, cut the same way)."""
    parts = _rate_parts(per_million)
    if parts is None:
        return "–"
    prefix, figure, unit = parts
    if is_english():
        return f"{prefix}{figure} {unit}"
    words = str(RATE_WORDS[unit]) % {"n": figure}
    return gettext("below %(rate)s", rate=words) if prefix else words


def page_figure(value, metric: str) -> str:
    """enforcement.figure (what the automatic notes write: "3 complaints", "0.25 per million")
    in the page's language, the figure itself unchanged."""
    if is_english() or value is None:
        return enforcement.figure(value, metric)
    if metric == "count":
        n = int(value)
        return ngettext("%(count)s complaint", "%(count)s complaints", n, count=format(n, ","))
    return str(RATE_WORDS["per million"]) % {"n": f"{value:.4g}"}


def human_count(n) -> str:
    """A count with thousands separators (1,000,000); "–" for None."""
    if n is None:
        return "–"
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError, OverflowError):
        return "–"


def mask_phone(phone: str | None, default_region: str = "CN") -> str:
    """A phone number a reviewer may see: a Chinese mobile as 138****5678 (the usual form),
    another number of the default region with only its last three digits (****678), a foreign
    one with its country code (+44 ****789); anything unreadable shows its last two digits."""
    if not phone:
        return "–"
    import phonenumbers

    raw = str(phone)
    try:
        num = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        digits = "".join(ch for ch in raw if ch.isdigit())
        return "****" + digits[-2:] if len(digits) > 4 else "****"
    nsn = phonenumbers.national_significant_number(num)
    home = phonenumbers.region_code_for_number(num) == default_region or \
        num.country_code == phonenumbers.country_code_for_region(default_region)
    if num.country_code == 86 and len(nsn) == 11 and nsn.startswith("1"):
        masked = f"{nsn[:3]}****{nsn[-4:]}"
    else:
        keep = 3 if len(nsn) >= 7 else 2 if len(nsn) >= 5 else 0
        masked = "****" + (nsn[-keep:] if keep else "")
    return masked if home else f"+{num.country_code} {masked}"


@bp.app_template_filter("thousands")
def _count_filter(n) -> str:
    return human_count(n)


@bp.app_template_filter("complaint_rate")
def _rate_filter(per_million) -> str:
    return page_rate(per_million)


@bp.app_template_filter("figure")
def _figure_filter(value, metric: str) -> str:
    """A ladder threshold exactly as the automatic notes write it ("3 complaints", "0.25 per
    million": enforcement.figure), so the page and the note cannot disagree (on a Chinese page
    the same figure in Chinese words: 3 次投诉, 百万分之0.25)."""
    return page_figure(value, metric)


# ------------------------------------------------------------------------------- helpers


def _db():
    return current_app.extensions["smsguard.db"]


def _policy():
    from app.api.messages import service

    return service().policy()


def _settings():
    return _policy().enforcement


def _region() -> str:
    try:
        return _policy().presend.default_region
    except Exception:  # the settings in force are what they are; masking must not fail a page
        return "CN"


def _next_step(lad: enforcement.Ladder, r: enforcement.Rates) -> dict:
    """The ladder as the page shows it: the metric in force, its current value and the steps its
    next breach would take (the thresholds ``evaluate`` applies)."""
    now = len(r.complaints) if r.metric == "count" else r.rate
    return {"metric": r.metric, "now": now, "steps": lad.outcomes(r.metric), "other": lad.outcomes(
        "rate" if r.metric == "count" else "count"), "previous": enforcement.AFTER.get(lad.previous),
        "automatic": lad.automatic}


def _detail(account_id: str, confirm: dict | None = None, revealed: dict | None = None, status: int = 200):
    settings = _settings()
    with _db().session() as s:
        acct = s.get(Account, account_id)
        if acct is None:
            abort(404, gettext("There is no account %(account)s.", account=account_id))
        r = enforcement.rates(s, account_id, settings)
        lad = enforcement.ladder(s, acct, settings)
        history = enforcement.history(s, account_id)
        complaints = list(s.scalars(select(Complaint).where(Complaint.account_id == account_id)
                                    .order_by(Complaint.id.desc()).limit(50)))
        opt_outs = s.scalar(select(func.count()).select_from(OptOut).where(OptOut.account_id == account_id))
    region = _region()
    phones = {c.id: (revealed or {}).get(c.id) or mask_phone(c.phone, region) for c in complaints}
    return render_template("account.html", acct=acct, rates=r, history=history, complaints=complaints,
                           opt_outs=opt_outs, settings=settings, next_step=_next_step(lad, r),
                           phones=phones, revealed=revealed or {}, confirm=confirm,
                           can_act=current_user().is_admin, actions=ACTIONS), status


# --------------------------------------------------------------------------------- pages


@bp.get("/accounts/")
@login_required(role="reviewer")
def accounts():
    status = request.args.get("status", "")
    if status and status not in ACCOUNT_STATUSES:
        status = ""
    settings = _settings()
    rows = []
    with _db().session() as s:
        q = select(Account).order_by(Account.id).limit(500)
        if status:
            q = q.where(Account.status == status)
        for a in s.scalars(q):
            r = enforcement.rates(s, a.id, settings)
            rows.append((a, r, _next_step(enforcement.ladder(s, a, settings), r)))
    return render_template("accounts.html", rows=rows, status=status, statuses=ACCOUNT_STATUSES,
                           settings=settings)


@bp.get("/accounts/<account_id>")
@login_required(role="reviewer")
def account(account_id: str):
    return _detail(account_id)


def _act(account_id: str, what: str):
    """Suspend or reinstate, in two steps: the form's POST (with the note) answers a
    confirmation; only a POST carrying ``confirm`` = the account id does it. ``expect`` (the
    state the admin confirmed from) guards against a change made meanwhile."""
    action = ACTIONS[what]
    note = (request.form.get("note") or "").strip()
    if not note:
        flash(gettext("A suspension needs a note saying why.") if what == "suspend"
              else gettext("A reinstatement needs a note saying why."), "error")
        return redirect(url_for("account_pages.account", account_id=account_id))
    with _db().session() as s:
        acct = s.get(Account, account_id)
        if acct is None:
            abort(404, gettext("There is no account %(account)s.", account=account_id))
        current = acct.status
    if current not in action["from"]:
        state = label(current, "account")
        flash(gettext("Account %(account)s is %(status)s: it cannot be suspended.", account=account_id, status=state)
              if what == "suspend" else
              gettext("Account %(account)s is %(status)s: it cannot be reinstated.", account=account_id, status=state),
              "error")
        return redirect(url_for("account_pages.account", account_id=account_id))
    confirm = request.form.get("confirm")
    if confirm is None:  # step 1: nothing changes; the page asks to confirm
        return _detail(account_id, confirm={**action, "what": what, "note": note, "from": current})
    if confirm != account_id:
        abort(400, gettext("The confirmation does not match this account; nothing was changed."))
    if request.form.get("expect", current) != current:
        flash(gettext("Account %(account)s changed to %(status)s meanwhile; nothing was done. Look again and retry.",
                      account=account_id, status=label(current, "account")), "error")
        return redirect(url_for("account_pages.account", account_id=account_id))
    fn = enforcement.suspend if what == "suspend" else enforcement.reinstate
    try:
        with _db().session(immediate=True) as s:
            fn(s, account_id, note, current_user().actor)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, gettext("There is no account %(account)s.", account=account_id))
        flash(service_message(exc, op=what, account_id=account_id), "error")
    else:
        flash(gettext("Account %(account)s suspended.", account=account_id) if what == "suspend"
              else gettext("Account %(account)s reinstated.", account=account_id), "ok")
    return redirect(url_for("account_pages.account", account_id=account_id))


@bp.post("/accounts/<account_id>/suspend")
@login_required(role="admin")
def suspend(account_id: str):
    return _act(account_id, "suspend")


@bp.post("/accounts/<account_id>/reinstate")
@login_required(role="admin")
def reinstate(account_id: str):
    return _act(account_id, "reinstate")


@bp.post("/accounts/<account_id>/complaints/<int:complaint_id>/reveal")
@login_required(role="admin")
def reveal(account_id: str, complaint_id: int):
    """An admin reveals one complainant's full phone number; the reveal is an event (who, when,
    which account and complaint, the number masked). The answer is the account page with that
    number shown, never a URL that would show it again."""
    user = current_user()
    with _db().session() as s:
        c = s.get(Complaint, complaint_id)
        if c is None or c.account_id != account_id:
            abort(404, gettext("There is no complaint %(id)s for account %(account)s.", id=complaint_id,
                               account=account_id))
        phone = c.phone
        events.record(s, "account.phone_revealed", user.actor, account_id, subject=f"complaint:{complaint_id}",
                      complaint_id=complaint_id, phone_masked=mask_phone(phone, _region()))
    flash(gettext("Phone number of complaint #%(id)s revealed to you; the reveal is recorded.", id=complaint_id), "ok")
    return _detail(account_id, revealed={complaint_id: phone})
