"""`--report REPORT.html`: one self-contained HTML file (inline CSS, inline SVG charts, no
scripts, no external references) drawn from the run's Summary.

Every piece of input-derived text (message text, ids, accounts, rule descriptions, file names)
goes through ``html.escape``; highlighted spans are cut from the original text and escaped
segment by segment.
"""
from __future__ import annotations

import html
import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from app.audit.summary import NO_CATEGORY, Summary

__all__ = ["write_report", "render_report", "highlight", "score_text", "time_axis"]

COLORS = {"allow": "#9bb8a5", "review": "#e2a63b", "reject": "#c8453a"}
_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;color:#1f2328;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#57606a;font-size:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:20px}
.card.reject b{color:#c8453a}.card.review b{color:#b7791f}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{background:#fff;border:1px solid #d0d7de;border-radius:6px;max-width:100%;height:auto}
svg text{font-size:11px;fill:#1f2328}
mark{background:#ffd8d3;border-bottom:2px solid #c8453a;padding:0 1px}
.msg{white-space:pre-wrap;word-break:break-word}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
code{font-size:12px}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px;align-items:start}
.pair h4{font-size:13px;margin:4px 0 6px}.pair h4.reject{color:#c8453a}.pair h4.review{color:#b7791f}
.none{color:#57606a;font-size:12px;margin:4px 0}
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def score_text(v) -> str:
    """A score for the report: one decimal for every score (10.0 beside 12.6, never 12.6215 beside
    10), cut toward zero so that a score shown as 10.0 did reach a threshold of 10."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(x):
        return "–"
    x = float(f"{x:.10g}") * 10
    x = math.trunc(x + (1e-9 if x >= 0 else -1e-9)) / 10
    return f"{x:.1f}".replace("-0.0", "0.0")


def highlight(text: str, spans) -> str:
    """The text, HTML-escaped, with the [start, end) spans wrapped in <mark> (overlaps merged)."""
    iv = []
    for sp in spans or ():
        s, e = int(sp[0]), int(sp[1])
        rule = sp[2] if len(sp) > 2 else ""
        s, e = max(0, s), min(len(text), e)
        if e > s:
            iv.append([s, e, {rule} if rule else set()])
    iv.sort(key=lambda x: (x[0], x[1]))
    merged: list = []
    for s, e, r in iv:
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
            merged[-1][2] |= r
        else:
            merged.append([s, e, set(r)])
    out = []
    pos = 0
    for s, e, r in merged:
        out.append(_e(text[pos:s]))
        out.append(f'<mark title="{_e(", ".join(sorted(r)))}">{_e(text[s:e])}</mark>')
        pos = e
    out.append(_e(text[pos:]))
    return "".join(out)


# ------------------------------------------------------------------------------------ charts


def _hbars(rows: list[tuple[str, list[tuple[str, int]]]], width: int = 1000, label_w: int = 260,
           title: str = "", note=None) -> str:
    """Horizontal stacked bars: rows of (label, [(series, value), ...])."""
    if not rows:
        return "<p>None.</p>"
    bar_h, gap, top = 18, 6, 8
    height = top + len(rows) * (bar_h + gap) + 8
    vmax = max(sum(v for _, v in segs) for _, segs in rows) or 1
    plot_w = width - label_w - 90
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">']
    for i, (label, segs) in enumerate(rows):
        y = top + i * (bar_h + gap)
        shown = label if len(label) <= 40 else label[:39] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end"><title>{_e(label)}</title>{_e(shown)}</text>')
        x = float(label_w)
        total = 0
        for series, v in segs:
            w = plot_w * v / vmax
            if w > 0:
                color = COLORS.get(series, "#4e79a7")
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_h}" fill="{color}">'
                             f'<title>{_e(label)}: {_e(series)} {v:,}</title></rect>')
            x += w
            total += v
        extra = note(label, segs) if note else f"{total:,}"
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{_e(extra)}</text>')
    parts.append("</svg>")
    return "".join(parts)


#: how wide a label of the time axis is taken to be: 11px text, about 0.62em per character
CHAR_W = 6.8
LABEL_GAP = 10.0
#: the bucket of the time chart by the span of the times: (unit, longest span in that unit)
UNITS = (("hour", 96), ("day", 400), ("month", 400), ("year", None))
#: label every k-th bucket, k one of these (so labels fall on round times: 00:00, 06:00, Mondays...)
NICE = {"hour": (1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 96),
        "day": (1, 2, 3, 7, 14, 28, 56, 91, 182, 364),
        "month": (1, 2, 3, 6, 12, 24, 60, 120),
        "year": (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)}


def _hour(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H")


def _ordinal(t: datetime, unit: str) -> int:
    """The bucket's number counted from a fixed origin (labels are aligned on multiples)."""
    if unit == "hour":
        return t.toordinal() * 24 + t.hour
    if unit == "day":
        return t.toordinal()
    if unit == "month":
        return t.year * 12 + t.month - 1
    return t.year


def _buckets(times: dict[str, Counter]) -> tuple[str, list[datetime], dict[datetime, Counter]]:
    """(unit, every bucket from the first to the last, empty ones included, so the axis is
    linear in time, and the counts per bucket). The unit is the finest whose number of buckets
    stays within UNITS."""
    hours: dict[datetime, Counter] = {}
    for k, cnt in times.items():
        try:
            hours.setdefault(_hour(k), Counter()).update(cnt)
        except ValueError:
            continue
    if not hours:
        return "hour", [], {}
    lo, hi = min(hours), max(hours)
    for unit, most in UNITS:
        if most is None or _ordinal(hi, unit) - _ordinal(lo, unit) + 1 <= most:
            break
    trunc = {"hour": lambda t: t, "day": lambda t: t.replace(hour=0),
             "month": lambda t: t.replace(day=1, hour=0), "year": lambda t: t.replace(month=1, day=1, hour=0)}[unit]
    counts: dict[datetime, Counter] = {}
    for t, cnt in hours.items():
        counts.setdefault(trunc(t), Counter()).update(cnt)
    keys, t = [], trunc(lo)
    while t <= hi:
        keys.append(t)
        if unit == "hour":
            t += timedelta(hours=1)
        elif unit == "day":
            t += timedelta(days=1)
        elif unit == "month":
            t = t.replace(year=t.year + (t.month == 12), month=t.month % 12 + 1)
        else:
            t = t.replace(year=t.year + 1)
    return unit, keys, counts


def _label(t: datetime, unit: str, keys: list[datetime]) -> str:
    if unit == "hour":
        one_day = keys[0].date() == keys[-1].date()
        return t.strftime("%H:00" if one_day else "%m-%d %H:00")
    if unit == "day":
        return t.strftime("%m-%d" if keys[0].year == keys[-1].year else "%Y-%m-%d")
    if unit == "month":
        return t.strftime("%Y-%m")
    return t.strftime("%Y")


def _full(t: datetime, unit: str) -> str:
    """A bucket named in full (the tooltip of its bar)."""
    return t.strftime({"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[unit])


def time_axis(keys: list[datetime], unit: str, plot_w: float) -> list[tuple[int, str]]:
    """(bucket index, label) of the labels to draw under ``keys``: every k-th bucket, k the
    smallest of NICE[unit] at which labels never overlap (a label is taken to be
    CHAR_W per character wide, plus LABEL_GAP)."""
    if not keys:
        return []
    step = plot_w / len(keys)
    widest = max(len(_label(t, unit, keys)) for t in keys) * CHAR_W + LABEL_GAP
    k = next((n for n in NICE[unit] if n * step >= widest), None)
    if k is None:  # more buckets than any nice step thins: the smallest multiple that fits
        k = math.ceil(widest / step)
    out = [(i, _label(t, unit, keys)) for i, t in enumerate(keys) if _ordinal(t, unit) % k == 0]
    if not out:  # a short range that holds no round time: its first bucket
        out = [(0, _label(keys[0], unit, keys))]
    return out


def _time_chart(times: dict[str, Counter], width: int = 1000, height: int = 240) -> str:
    unit, keys, buckets = _buckets(times)
    if not keys:
        return "<p>No message carried a readable time field.</p>"
    left, right, top, bottom = 60, 20, 10, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max(sum(cnt.values()) for cnt in buckets.values()) or 1
    step = plot_w / len(keys)
    bw = max(step * 0.8, 1.0)
    span = f"{keys[0]:%Y-%m-%d}" + (f" to {keys[-1]:%Y-%m-%d}" if keys[-1].date() != keys[0].date() else "")
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="verdicts per {unit}, {span}">']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e1e4e8"/>')
        v = vmax * frac
        if v != int(v):  # the middle line of an odd maximum: no label rather than a rounded one
            continue
        parts.append(f'<text class="ylab" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{int(v):,}</text>')
    for i, k in enumerate(keys):
        cnt = buckets.get(k)
        if not cnt:
            continue
        x = left + i * step + (step - bw) / 2
        y = top + plot_h
        for series in ("allow", "review", "reject"):
            v = cnt.get(series, 0)
            if not v:
                continue
            h = plot_h * v / vmax
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{max(h, 0.5):.1f}" '
                         f'fill="{COLORS[series]}"><title>{_e(_full(k, unit))} {series}: {v:,}</title></rect>')
    axis_y = height - bottom + 16
    for i, lab in time_axis(keys, unit, plot_w):
        x = left + i * step + step / 2
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#8c959f"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{axis_y}" text-anchor="middle">{_e(lab)}</text>')
    caption = {"hour": "hour (UTC)", "day": "day (UTC)", "month": "month", "year": "year"}[unit]
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#57606a">'
                 f'{_e(caption)} · {_e(span)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{k}</span>' for k, c in COLORS.items()) + "</p>"


# ------------------------------------------------------------------------------------ report


def render_report(s: Summary) -> str:
    m = s.meta
    total = s.messages or 1
    v = {k: s.verdicts.get(k, 0) for k in ("allow", "review", "reject")}
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           "<title>smsguard audit report</title><style>", _CSS, "</style></head><body><main>",
           "<h1>smsguard audit report</h1>",
           f'<p class="meta">generated {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")} · '
           f'rules <code>{_e(m.get("ruleset_version"))}</code> · model <code>{_e(m.get("model_version") or "none")}</code>'
           f' · {_e(m.get("runner", ""))} · {m.get("seconds", 0):.1f}s</p>',
           '<p class="meta">inputs: ' + ", ".join(f"<code>{_e(i)}</code>" for i in m.get("inputs", [])[:20])
           + (f" … {len(m.get('inputs', [])) - 20} more" if len(m.get("inputs", [])) > 20 else "") + "</p>",
           '<div class="cards">',
           f'<div class="card">messages<b>{s.messages:,}</b></div>']
    for k in ("allow", "review", "reject"):
        out.append(f'<div class="card {k}">{k}<b>{v[k]:,}</b>{100 * v[k] / total:.2f}%</div>')
    out.append(f'<div class="card">accounts<b>{len(s.accounts):,}</b></div>')
    out.append(f'<div class="card">malformed lines<b>{s.malformed_count:,}</b></div></div>')

    out.append("<h2>Verdicts over time</h2>")
    out.append(_legend())
    out.append(_time_chart(s.times))

    out.append("<h2>Categories</h2><p class=\"meta\">messages flagged per category, by verdict</p>")
    cats = sorted(s.categories.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    out.append(_hbars([(c, [(k, cnt.get(k, 0)) for k in ("reject", "review", "allow")]) for c, cnt in cats],
                      title="categories"))

    out.append("<h2>Top accounts</h2><p class=\"meta\">by rejected messages; the label is the rejected share</p>")
    top = s.top_accounts(15)
    out.append(_hbars([(a, [("reject", j), ("review", r), ("allow", t - r - j)]) for a, t, r, j in top if j or r],
                      title="top accounts",
                      note=lambda label, segs: f"{segs[0][1]:,} / {sum(x for _, x in segs):,} "
                                               f"({100 * segs[0][1] / max(sum(x for _, x in segs), 1):.1f}%)"))
    share = s.top_rejected_share(15)
    if share:
        out.append("<h3>Largest rejected share</h3><table><tr><th>account</th><th>messages</th><th>rejected</th>"
                   "<th>share</th></tr>")
        for a, t, j, sh in share:
            out.append(f'<tr><td>{_e(a)}</td><td class="n">{t:,}</td><td class="n">{j:,}</td>'
                       f'<td class="n">{100 * sh:.2f}%</td></tr>')
        out.append("</table>")

    out.append("<h2>Top rules</h2>")
    out.append(_hbars([(r, [("rule", c)]) for r, c in s.top_rules(20)], title="top rules"))

    out.append("<h2>Samples per category: rejected and sent to review</h2>"
               "<p class=\"meta\">the first messages of each category in input order, each text once; the "
               "ones sent to review are those a person must look at; matched spans highlighted</p>")
    cats = sorted(set(s.samples) | set(s.review_samples), key=lambda c: (c == NO_CATEGORY, c))
    if not cats:
        out.append("<p>No message rejected or sent to review.</p>")
    for cat in cats:
        out.append(f"<h3>{_e(cat)}</h3><div class=\"pair\">")
        for kind, title, rows in (("reject", "Rejected", s.samples.get(cat, [])),
                                  ("review", "Sent to review", s.review_samples.get(cat, []))):
            total = s.categories.get(cat, {}).get(kind)
            shown = f"{len(rows):,} of {total:,}" if total else f"{len(rows):,}"
            out.append(f'<section><h4 class="{kind}">{title} ({shown} shown)</h4>')
            if not rows:
                out.append(f'<p class="none">None {"rejected" if kind == "reject" else "sent to review"} '
                           f'in this category.</p></section>')
                continue
            out.append("<table><tr><th>id</th><th>account</th><th>message</th><th>score</th><th>rules</th></tr>")
            for smp in rows:
                out.append(f'<tr><td>{_e(smp.get("id"))}</td><td>{_e(smp.get("account"))}</td>'
                           f'<td class="msg">{highlight(smp.get("text", ""), smp.get("spans"))}</td>'
                           f'<td class="n" title="{_e(smp.get("score"))}">{score_text(smp.get("score"))}</td>'
                           f'<td>{"<br>".join(_e(r) for r in dict.fromkeys(smp.get("rules", [])))}</td></tr>')
            out.append("</table></section>")
        out.append("</div>")

    if m.get("compare"):
        changed = sum(s.changes.values())
        out.append(f"<h2>What-if: {_e(m['compare'])}</h2><p>{changed:,} verdicts would change "
                   f"(listed in the .changes.jsonl file next to the findings).</p>")
        if s.changes:
            out.append("<table><tr><th>change</th><th>messages</th></tr>")
            for k, n in sorted(s.changes.items(), key=lambda kv: -kv[1]):
                out.append(f'<tr><td>{_e(k)}</td><td class="n">{n:,}</td></tr>')
            out.append("</table>")

    out.append(f"<h2>Malformed lines ({s.malformed_count:,})</h2>")
    if s.malformed:
        out.append("<table><tr><th>file</th><th>line</th><th>reason</th></tr>")
        for mm in s.malformed[:200]:
            out.append(f'<tr><td>{_e(mm["file"])}</td><td class="n">{mm["line"]}</td><td>{_e(mm["reason"])}</td></tr>')
        out.append("</table>")
        if s.malformed_count > 200:
            out.append(f"<p>… {s.malformed_count - 200:,} more in the summary file.</p>")
    else:
        out.append("<p>None.</p>")
    out.append("</main></body></html>\n")
    return "".join(out)


def write_report(summary: Summary, path: Path) -> None:
    Path(path).write_text(render_report(summary), encoding="utf-8")
