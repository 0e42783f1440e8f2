"""Schemas and helpers shared by /v1/signatures and /v1/templates (not a resource itself)."""
from __future__ import annotations

from flask import current_app
from marshmallow import ValidationError, fields, validate

from app.api.auth import principal
from app.api.problems import Problem
from app.api.schemas import StrictSchema, VerdictSchema
from app.services import review
from app.store.models import REVIEW_STATUSES, TEMPLATE_TYPES


def db():
    return current_app.extensions["smsguard.db"]


def moderator():
    return current_app.extensions["smsguard.moderator"]


def account_lists(account_id: str):
    return current_app.extensions["smsguard.lists"].get(account_id)


def submitting_account(named: str | None) -> str:
    """A tenant submits for its own account (naming another is a 404); an admin names one."""
    p = principal()
    if p.role == "tenant":
        if named not in (None, p.account_id):
            raise Problem(404, f"no account {named}")
        return p.account_id
    if not named:
        raise Problem(422, "name the account this submission is for",
                      errors={"account": ["required when an admin submits"]})
    return named


def reading_account(named: str | None) -> str | None:
    """The account filter of a read: a tenant only ever its own; reviewers/admins any or all."""
    p = principal()
    if p.role == "tenant":
        if named not in (None, p.account_id):
            raise Problem(404, f"no account {named}")
        return p.account_id
    return named or None


class DecisionIn(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(review.DECISIONS))
    reason = fields.String(load_default="", validate=validate.Length(0, 2000),
                           metadata={"description": "required to reject: what the customer must change"})


class WithdrawIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, review.REASON_MAX),
                           metadata={"description": "why the approval is taken back: what the customer reads "
                                                    "(required, at most 2000 characters)"})


class DecisionOut(StrictSchema):
    id = fields.Integer()
    decision = fields.String(metadata={"description": "approve | reject | withdraw (an approval taken back) | "
                                                      "pending (automatic, waiting for a reviewer)"})
    actor = fields.String(metadata={"description": "system, or who decided (reviewers and admins see "
                                                   "the key or user; tenants see 'reviewer')"})
    reason = fields.String()
    verdict = fields.Nested(VerdictSchema, allow_none=True)
    created_at = fields.DateTime()


class ListArgs(StrictSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(REVIEW_STATUSES))
    account = fields.String(load_default=None, validate=validate.Length(1, 64))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, None))


class TemplateListArgs(ListArgs):
    type = fields.String(load_default=None, validate=validate.OneOf(TEMPLATE_TYPES))


class SignatureRef(fields.Field):
    """A signature id (integer) or name (string)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("a signature id (integer) or name (string)")
        if isinstance(value, int) and value > 0:
            return value
        if isinstance(value, str) and value.strip() and len(value) <= 64:
            return value.strip()
        raise ValidationError("a signature id (integer) or name (string)")

    def _serialize(self, value, attr, obj, **kwargs):
        return value


def decision_dicts(session, kind: str, item_id: int) -> list[dict]:
    tenant = principal().role == "tenant"
    out = []
    for d in review.decisions(session, kind, item_id):
        actor = d.actor if not tenant or d.actor == review.SYSTEM else "reviewer"
        out.append({"id": d.id, "decision": d.decision, "actor": actor, "reason": d.reason,
                    "verdict": d.verdict, "created_at": d.created_at})
    return out


def common_out(session, kind: str, item) -> dict:
    decisions = decision_dicts(session, kind, item.id)
    final = [d for d in decisions if d["decision"] in review.FINAL_DECISIONS]
    return {"id": item.id, "account": item.account_id, "status": item.status, "verdict": item.verdict,
            "reason": (final[-1] if final else decisions[-1] if decisions else {}).get("reason", ""),
            "decisions": decisions, "created_at": item.created_at, "updated_at": item.updated_at}


WITHDRAW_409 = ("Not approved (pending, rejected or already withdrawn): only an approved item can be "
                "withdrawn. A problem body whose `current_status` says what the item is.")
