"""/v1/feedback: "this verdict was wrong" (issue 16), app/services/feedback.py.

- ``POST /v1/feedback``: tenants about their own checks (or a text), reviewers and admins about
  any; exactly one of ``check_id``, ``message_id``, ``text``. Stored as pending.
- ``GET /v1/feedback``, ``GET /v1/feedback/<id>``: reviewers and admins all, tenants their own.
- ``POST /v1/feedback/<id>/decision``: reviewers and admins accept (with actions: an account
  allow / block term, a training example) or dismiss it."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, ValidationError, fields, validate, validates_schema

from app.api.auth import principal, require
from app.api.checks import NO_NUL, own_account
from app.api.problems import Problem
from app.api.schemas import StrictSchema, VerdictSchema
from app.engine.classifier import LABELS
from app.services import checks
from app.services import feedback as fbs
from app.store.records import FEEDBACK_STATUSES

blp = Blueprint("feedback", __name__, url_prefix="/v1/feedback",
                description="Feedback on verdicts, and the reviewers' decisions on it")


def _db():
    return current_app.extensions["smsguard.db"]


class FeedbackIn(StrictSchema):
    check_id = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, 2**63 - 1),
                              metadata={"description": "a recorded check (GET /v1/checks)"})
    message_id = fields.String(load_default=None, validate=[validate.Length(1, 128), NO_NUL],
                               metadata={"description": "the account's latest check with this message id"})
    text = fields.String(load_default=None, validate=[validate.Length(1, 5000), NO_NUL],
                         metadata={"description": "a text (scored by the engine when the feedback is filed)"})
    expected = fields.String(required=True, validate=validate.OneOf(fbs.EXPECTED),
                             metadata={"description": "the verdict it should have had"})
    category = fields.String(load_default=None, validate=validate.OneOf(LABELS), metadata={
        "description": "a taxonomy id: with reject, the category it belongs to; with allow, the one it was wrongly "
                       "given (marketing: it is marketing, and allowed)"})
    note = fields.String(load_default="", validate=[validate.Length(0, fbs.NOTE_MAX), NO_NUL])
    account = fields.String(load_default=None, validate=[validate.Length(1, 64), NO_NUL], metadata={
        "description": "reviewers and admins: whose message (needed with message_id); a tenant's own is implied"})

    @validates_schema
    def _one(self, data, **_):
        given = [k for k in ("check_id", "message_id", "text") if data.get(k) is not None]
        if len(given) != 1:
            raise ValidationError("give exactly one of check_id, message_id or text "
                                  f"(got {', '.join(given) or 'none'})", "_schema")


class FeedbackOut(StrictSchema):
    id = fields.Integer()
    created_at = fields.DateTime()
    account_id = fields.String(allow_none=True)
    submitted_by = fields.String()
    submitted_role = fields.String()
    check_id = fields.Integer(allow_none=True, metadata={"description": "null once the check is past retention"})
    message_id = fields.String(allow_none=True)
    text = fields.String(allow_none=True, metadata={"description": "a copy of the text (as its check stored it)"})
    text_mode = fields.String()
    engine_verdict = fields.String(allow_none=True)
    verdict = fields.Nested(VerdictSchema, allow_none=True, metadata={"description": "what the engine said"})
    expected = fields.String()
    category = fields.String(allow_none=True)
    note = fields.String()
    status = fields.String(metadata={"description": "pending | accepted | dismissed"})
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_note = fields.String()
    actions = fields.List(fields.Dict(), metadata={"description": "what accepting it did: {action, term, term_id, "
                                                                  "example_id, labels, ...}"})
    created = fields.Boolean(metadata={"description": "POST: false when the same pending feedback was already filed"})


class FeedbackQuery(StrictSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(FEEDBACK_STATUSES))
    account = fields.String(load_default=None, validate=[validate.Length(1, 64), NO_NUL])
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(load_default=None, validate=validate.Length(1, 400))


class FeedbackPageOut(StrictSchema):
    items = fields.List(fields.Nested(FeedbackOut))
    next_cursor = fields.String(allow_none=True)


class FeedbackDecisionIn(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(fbs.DECISIONS))
    actions = fields.List(fields.String(validate=validate.OneOf(fbs.ACTIONS)), load_default=list,
                          validate=validate.Length(0, 3), metadata={
                              "description": "with accept: account_allow_term / account_block_term (a tenant's "
                                             "feedback about its own account; expected allow / reject), "
                                             "training_example (a full text)"})
    term = fields.String(load_default=None, validate=[validate.Length(1, fbs.TERM_MAX), NO_NUL], metadata={
        "description": "the account term (allow: defaults to the evidence of the keyword that decided the verdict)"})
    category = fields.String(load_default=None, validate=validate.OneOf(LABELS), metadata={
        "description": "overrides the feedback's category (a block term's, a reject example's label)"})
    note = fields.String(load_default="", validate=[validate.Length(0, fbs.NOTE_MAX), NO_NUL])


def out(fb, created: bool | None = None) -> dict:
    d = {k: getattr(fb, k) for k in ("id", "created_at", "account_id", "submitted_by", "submitted_role", "check_id",
                                     "message_id", "text", "text_mode", "engine_verdict", "verdict", "expected",
                                     "category", "note", "status", "decided_by", "decided_at", "decision_note",
                                     "actions")}
    if created is not None:
        d["created"] = created
    return d


def _scope() -> str | None:
    p = principal()
    return p.account_id if p.role == "tenant" else None


@blp.route("")
class FeedbackList(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.arguments(FeedbackIn)
    @blp.response(201, FeedbackOut)
    @blp.alt_response(200, schema=FeedbackOut, description="the same pending feedback was already filed")
    def post(self, body):
        """File feedback about a recorded check (``check_id``), the account's latest check with a
        ``message_id``, or a ``text``: the verdict it should have had, the category, a note.
        Tenants: their own checks only (another account's is a 404)."""
        p = principal()
        if p.role == "tenant":
            account = own_account(body["account"])
        else:
            account = body["account"]
        settings = current_app.config["SMSGUARD"]
        with _db().session(immediate=True) as s:
            fb, created = fbs.submit(s, actor=p.actor, role=p.role, account=account, expected=body["expected"],
                                     check_id=body["check_id"], message_id=body["message_id"], text=body["text"],
                                     category=body["category"], note=body["note"],
                                     moderator=current_app.extensions["smsguard.moderator"],
                                     lists=current_app.extensions.get("smsguard.lists"),
                                     max_chars=settings.max_sms_chars)
            result = out(fb, created)
        return result, 201 if created else 200

    @require("tenant", "reviewer", "admin")
    @blp.arguments(FeedbackQuery, location="query", as_kwargs=False, unknown=RAISE)
    @blp.response(200, FeedbackPageOut)
    @blp.alt_response(400, description="a cursor this service did not give")
    def get(self, args):
        """Feedback, newest first (``status``, ``account``); tenants: their own account's."""
        account = own_account(args["account"])
        secret = current_app.config["SMSGUARD"].secret_key
        scope = f"feedback:{args['status']}:{account}"
        after = None
        if args["cursor"]:
            try:
                after = checks.decode_cursor(secret, args["cursor"], scope)
            except checks.BadCursor as exc:
                raise Problem(400, str(exc), errors={"cursor": [str(exc)]}) from None
        with _db().session() as s:
            rows, more = fbs.list_feedback(s, status=args["status"], account=account, limit=args["limit"], after=after)
            items = [out(f) for f in rows]
        nxt = checks.encode_cursor(secret, rows[-1].created_at, rows[-1].id, scope) if more and rows else None
        return {"items": items, "next_cursor": nxt}


@blp.route("/<int:feedback_id>")
class FeedbackView(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.response(200, FeedbackOut)
    def get(self, feedback_id: int):
        """One feedback item (a tenant: its own account's only)."""
        with _db().session() as s:
            return out(fbs.get(s, feedback_id, _scope()))


@blp.route("/<int:feedback_id>/decision")
class Decision(MethodView):
    @require("reviewer", "admin")
    @blp.arguments(FeedbackDecisionIn)
    @blp.response(200, FeedbackOut)
    @blp.alt_response(409, description="already decided")
    def post(self, body, feedback_id: int):
        """Accept (doing ``actions``) or dismiss a pending feedback item."""
        with _db().session(immediate=True) as s:
            fb = fbs.decide(s, feedback_id, body["decision"], principal().actor, body["actions"], body["note"],
                            term=body["term"], category=body["category"])
            result = out(fb)
        lists = current_app.extensions.get("smsguard.lists")
        if lists is not None and result["account_id"] and any(a["action"].startswith("account_")
                                                               for a in result["actions"]):
            lists.invalidate(result["account_id"])
        return result
