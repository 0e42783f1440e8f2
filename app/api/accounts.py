"""/v1/accounts: accounts (admin), their status (tenant: own) and per-account keyword lists."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api.auth import principal, require, scope_account
from app.api.schemas import StrictSchema
from app.services import accounts

blp = Blueprint("accounts", __name__, url_prefix="/v1/accounts",
                description="Accounts and their custom keyword lists")


def _db():
    return current_app.extensions["smsguard.db"]


class AccountIn(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(1, 64))
    name = fields.String(load_default="", validate=validate.Length(0, 200))


class AccountOut(StrictSchema):
    id = fields.String()
    name = fields.String()
    status = fields.String()
    created_at = fields.DateTime()


class ListEntryIn(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(accounts.LIST_KINDS))
    terms = fields.List(fields.String(validate=validate.Length(1, 200)), required=True,
                        validate=validate.Length(1, 1000))
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))


class ListEntryOut(StrictSchema):
    id = fields.Integer()
    kind = fields.String()
    term = fields.String()
    category = fields.String(allow_none=True)
    created_at = fields.DateTime()


@blp.route("")
class Accounts(MethodView):
    @require("admin", "reviewer")
    @blp.response(200, AccountOut(many=True))
    def get(self):
        """List accounts."""
        from sqlalchemy import select

        from app.store.models import Account

        with _db().session() as s:
            return list(s.scalars(select(Account).order_by(Account.id)))

    @require("admin")
    @blp.arguments(AccountIn)
    @blp.response(201, AccountOut)
    def post(self, body):
        """Create an account."""
        with _db().session() as s:
            return accounts.create(s, body["id"], body["name"], actor=principal().actor)


class StateChangeOut(StrictSchema):
    id = fields.Integer()
    from_status = fields.String()
    to_status = fields.String()
    rule = fields.String()
    rate = fields.Float(allow_none=True, metadata={"description": "complaints per million allowed messages"})
    evidence = fields.Dict(metadata={"description": "the complaint ids and the figures behind the change"})
    actor = fields.String()
    note = fields.String()
    created_at = fields.DateTime()


class AccountDetailOut(AccountOut):
    rates = fields.Dict(metadata={"description": "complaints, allowed messages and the complaint rate over "
                                                 "the enforcement window, with the thresholds"})
    history = fields.List(fields.Nested(StateChangeOut), metadata={"description": "state changes, newest first"})


class NoteIn(StrictSchema):
    note = fields.String(required=True, validate=validate.Length(1, 2000))


def _detail(s, account_id: str) -> dict:
    from app.api.messages import service
    from app.services import enforcement

    acct = accounts.get(s, account_id)
    settings = service().policy().enforcement
    out = {k: getattr(acct, k) for k in ("id", "name", "status", "created_at")}
    out["rates"] = enforcement.rates(s, account_id, settings).to_dict(settings)
    out["history"] = enforcement.history(s, account_id)
    return out


@blp.route("/<account_id>")
class AccountView(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.response(200, AccountDetailOut)
    def get(self, account_id: str):
        """One account (a tenant sees only its own): status, complaint rates, state history."""
        account_id = scope_account(account_id)
        with _db().session() as s:
            return _detail(s, account_id)


@blp.route("/<account_id>/suspend")
class Suspend(MethodView):
    @require("admin")
    @blp.arguments(NoteIn)
    @blp.response(200, AccountDetailOut)
    def post(self, body, account_id: str):
        """Suspend an account by hand (a note is required): its very next pre-send check is rejected."""
        from app.services import enforcement

        with _db().session(immediate=True) as s:
            enforcement.suspend(s, account_id, body["note"], principal().actor)
        with _db().session() as s:
            return _detail(s, account_id)


@blp.route("/<account_id>/reinstate")
class Reinstate(MethodView):
    @require("admin")
    @blp.arguments(NoteIn)
    @blp.response(200, AccountDetailOut)
    def post(self, body, account_id: str):
        """Reinstate a warned or suspended account (a note is required). Terminated stays terminated."""
        from app.services import enforcement

        with _db().session(immediate=True) as s:
            enforcement.reinstate(s, account_id, body["note"], principal().actor)
        with _db().session() as s:
            return _detail(s, account_id)


@blp.route("/<account_id>/lists")
class Lists(MethodView):
    @require("admin")
    @blp.response(200, ListEntryOut(many=True))
    def get(self, account_id: str):
        """The account's custom block / review / allow lists."""
        with _db().session() as s:
            return accounts.list_terms(s, account_id)

    @require("admin")
    @blp.arguments(ListEntryIn)
    @blp.response(201, ListEntryOut(many=True))
    def post(self, body, account_id: str):
        """Add terms to one of the account's lists (existing terms are left as they are)."""
        with _db().session() as s:
            return accounts.add_terms(s, account_id, body["kind"], body["terms"], body["category"],
                                      actor=principal().actor,
                                      categories=current_app.extensions["smsguard.moderator"].ruleset.categories)


@blp.route("/<account_id>/lists/<int:entry_id>")
class ListEntry(MethodView):
    @require("admin")
    @blp.response(204)
    def delete(self, account_id: str, entry_id: int):
        """Remove one entry."""
        with _db().session() as s:
            accounts.remove_term(s, account_id, entry_id, actor=principal().actor)
