"""/v1/moderate: the content engine on one text, with the account's own lists."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app import metrics
from app.api.auth import principal, require
from app.api.problems import Problem
from app.api.schemas import StrictSchema, VerdictSchema
from app.services import checks

blp = Blueprint("moderation", __name__, url_prefix="/v1/moderate",
                description="Score a text with the content engine")


class ModerateIn(StrictSchema):
    text = fields.String(required=True, validate=validate.Length(min=1))
    account = fields.String(load_default=None, validate=validate.Length(1, 64),
                            metadata={"description": "whose custom lists apply (reviewers and admins; "
                                                     "a tenant's own account is implied)"})


@blp.route("")
class Moderate(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.arguments(ModerateIn)
    @blp.response(200, VerdictSchema)
    def post(self, body):
        """Score a text: verdict, categories, score and the reasons with their spans."""
        settings = current_app.config["SMSGUARD"]
        if len(body["text"]) > settings.max_sms_chars:
            raise Problem(422, f"text is longer than the limit of {settings.max_sms_chars} characters",
                          errors={"text": [f"longer than {settings.max_sms_chars} characters"]},
                          limit=settings.max_sms_chars)
        p = principal()
        account = p.account_id if p.role == "tenant" else body["account"]
        lists = current_app.extensions["smsguard.lists"].get(account)
        verdict = current_app.extensions["smsguard.moderator"].check(body["text"], account_lists=lists)
        metrics.verdict_counter("moderate", verdict.verdict).inc()
        # the record of checks: a tenant's own traffic; a reviewer's or admin's call is recorded
        # without an account (trying a text against an account's lists is not that account's traffic)
        checks.record_moderate(current_app, account if p.role == "tenant" else None, body["text"], verdict)
        return verdict.to_dict()
