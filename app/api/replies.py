"""POST /v1/replies: inbound replies, relayed from the carrier side by the sending platform
(platform or admin keys; never the tenant whose recipients replied). R / TD / T / N / 退订 /
取消订阅 / STOP / UNSUBSCRIBE opt out, START / UNSTOP opt back in (not out of an opt-out a
complaint made: only an admin lifts that)."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api.auth import principal, require, scope_account
from app.api.schemas import StrictSchema
from app.api.messages import service
from app.services import optouts

blp = Blueprint("replies", __name__, url_prefix="/v1/replies",
                description="Inbound replies: opt-out and opt-in keywords")


class ReplyIn(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(3, 32))
    text = fields.String(required=True, validate=validate.Length(0, 1000))
    account = fields.String(required=True, validate=validate.Length(1, 64),
                            metadata={"description": "the account replied to"})


class ReplyOut(StrictSchema):
    account_id = fields.String()
    phone = fields.String()
    action = fields.String(allow_none=True, metadata={"description": "opt_out, opt_in or null (not a keyword)"})
    changed = fields.Boolean(metadata={"description": "false when the recipient was already in that state"})


@blp.route("")
class Replies(MethodView):
    @require("platform", "admin")
    @blp.arguments(ReplyIn)
    @blp.response(200, ReplyOut)
    def post(self, body):
        """Record an inbound reply (platform or admin keys: replies come from the carrier side).
        An opt-out keyword stops the account's promotional messages to the phone; START / UNSTOP
        allows them again, unless a complaint made the opt-out (an admin lifts that)."""
        account = scope_account(body["account"])
        pol = service().policy()
        with current_app.extensions["smsguard.db"].session(immediate=True) as s:
            r = optouts.handle_reply(s, account, body["phone"], body["text"], principal().actor, pol.presend)
        return r.__dict__
