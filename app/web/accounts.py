"""Accounts pages (issue 6): status, complaint rate, history; admins suspend and reinstate with a note."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.services import enforcement
from app.services.errors import ServiceError
from app.store.models import ACCOUNT_STATUSES, Account, Complaint, OptOut
from app.web import web_blueprint
from app.web.auth import current_user, login_required

bp = web_blueprint("account_pages", __name__)


def _db():
    return current_app.extensions["smsguard.db"]


def _settings():
    from app.api.messages import service

    return service().policy().enforcement


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
            rows.append((a, enforcement.rates(s, a.id, settings)))
    return render_template("accounts.html", rows=rows, status=status, statuses=ACCOUNT_STATUSES,
                           settings=settings)


@bp.get("/accounts/<account_id>")
@login_required(role="reviewer")
def account(account_id: str):
    settings = _settings()
    with _db().session() as s:
        acct = s.get(Account, account_id)
        if acct is None:
            abort(404, f"No account {account_id}.")
        r = enforcement.rates(s, account_id, settings)
        history = enforcement.history(s, account_id)
        complaints = list(s.scalars(select(Complaint).where(Complaint.account_id == account_id)
                                    .order_by(Complaint.id.desc()).limit(50)))
        opt_outs = s.scalar(select(func.count()).select_from(OptOut).where(OptOut.account_id == account_id))
    return render_template("account.html", acct=acct, rates=r, rates_dict=r.to_dict(settings), history=history,
                           complaints=complaints, opt_outs=opt_outs, settings=settings,
                           can_act=current_user().is_admin)


def _act(account_id: str, what: str):
    note = request.form.get("note", "")
    fn = enforcement.suspend if what == "suspend" else enforcement.reinstate
    try:
        with _db().session(immediate=True) as s:
            fn(s, account_id, note, current_user().actor)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404, exc.detail)
        flash(exc.detail, "error")
    else:
        flash(f"Account {account_id} {'suspended' if what == 'suspend' else 'reinstated'}.", "ok")
    return redirect(url_for("account_pages.account", account_id=account_id))


@bp.post("/accounts/<account_id>/suspend")
@login_required(role="admin")
def suspend(account_id: str):
    return _act(account_id, "suspend")


@bp.post("/accounts/<account_id>/reinstate")
@login_required(role="admin")
def reinstate(account_id: str):
    return _act(account_id, "reinstate")
