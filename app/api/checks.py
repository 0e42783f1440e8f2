"""/v1/checks and /v1/stats: the record of checks (issue 16), app/services/checks.py.

- ``GET /v1/checks``: recorded checks, newest first, filtered by time range, account, verdict,
  category, rule, message id, phone and source, one page at a time (an opaque ``cursor``).
- ``GET /v1/checks/<id>``: one check with the whole Verdict as answered (evidence masked as
  SMSGUARD_CHECK_TEXT says), its complaints and the feedback about it.
- ``GET /v1/stats``: volume, reject and review rates over time, per category, rule and account.

Tenants see their own account's rows only (another account's check is a 404, not a 403);
reviewers and admins see every account's and may name one."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, fields, validate

from app.api.auth import principal, require
from app.api.problems import Problem
from app.api.schemas import StrictSchema, VerdictSchema
from app.services import checks, presend
from app.services.accounts import ACCOUNT_ID
from app.services.errors import Invalid

blp = Blueprint("checks", __name__, url_prefix="/v1",
                description="The record of checks: every pre-send check and /v1/moderate call, and their figures")

RULE_ID = r"^[A-Z][A-Z0-9_]{1,63}$"
#: no NUL character: PostgreSQL cannot store or compare one (a 422, not a 500)
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="must not contain a NUL character")
MAX_ID = 2**63 - 1
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


@blp.record_once
def _install(state) -> None:
    """The app's check recorder (per process; its writer thread starts with the first record)."""
    checks.install(state.app)


def _db():
    return current_app.extensions["smsguard.db"]


def _secret() -> str:
    return current_app.config["SMSGUARD"].secret_key


def own_account(account: str | None) -> str | None:
    """The account a read is limited to: a tenant's own (naming another: 404, as if it did not
    exist); reviewers and admins: the one they name, or None for all."""
    p = principal()
    if p.role == "tenant":
        if account not in (None, p.account_id):
            raise Problem(404, f"no account {account}")
        return p.account_id
    return account


def time_range(args: dict, default: timedelta, longest: timedelta) -> tuple[datetime, datetime]:
    """[from, to): ``to`` defaults to now, ``from`` to ``to - default``; from < to, at most
    ``longest`` apart, else 422."""
    for name, key in (("from", "from_"), ("to", "to")):
        t = args.get(key)
        if t is not None and not EARLIEST <= t <= LATEST:
            raise Problem(422, f"{name} must lie between {EARLIEST:%Y} and {LATEST:%Y}",
                          errors={name: ["out of range"]})
    end = args.get("to") or datetime.now(UTC)
    start = args.get("from_") or end - default
    if start >= end:
        raise Problem(422, "from must be before to", errors={"from": ["must be before to"]})
    if end - start > longest:
        raise Problem(422, f"the time range is longer than {longest.days} days: narrow it (or page through "
                           f"several ranges)", errors={"from": [f"at most {longest.days} days before to"]},
                      limit_days=longest.days)
    return start, end


class RangeQuery(StrictSchema):
    from_ = fields.AwareDateTime(data_key="from", load_default=None, default_timezone=UTC,
                                 metadata={"description": "ISO 8601; no zone = UTC (default: see the route)"})
    to = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                              metadata={"description": "ISO 8601, exclusive; no zone = UTC (default now)"})
    account = fields.String(load_default=None, validate=validate.Regexp(ACCOUNT_ID.pattern),
                            metadata={"description": "reviewers and admins: one account; a tenant's own is implied"})
    source = fields.String(load_default=None, validate=validate.OneOf(checks.SOURCES))


