"""POST /v1/messages/check: the pre-send check (app/services/presend.py), on every message.

The request's nonce is stored in the check's own write transaction (auth.nonce_in_view), so a
check costs one read (the key) and one write transaction."""
from __future__ import annotations

import json
from datetime import UTC

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate, validates_schema, ValidationError

from app import metrics
from app.api import auth, json_body
from app.api.auth import principal, require, scope_account
from app.api.problems import Problem
from app.api.schemas import StrictBoolean, StrictSchema, VerdictSchema
from app.services.presend import CheckRequest, PresendService

blp = Blueprint("messages", __name__, url_prefix="/v1/messages",
                description="The pre-send check the sending platform makes for every message")
blp.after_request(auth.finish_deferred_nonce)

PARAM_VALUE = (str, int, float)


class CheckIn(StrictSchema):
    template_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    params = fields.Dict(keys=fields.String(validate=validate.Length(1, 32)), load_default=dict,
                         metadata={"description": "the template's variables: {name: value} (string or number)"})
    phone = fields.String(required=True, validate=validate.Length(3, 32),
                          metadata={"description": "E.164 (+8613800138000) or national in the default region"})
    message_id = fields.String(load_default=None, validate=validate.Length(1, 128),
                               metadata={"description": "the caller's id for this message (made up if absent)"})
    send_at = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                                   metadata={"description": "when it will be sent (default now): the send window "
                                                            "uses it; frequency limits count by the check's own "
                                                            "clock. Must lie between 5 minutes before now and 7 "
                                                            "days after it (presend.send_at in rules/policy.yaml), "
                                                            "else 422"})
    account = fields.String(load_default=None, validate=validate.Length(1, 64),
                            metadata={"description": "admins name the account; a tenant's own is implied"})
    explain = StrictBoolean(load_default=False,
                             metadata={"description": "true: the answer carries the Verdict's `explanation` "
                                                      "(each reason's points, the thresholds, what decided it). "
                                                      "Left out by default to keep the per-message answer small; "
                                                      "the record of checks (GET /v1/checks/<id>) always has it"})

    @validates_schema
    def _params(self, data, **_):
        params = data.get("params") or {}
        if len(params) > 50:
            raise ValidationError("at most 50 params", "params")
        bad = [k for k, v in params.items() if isinstance(v, bool) or not isinstance(v, PARAM_VALUE)]
        if bad:
            raise ValidationError(f"param values are strings or numbers: {', '.join(bad)}", "params")


class CheckOut(VerdictSchema):
    message_id = fields.String()
    phone = fields.String(metadata={"description": "the recipient in E.164"})
    text = fields.String(allow_none=True, metadata={"description": "the filled message the content engine "
                                                                    "checked (spans index it)"})


CHECK_IN = CheckIn()
_CHECK_KEYS = frozenset(CHECK_IN.fields)


def _str(v, lo: int, hi: int) -> bool:
    return type(v) is str and lo <= len(v) <= hi


def load_check(data) -> dict:
    """CheckIn.load for the hot path: the common well-formed body is checked by hand (~20x
    cheaper than webargs + marshmallow); anything unusual (send_at, a doubtful value) goes
    through the schema itself, which also words every 422."""
    if type(data) is dict and data.keys() <= _CHECK_KEYS and data.get("send_at") is None:
        tid, params = data.get("template_id"), data.get("params", {})
        phone, mid, acct = data.get("phone"), data.get("message_id"), data.get("account")
        explain = data.get("explain", False)
        if (type(tid) is int and tid >= 1 and type(params) is dict and len(params) <= 50
                and all(_str(k, 1, 32) and type(v) in PARAM_VALUE for k, v in params.items())
                and _str(phone, 3, 32) and (mid is None or _str(mid, 1, 128))
                and (acct is None or _str(acct, 1, 64)) and type(explain) is bool):
            return {"template_id": tid, "params": params, "phone": phone, "message_id": mid,
                    "send_at": None, "account": acct, "explain": explain}
    try:
        return CHECK_IN.load(data if data is not None else {})
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        detail = "the request body failed validation: " + "; ".join(
            f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items())
        raise Problem(422, detail, errors=errors) from None


def service() -> PresendService:
    svc = current_app.extensions.get("smsguard.presend")
    if svc is None:
        svc = current_app.extensions["smsguard.presend"] = PresendService(
            current_app.extensions["smsguard.db"], current_app.extensions["smsguard.moderator"],
            current_app.extensions.get("smsguard.lists"), current_app.config["SMSGUARD"].presend_fail_mode,
            hotpath=auth.hotpath())
    return svc


@blp.route("/check")
class Check(MethodView):
    @auth.nonce_in_view
    @require("tenant", "admin")
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": CheckIn}}})
    @blp.response(200, CheckOut)
    @blp.alt_response(422, description="the body failed validation (problem+json with per-field errors)")
    def post(self):
        """Check one message before it is sent: account state, template and signature approved,
        params, opt-out, send window, frequency limits, then the content of the filled message.
        Answers the Verdict plus message_id (without `explanation` unless the body asks with
        `"explain": true`); a failed check is a reject whose reason names its rule."""
        body = load_check(json_body())  # parsed once, by the /v1 guard
        if principal().role == "tenant" and body["account"] not in (None, principal().account_id):
            scope_account(body["account"])  # 404, as if it did not exist
        account = scope_account(body["account"])
        req = CheckRequest(account, body["template_id"], body["params"], body["phone"],
                           body["message_id"], body["send_at"])
        result = service().check(req, before_write=auth.consume_nonce)
        auth.nonce_committed()
        metrics.verdict_counter("presend", result.verdict.verdict).inc()
        # the Verdict JSON is already exact: serialise it directly (CheckOut documents it)
        return current_app.response_class(json.dumps(result.to_dict(explain=body["explain"]), ensure_ascii=False),
                                          mimetype="application/json")
