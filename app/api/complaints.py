"""POST /v1/complaints: a complaint about an account's message (idempotent on external_id)."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api.accounts import StateChangeOut
from app.api.auth import principal, require, scope_account
from app.api.schemas import StrictSchema
from app.api.messages import service
from app.services import checks, optouts

blp = Blueprint("complaints", __name__, url_prefix="/v1/complaints",
                description="Complaints about messages; they drive the complaint rate and suspensions")


class ComplaintIn(StrictSchema):
    account = fields.String(load_default=None, validate=validate.Length(1, 64),
                            metadata={"description": "the account complained about (a tenant's own is implied)"})
    phone = fields.String(required=True, validate=validate.Length(3, 32))
    message_id = fields.String(load_default=None, validate=validate.Length(1, 128))
    reason = fields.String(load_default="", validate=validate.Length(0, 2000))
    source = fields.String(required=True, validate=validate.OneOf(optouts.SOURCES))
    external_id = fields.String(load_default=None, validate=validate.Length(1, 128),
                                metadata={"description": "the source's own id: the same (source, external_id) "
                                                         "sent again is the same complaint"})


class ComplaintOut(StrictSchema):
    id = fields.Integer()
    account_id = fields.String()
    phone = fields.String()
    message_id = fields.String(allow_none=True)
    reason = fields.String()
    source = fields.String()
    external_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    created = fields.Boolean(metadata={"description": "false: this external_id was already filed"})
    account_status = fields.String()
    state_change = fields.Nested(StateChangeOut, allow_none=True)
    check_id = fields.Integer(allow_none=True, metadata={
        "description": "the recorded check of this message id (GET /v1/checks/<id>); null when the message id is "
                       "absent or unknown"})


@blp.route("")
class Complaints(MethodView):
    @require("tenant", "admin")
    @blp.arguments(ComplaintIn)
    @blp.response(201, ComplaintOut)
    @blp.alt_response(200, schema=ComplaintOut, description="already filed (same source and external_id)")
    def post(self, body):
        """File a complaint: stored, the phone opted out of the account's promotional messages,
        the account's complaint rate evaluated (warn / suspend / terminate). 200 when the same
        (source, external_id) was already filed."""
        account = scope_account(body["account"])
        pol = service().policy()
        db = current_app.extensions["smsguard.db"]
        with db.session(immediate=True) as s:
            r = optouts.file_complaint(s, account, body["phone"], body["reason"], body["source"],
                                       principal().actor, pol.enforcement, message_id=body["message_id"],
                                       external_id=body["external_id"], presend=pol.presend)
            c = r.complaint
            out = {k: getattr(c, k) for k in ("id", "account_id", "phone", "message_id", "reason", "source",
                                              "external_id", "created_at")}
            out.update(created=r.created, account_status=r.account_status, state_change=r.change,
                       check_id=checks.check_of_message(s, account, c.message_id))  # the record of checks
        return out, 201 if r.created else 200