class ChecksQuery(RangeQuery):
    verdict = fields.String(load_default=None, validate=validate.OneOf(checks.VERDICTS))
    category = fields.String(load_default=None, validate=[validate.Length(1, 64), NO_NUL],
                             metadata={"description": "a taxonomy id (checks carrying it)"})
    rule = fields.String(load_default=None, validate=validate.Regexp(RULE_ID),
                         metadata={"description": "a rule id, e.g. KW_GAMBLING_CASINO (checks whose reasons name it)"})
    message_id = fields.String(load_default=None, validate=[validate.Length(1, 128), NO_NUL])
    phone = fields.String(load_default=None, validate=[validate.Length(3, 32), NO_NUL],
                          metadata={"description": "E.164 or national in the default region (pre-send checks)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None, validate=validate.Length(1, 400),
                           metadata={"description": "next_cursor of the previous page (same filters)"})


class CheckSummaryOut(StrictSchema):
    id = fields.Integer()
    at = fields.DateTime()
    source = fields.String(metadata={"description": "presend | moderate"})
    account_id = fields.String(allow_none=True)
    message_id = fields.String(allow_none=True)
    template_id = fields.Integer(allow_none=True)
    phone = fields.String(allow_none=True, metadata={"description": "as SMSGUARD_CHECK_TEXT allows: E.164 (full), "
                                                                    "+86*******8000 (masked), null (none)"})
    verdict = fields.String()
    categories = fields.List(fields.String())
    rules = fields.List(fields.String())
    score = fields.Float()
    forced_by = fields.String(allow_none=True)
    ruleset_version = fields.String(allow_none=True)
    model_version = fields.String(allow_none=True)
    text_mode = fields.String(metadata={"description": "full | masked (digits and contact ids replaced by *, same "
                                                      "length: spans still index it) | none"})
    text = fields.String(allow_none=True)


class CheckPageOut(StrictSchema):
    items = fields.List(fields.Nested(CheckSummaryOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class ComplaintRefOut(StrictSchema):
    id = fields.Integer()
    source = fields.String()
    reason = fields.String()
    external_id = fields.String(allow_none=True)
    created_at = fields.DateTime()


class FeedbackRefOut(StrictSchema):
    id = fields.Integer()
    expected = fields.String()
    status = fields.String()
    created_at = fields.DateTime()


class CheckRecordOut(CheckSummaryOut):
    result = fields.Nested(VerdictSchema, metadata={"description": "the Verdict as answered (evidence and words "
                                                                   "masked or left out as text_mode says)"})
    complaints = fields.List(fields.Nested(ComplaintRefOut), metadata={
        "description": "complaints filed with this check's account and message id"})
    feedback = fields.List(fields.Nested(FeedbackRefOut))


def _summary(r) -> dict:
    get = r.get if isinstance(r, dict) else (lambda k: getattr(r, k))
    out = {k: get(k) for k in ("id", "at", "source", "account_id", "message_id", "template_id", "phone", "verdict",
                               "score", "forced_by", "ruleset_version", "model_version", "text_mode", "text")}
    out["categories"] = [c for c in (get("categories") or "").split(",") if c]
    out["rules"] = [c for c in (get("rules") or "").split(",") if c]
    return out


@blp.route("/checks")
class Checks(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.arguments(ChecksQuery, location="query", as_kwargs=False, unknown=RAISE)
    @blp.response(200, CheckPageOut)
    @blp.alt_response(400, description="a cursor this service did not give, or one from a query with other filters")
    def get(self, args):
        """Recorded checks, newest first: filter by time range (from/to, at most 31 days; default
        the last 24 hours), account, verdict, category, rule, message id, phone and source; page
        with ``cursor``. Records appear within about a second of the check."""
        account = own_account(args["account"])
        start, end = time_range(args, timedelta(days=1), timedelta(days=checks.MAX_LIST_DAYS))
        if args["category"] is not None:
            known = set(getattr(current_app.extensions["smsguard.moderator"].ruleset, "categories", None) or ())
            from app.engine.classifier import LABELS

            if args["category"] not in known | set(LABELS):
                raise Problem(422, f"category {args['category']!r} is not a taxonomy id",
                              errors={"category": ["not a taxonomy id"]})
        phone = None
        if args["phone"] is not None:
            try:
                phone = presend.normalize_phone(args["phone"], _presend_settings())
            except Invalid as exc:
                raise Problem(422, exc.detail, errors={"phone": ["not a valid phone number"]}) from None
        f = checks.Filters(start, end, account, args["verdict"], args["category"], args["rule"], args["message_id"],
                           phone, args["source"])
        after = None
        if args["cursor"]:
            try:
                after = checks.decode_cursor(_secret(), args["cursor"], f.scope())
            except checks.BadCursor as exc:
                raise Problem(400, str(exc), errors={"cursor": [str(exc)]}) from None
        with _db().session() as s:
            rows, nxt = checks.list_checks(s, f, args["limit"], after, _secret())
        return {"items": [_summary(r) for r in rows], "next_cursor": nxt}


def _presend_settings():
    from app.api.messages import service

    return service().policy().presend


@blp.route("/checks/<int(max=9223372036854775807):check_id>")
class CheckView(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.response(200, CheckRecordOut)
    def get(self, check_id: int):
        """One recorded check: its fields, the whole Verdict as answered, the complaints filed
        about its message id and the feedback about it (a tenant: its own checks only)."""
        from sqlalchemy import select

        from app.store.records import Feedback

        p = principal()
        with _db().session() as s:
            rec = checks.get_check(s, check_id)
            if rec is None or (p.role == "tenant" and rec.account_id != p.account_id):
                raise Problem(404, f"no check {check_id}")
            out = _summary(rec)
            out["result"] = rec.result
            out["complaints"] = [{"id": c.id, "source": c.source, "reason": c.reason, "external_id": c.external_id,
                                  "created_at": c.created_at}
                                 for c in checks.complaints_of(s, rec.account_id, rec.message_id)]
            out["feedback"] = [{"id": f.id, "expected": f.expected, "status": f.status, "created_at": f.created_at}
                               for f in s.scalars(select(Feedback).where(Feedback.check_id == rec.id)
                                                  .order_by(Feedback.id).limit(100))]
        return out


class StatsQuery(RangeQuery):
    bucket = fields.String(load_default=None, validate=validate.OneOf(("hour", "day")),
                           metadata={"description": "hour (ranges up to 14 days) or day (UTC days); default: hour "
                                                    "for ranges up to 2 days, else day"})


class FiguresOut(StrictSchema):
    checks = fields.Integer()
    allow = fields.Integer()
    review = fields.Integer()
    reject = fields.Integer()
    reject_rate = fields.Float(allow_none=True, metadata={"description": "reject / checks (null without checks)"})
    review_rate = fields.Float(allow_none=True, metadata={"description": "review / checks"})


class PointOut(FiguresOut):
    at = fields.DateTime(metadata={"description": "the bucket's start (UTC)"})


class NamedOut(FiguresOut):
    name = fields.String(allow_none=True, metadata={"description": "the category, rule or account (null: no account)"})


class StatsOut(StrictSchema):
    from_ = fields.DateTime(data_key="from", metadata={"description": "the range counted: whole UTC hours"})
    to = fields.DateTime()
    bucket = fields.String()
    account = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    totals = fields.Nested(FiguresOut)
    series = fields.List(fields.Nested(PointOut), metadata={"description": "every bucket of the range, zeros included"})
    categories = fields.List(fields.Nested(NamedOut), metadata={
        "description": "checks carrying each category (a check with two counts in both)"})
    rules = fields.List(fields.Nested(NamedOut), metadata={"description": "the 50 rules found most often"})
    accounts = fields.List(fields.Nested(NamedOut), allow_none=True, metadata={
        "description": "reviewers and admins without an account filter: the 50 busiest accounts; else null"})


def stats_args(args: dict) -> tuple[datetime, datetime, str]:
    """The validated range and bucket of a stats query (shared with the dashboard page)."""
    start, end = time_range(args, timedelta(days=7), timedelta(days=checks.MAX_STATS_DAYS))
    bucket = args.get("bucket") or ("hour" if end - start <= timedelta(days=2) else "day")
    if bucket == "hour" and end - start > timedelta(days=checks.MAX_HOUR_BUCKETS_DAYS):
        raise Problem(422, f"hour buckets cover at most {checks.MAX_HOUR_BUCKETS_DAYS} days: use bucket=day",
                      errors={"bucket": [f"hour: at most {checks.MAX_HOUR_BUCKETS_DAYS} days"]})
    return start, end, bucket


@blp.route("/stats")
class StatsView(MethodView):
    @require("tenant", "reviewer", "admin")
    @blp.arguments(StatsQuery, location="query", as_kwargs=False, unknown=RAISE)
    @blp.response(200, StatsOut)
    def get(self, args):
        """Volume, reject and review rates from the record of checks: totals, a series per hour
        or UTC day, per category and rule and (reviewers, admins) per account. A tenant gets its
        own traffic; reviewers and admins all of it or one account's. Default: the last 7 days.
        The figures cover whole UTC hours."""
        account = own_account(args["account"])
        start, end, bucket = stats_args(args)
        with _db().session() as s:
            st = checks.stats(s, start, end, bucket, account, args["source"],
                              by_account=principal().role != "tenant")
        out = st.to_dict()
        out["from_"] = out.pop("from")
        return out

