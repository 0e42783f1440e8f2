"""/v1/opt-outs: admins list and remove recipients' opt-outs."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api.auth import principal, require
from app.api.schemas import StrictSchema
from app.api.messages import service
from app.services import optouts

blp = Blueprint("optouts", __name__, url_prefix="/v1/opt-outs",
                description="Recipients who opted out of an account's promotional messages")


class OptOutQuery(StrictSchema):
    account = fields.String(load_default=None, validate=validate.Length(1, 64))
    phone = fields.String(load_default=None, validate=validate.Length(3, 32))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class OptOutOut(StrictSchema):
    id = fields.Integer()
    account_id = fields.String()
    phone = fields.String()
    source = fields.String(metadata={"description": "reply | complaint | admin"})
    detail = fields.String()
    created_at = fields.DateTime()


def _presend():
    return service().policy().presend


@blp.route("")
class OptOuts(MethodView):
    @require("admin")
    @blp.arguments(OptOutQuery, location="query")
    @blp.response(200, OptOutOut(many=True))
    def get(self, args):
        """List opt-outs, newest first (filter by account and/or phone)."""
        with current_app.extensions["smsguard.db"].session() as s:
            return optouts.list_opt_outs(s, args["account"], args["phone"], args["limit"], args["offset"],
                                         _presend())


@blp.route("/<int:opt_out_id>")
class OptOutEntry(MethodView):
    @require("admin")
    @blp.response(204)
    def delete(self, opt_out_id: int):
        """Remove an opt-out: the account may send promotional messages to the phone again."""
        with current_app.extensions["smsguard.db"].session(immediate=True) as s:
            optouts.remove(s, opt_out_id, principal().actor)
