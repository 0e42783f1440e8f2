"""`--report REPORT.html`: one self-contained HTML file (inline CSS, inline SVG charts, no
scripts, no external references) drawn from the run's Summary.

Every piece of input-derived text (message text, ids, accounts, rule descriptions, file names)
goes through ``html.escape``; highlighted spans are cut from the original text and escaped
segment by segment.
"""
from __future__ import annotations

import html
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from app.audit.summary import Summary

__all__ = ["write_report", "render_report", "highlight"]

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
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


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


def _time_chart(times: dict[str, Counter], width: int = 1000, height: int = 240) -> str:
    if not times:
        return "<p>No message carried a readable time field.</p>"
    buckets = dict(times)
    unit = "hour"
    if len(buckets) > 96:  # more than four days of hours: days
        days: dict[str, Counter] = {}
        for b, cnt in buckets.items():
            days.setdefault(b[:10], Counter()).update(cnt)
        buckets, unit = days, "day"
    keys = sorted(buckets)
    left, right, top, bottom = 60, 10, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max(sum(buckets[k].values()) for k in keys) or 1
    step = plot_w / len(keys)
    bw = max(step * 0.8, 1.0)
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="verdicts per {unit}">']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e1e4e8"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{int(vmax * frac):,}</text>')
    label_every = max(1, len(keys) // 12)
    for i, k in enumerate(keys):
        x = left + i * step + (step - bw) / 2
        y = top + plot_h
        cnt = buckets[k]
        for series in ("allow", "review", "reject"):
            v = cnt.get(series, 0)
            if not v:
                continue
            h = plot_h * v / vmax
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{max(h, 0.5):.1f}" '
                         f'fill="{COLORS[series]}"><title>{_e(k)} {series}: {v:,}</title></rect>')
        if i % label_every == 0:
            lab = k.replace("T", " ") + (":00" if unit == "hour" else "")
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{_e(lab)}</text>')
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

    out.append("<h2>Rejected samples per category</h2>"
               "<p class=\"meta\">the first rejected messages of each category in input order; "
               "matched spans highlighted</p>")
    if not s.samples:
        out.append("<p>No rejected message.</p>")
    for cat in sorted(s.samples):
        out.append(f"<h3>{_e(cat)}</h3><table><tr><th>id</th><th>account</th><th>message</th><th>score</th>"
                   "<th>rules</th></tr>")
        for smp in s.samples[cat]:
            out.append(f'<tr><td>{_e(smp.get("id"))}</td><td>{_e(smp.get("account"))}</td>'
                       f'<td class="msg">{highlight(smp.get("text", ""), smp.get("spans"))}</td>'
                       f'<td class="n">{smp.get("score", 0)}</td>'
                       f'<td>{"<br>".join(_e(r) for r in smp.get("rules", []))}</td></tr>')
        out.append("</table>")

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
