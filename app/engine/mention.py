"""Use and mention: a warning quotes the words it warns about (警惕“裸聊敲诈”, "the comment
'kill yourself' has been removed"). A keyword hit that lies inside quotation marks, in a
message that carries warning context for its category (a negative-score rule of that category,
or a rules/context.yaml notice rule), is a mention: it keeps its place among the reasons but
scores nothing and forces nothing. Outside a warning, quotes change nothing: spam that quotes
its own offer is still spam.
"""
from __future__ import annotations

import re
from typing import Sequence

from app.engine.types import Hit

__all__ = ["quoted_spans", "mark_mentions"]

# paired quotation marks; straight single quotes only as quotes (not apostrophes: it's, don't)
_QUOTED_RE = re.compile(
    r"“[^“”\n]{1,80}”|‘[^‘’\n]{1,80}’|「[^「」\n]{1,80}」|『[^『』\n]{1,80}』|\"[^\"\n]{1,80}\""
    r"|(?<![A-Za-z0-9])'[^'\n]{1,80}'(?![A-Za-z0-9])")
NOTE = " (quoted inside a warning: mentioned, not used)"


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of every quoted passage of ``text``, quotation marks included."""
    return [m.span() for m in _QUOTED_RE.finditer(text)]


def mark_mentions(hits: Sequence[Hit], original: str) -> list[Hit]:
    """``hits`` with the quoted keyword hits of warned-about categories made score-only, score 0."""
    ctx: set[str] = set()
    notice = False
    for h in hits:
        if h.action == "context":
            notice = True
        elif h.score < 0 and h.category is not None:
            ctx.add(h.category)
    if not (ctx or notice) or not any(c in original for c in "“‘「『\"'"):
        return list(hits)
    spans = quoted_spans(original)
    if not spans:
        return list(hits)
    out = []
    for h in hits:
        if (h.detector == "keyword" and h.span is not None and h.category is not None and h.score >= 0
                and h.action != "context" and not h.rule.startswith("KW_ACCOUNT_")
                and (notice or h.category in ctx)
                and any(a <= h.span[0] and h.span[1] <= b for a, b in spans)):
            h = h._replace(score=0.0, action=None, description=h.description + NOTE)
        out.append(h)
    return out
