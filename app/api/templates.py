"""/v1/templates: message templates with ${variables}, linted, checked and reviewed."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api import review_schemas as rs
from app.api.auth import principal, require
from app.api.schemas import StrictSchema, VerdictSchema
from app.services import review
from app.store.models import TEMPLATE_TYPES

blp = Blueprint("templates", __name__, url_prefix="/v1/templates",
                description="Templates: submit (lint + content engine), list, review decisions")


class TemplateIn(StrictSchema):
    signature = rs.SignatureRef(required=True, metadata={"description": "the account's signature: id or name"})
    type = fields.String(required=True, validate=validate.OneOf(TEMPLATE_TYPES))
    content = fields.String(required=True, validate=validate.Length(1, 2000),
                            metadata={"description": "the text with ${name} variables (at most 500 "
                                                     "characters pass the lint)"})
    variables = fields.Dict(keys=fields.String(validate=validate.Length(1, 32)), values=fields.Raw(),
                            load_default=dict, validate=validate.Length(max=50),
                            metadata={"description": "{name: type}: code, number, money, date, time, name, "
                                                     "phone, url, text or text:N"})
    region = fields.String(load_default="cn", validate=validate.OneOf(review.REGIONS))
    account = fields.String(load_default=None, validate=validate.Length(1, 64),
                            metadata={"description": "admins: the account submitted for"})


class TemplateOut(StrictSchema):
    id = fields.Integer()
    account = fields.String()
    signature_id = fields.Integer()
    signature = fields.String(metadata={"description": "the signature's name"})
    type = fields.String()
    content = fields.String()
    variables = fields.Dict(keys=fields.String(), values=fields.String())
    region = fields.String()
    status = fields.String(metadata={"description": "pending | approved | rejected | withdrawn"})
    reason = fields.String(metadata={"description": "the reason of the latest decision"})
    verdict = fields.Nested(VerdictSchema, allow_none=True)
    decisions = fields.List(fields.Nested(rs.DecisionOut))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


def _out(session, tpl) -> dict:
    return {**rs.common_out(session, "template", tpl), "signature_id": tpl.signature_id,
            "signature": tpl.signature.name if tpl.signature else None, "type": tpl.type,
            "content": tpl.content, "variables": tpl.variables, "region": tpl.region}


@blp.route("")
class Templates(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.arguments(rs.TemplateListArgs, location="query")
    @blp.response(200, TemplateOut(many=True))
    def get(self, args):
        """List templates, newest first (a tenant sees its own)."""
        account = rs.reading_account(args["account"])
        with rs.db().session() as s:
            items = review.list_items(s, "template", account, args["status"], args["type"],
                                      limit=args["limit"], offset=args["offset"])
            return [_out(s, it) for it in items]

    @require("tenant", "admin")
    @blp.arguments(TemplateIn)
    @blp.response(201, TemplateOut)
    def post(self, body):
        """Submit a template: lint + content engine with the variables masked; rejected at once with
        the reasons, pending, or approved per the review policy. Templates never change: to change
        one, submit a new one."""
        account = rs.submitting_account(body["account"])
        with rs.db().session() as s:
            tpl = review.submit_template(s, rs.moderator(), account, body["signature"], body["type"],
                                         body["content"], body["variables"], body["region"],
                                         actor=principal().actor, account_lists=rs.account_lists(account))
            return _out(s, tpl)


@blp.route("/<int:item_id>")
class TemplateView(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.response(200, TemplateOut)
    def get(self, item_id: int):
        """One template with its verdict (spans index the content as written) and every decision."""
        account = rs.reading_account(None)
        with rs.db().session() as s:
            return _out(s, review.get(s, "template", item_id, account))


@blp.route("/<int:item_id>/decision")
class TemplateDecision(MethodView):
    @require("reviewer", "admin")
    @blp.arguments(rs.DecisionIn)
    @blp.response(200, TemplateOut)
    def post(self, body, item_id: int):
        """Approve or reject a pending template (409 if it is already decided: approved templates
        are immutable)."""
        p = principal()
        with rs.db().session(immediate=True) as s:
            tpl = review.decide(s, "template", item_id, body["decision"], body["reason"], p.actor, p.role)
            return _out(s, tpl)


@blp.route("/<int:item_id>/withdraw")
class TemplateWithdraw(MethodView):
    @require("reviewer", "admin")
    @blp.arguments(rs.WithdrawIn)
    @blp.response(200, TemplateOut)
    @blp.alt_response(409, description=rs.WITHDRAW_409)
    def post(self, body, item_id: int):
        """Withdraw an approved template (reviewers, admins).

        Its status becomes `withdrawn` for good (a change is a new template); a decision
        `withdraw` with the reason joins its history, and an event `template.withdrawn` is
        recorded. The pre-send check refuses it with `TPL_WITHDRAWN` from the next check on, on
        every worker. A template that is not approved (pending, rejected, already withdrawn) is 409.
        """
        p = principal()
        with rs.db().session(immediate=True) as s:
            item = review.withdraw(s, "template", item_id, body["reason"], p.actor, p.role)
            return _out(s, item)
