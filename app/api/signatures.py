"""/v1/signatures: SMS signatures (the 【name】 a message is sent under) and their review."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api import review_schemas as rs
from app.api.auth import principal, require
from app.api.schemas import StrictSchema, VerdictSchema
from app.services import review

blp = Blueprint("signatures", __name__, url_prefix="/v1/signatures",
                description="Signatures: submit (lint + content engine), list, review decisions")


class SignatureIn(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 64),
                         metadata={"description": "2-12 Chinese characters, letters or digits, without 【】"})
    note = fields.String(load_default="", validate=validate.Length(0, 1000),
                         metadata={"description": "for the reviewer: who you are, what the name stands for"})
    account = fields.String(load_default=None, validate=validate.Length(1, 64),
                            metadata={"description": "admins: the account submitted for (a tenant's own "
                                                     "account is implied)"})


class SignatureOut(StrictSchema):
    id = fields.Integer()
    account = fields.String()
    name = fields.String()
    note = fields.String()
    status = fields.String(metadata={"description": "pending | approved | rejected | withdrawn"})
    reason = fields.String(metadata={"description": "the reason of the latest decision"})
    verdict = fields.Nested(VerdictSchema, allow_none=True)
    decisions = fields.List(fields.Nested(rs.DecisionOut))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


def _out(session, sig) -> dict:
    return {**rs.common_out(session, "signature", sig), "name": sig.name, "note": sig.note}


@blp.route("")
class Signatures(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.arguments(rs.ListArgs, location="query")
    @blp.response(200, SignatureOut(many=True))
    def get(self, args):
        """List signatures, newest first (a tenant sees its own)."""
        account = rs.reading_account(args["account"])
        with rs.db().session() as s:
            items = review.list_items(s, "signature", account, args["status"], limit=args["limit"],
                                      offset=args["offset"])
            return [_out(s, it) for it in items]

    @require("tenant", "admin")
    @blp.arguments(SignatureIn)
    @blp.response(201, SignatureOut)
    def post(self, body):
        """Submit a signature: rejected at once with the reasons, pending, or approved per policy."""
        account = rs.submitting_account(body["account"])
        with rs.db().session() as s:
            sig = review.submit_signature(s, rs.moderator(), account, body["name"], body["note"],
                                          actor=principal().actor, account_lists=rs.account_lists(account))
            return _out(s, sig)


@blp.route("/<int:item_id>")
class SignatureView(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.response(200, SignatureOut)
    def get(self, item_id: int):
        """One signature with its verdict and every decision."""
        account = rs.reading_account(None)
        with rs.db().session() as s:
            return _out(s, review.get(s, "signature", item_id, account))


@blp.route("/<int:item_id>/decision")
class SignatureDecision(MethodView):
    @require("reviewer", "admin")
    @blp.arguments(rs.DecisionIn)
    @blp.response(200, SignatureOut)
    def post(self, body, item_id: int):
        """Approve or reject a pending signature (409 if it is already decided)."""
        p = principal()
        with rs.db().session(immediate=True) as s:
            sig = review.decide(s, "signature", item_id, body["decision"], body["reason"], p.actor, p.role)
            return _out(s, sig)


@blp.route("/<int:item_id>/withdraw")
class SignatureWithdraw(MethodView):
    @require("reviewer", "admin")
    @blp.arguments(rs.WithdrawIn)
    @blp.response(200, SignatureOut)
    @blp.alt_response(409, description=rs.WITHDRAW_409)
    def post(self, body, item_id: int):
        """Withdraw an approved signature (reviewers, admins).

        Its status becomes `withdrawn` for good (the name may be submitted again, and reviewed
        anew); a decision `withdraw` with the reason joins its history, and an event
        `signature.withdrawn` is recorded. The pre-send check refuses every template under it
        with `TPL_WITHDRAWN` from the next check on, and no new template may name it. A
        signature that is not approved (pending, rejected, already withdrawn) is 409.
        """
        p = principal()
        with rs.db().session(immediate=True) as s:
            item = review.withdraw(s, "signature", item_id, body["reason"], p.actor, p.role)
            return _out(s, item)
