"""The dashboard (issue 16, item 4): volume, reject and review rates over time, per category,
rule and account, from the record of checks (the hourly counts of app/services/checks.py, the
same figures as GET /v1/stats). Reviewers and admins. Server-rendered: the chart is inline SVG
drawn here (the pages' CSP allows no inline style or script, and nothing from another site)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l

from app.api.problems import Problem
from app.services import checks
from app.web import web_blueprint
from app.web.auth import login_required

bp = web_blueprint("dashboard", __name__)

#: the quick ranges offered: (key, label, length, bucket)
RANGES = (("24h", _l("last 24 hours"), timedelta(hours=24), "hour"),
          ("7d", _l("last 7 days"), timedelta(days=7), "day"),
          ("30d", _l("last 30 days"), timedelta(days=30), "day"),
          ("90d", _l("last 90 days"), timedelta(days=90), "day"))
SOURCE_NAMES = {"presend": _l("pre-send"), "moderate": _l("/v1/moderate")}
CHART_W, CHART_H, LEFT, BOTTOM, TOP, RIGHT = 960, 230, 56, 34, 12, 52


def _db():
    return current_app.extensions["smsguard.db"]


def _parse_time(raw: str, field: str) -> datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise Problem(422, gettext("%(field)s: write a date (2026-03-02) or a date and time (2026-03-02T08:00)",
                                   field=field)) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _nice(n: int) -> int:
    """A round axis maximum at or above n (1, 2, 5 x 10^k)."""
    if n <= 0:
        return 1
    k = 1
    while True:
        for m in (1, 2, 5):
            if m * k >= n:
                return m * k
        k *= 10


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.2f}%" if x < 0.1 else f"{x * 100:.1f}%"


def chart(series: list[dict], bucket: str) -> dict:
    """Geometry of the stacked volume bars (allow / review / reject per bucket) and the reject
    rate line, in SVG user units."""
    n = max(1, len(series))
    pw, ph = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM
    top = _nice(max((p["checks"] for p in series), default=0))
    step = pw / n
    bw = max(1.0, step * 0.8)
    bars, points, labels = [], [], []
    every = max(1, n // 12)
    for i, p in enumerate(series):
        x = LEFT + i * step + (step - bw) / 2
        y = TOP + ph
        parts = []
        for verdict in ("allow", "review", "reject"):
            h = ph * p[verdict] / top
            if h > 0:
                y -= h
                parts.append({"verdict": verdict, "y": round(y, 2), "h": round(h, 2)})
        at = p["at"]
        label = at.strftime("%m-%d %H:00") if bucket == "hour" else at.strftime("%Y-%m-%d")
        tip = gettext("%(at)s UTC: %(checks)s checks · %(allow)s allowed · %(review)s review (%(review_pct)s) · "
                      "%(reject)s rejected (%(reject_pct)s)", at=label, checks=f"{p['checks']:,}",
                      allow=f"{p['allow']:,}", review=f"{p['review']:,}", review_pct=_pct(p["review_rate"]),
                      reject=f"{p['reject']:,}", reject_pct=_pct(p["reject_rate"]))
        bars.append({"x": round(x, 2), "w": round(bw, 2), "parts": parts, "title": tip})
        if p["reject_rate"] is not None:
            points.append(f"{x + bw / 2:.2f},{TOP + ph - ph * p['reject_rate']:.2f}")
        if i % every == 0:
            hourly = bucket == "hour" and at.hour
            text = at.strftime("%H:00") if hourly else at.strftime("%m-%d")
            labels.append({"x": round(x + bw / 2, 2), "text": text})
    ticks = [{"y": round(TOP + ph - ph * f, 2), "text": f"{int(top * f):,}", "rate": f"{int(f * 100)}%"}
             for f in (0, 0.25, 0.5, 0.75, 1)]
    return {"w": CHART_W, "h": CHART_H, "left": LEFT, "right": CHART_W - RIGHT, "top": TOP, "base": TOP + ph,
            "bars": bars, "line": " ".join(points), "labels": labels, "ticks": ticks, "label_y": TOP + ph + 18}


def bars(rows: list[dict], width: int = 120) -> list[dict]:
    """Each row with SVG bar widths: checks relative to the largest row, split by verdict."""
    top = max((r["checks"] for r in rows), default=0) or 1
    out = []
    for r in rows:
        x, parts = 0.0, []
        for verdict in ("reject", "review", "allow"):
            w = width * r[verdict] / top
            if w > 0:
                parts.append({"verdict": verdict, "x": round(x, 2), "w": round(w, 2)})
                x += w
        out.append(dict(r, bar=parts, reject_pct=_pct(r["reject_rate"]), review_pct=_pct(r["review_rate"])))
    return out


def default_range(now: datetime, rng: str, bucket: str | None) -> tuple[datetime, datetime, str]:
    """(start, end, bucket) of a named range at ``now``: up to the end of the current hour; by
    day, whole UTC days: the last N days, today (``now``'s UTC date) included."""
    length, default_bucket = next(((r[2], r[3]) for r in RANGES if r[0] == rng))
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    bucket = bucket or default_bucket
    if bucket == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - length + timedelta(days=1)
    else:
        start = end - length
    return start, end, bucket


@bp.get("/dashboard")
@login_required(role="reviewer")
def dashboard():
    """?range=24h|7d|30d|90d, or from= and to= (dates or date-times, UTC); bucket=hour|day;
    account=; source=presend|moderate."""
    from app.api.checks import stats_args

    args = request.args
    rng = args.get("range", "") if args.get("range", "") in {r[0] for r in RANGES} else ""
    account = (args.get("account") or "").strip()[:64] or None
    source = args.get("source") if args.get("source") in checks.SOURCES else None
    bucket = args.get("bucket") if args.get("bucket") in ("hour", "day") else None
    error = None
    now = datetime.now(UTC)
    try:
        start = _parse_time(args.get("from", ""), "from")
        end = _parse_time(args.get("to", ""), "to")
        if start is None and end is None:
            rng = rng or "7d"
            start, end, bucket = default_range(now, rng, bucket)
        else:
            rng = ""
        start, end, bucket = stats_args({"from_": start, "to": end, "bucket": bucket})
    except Problem as exc:
        error = exc.detail
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start, bucket, rng = end - timedelta(days=7), "day", "7d"
    with _db().session() as s:
        st = checks.stats(s, start, end, bucket, account, source)
    status = 422 if error else 200
    return render_template(
        "dashboard.html", st=st, chart=chart(st.series, st.bucket), categories=bars(st.categories),
        rules=bars(st.rules), accounts=bars(st.accounts or []), pct=_pct, ranges=RANGES, range=rng,
        account=account or "", source=source or "", bucket=bucket, error=error,
        form_bucket=args.get("bucket") if args.get("bucket") in ("hour", "day") else "",
        form_from=(args.get("from") or "") if not rng else "", form_to=(args.get("to") or "") if not rng else "",
        sources=checks.SOURCES, source_names=SOURCE_NAMES, account_url=lambda a: url_for("dashboard.dashboard", **{
            k: v for k, v in {"range": rng or None, "from": args.get("from") if not rng else None,
                              "to": args.get("to") if not rng else None, "bucket": args.get("bucket"),
                              "source": source, "account": a}.items() if v})), status
