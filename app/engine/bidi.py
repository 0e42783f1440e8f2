"""Bidirectional-text controls: what a phone shows is not what the bytes say.

U+202E (right-to-left override) makes a phone display the characters after it in reverse
order until U+202C (pop) or the end of the line, so a link stored as "moc.knab-ekaf//:sptth"
between the two is read as "https://fake-bank.com". Normalization removes the controls; this
module gives the text in the order a reader sees it (``visual``), with a map from each visual
character back to the original, so the engine can match what is displayed as well as what is
stored. U+2067 (right-to-left isolate) to U+2069 is treated the same way.
"""
from __future__ import annotations

import re

__all__ = ["BIDI_RE", "has_rtl", "visual"]

#: embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069)
BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]+")
_RTL_OPEN = "\u202e\u2067"
_CLOSE = "\u202c\u2069\n"


def has_rtl(text: str) -> bool:
    """Whether a right-to-left override or isolate reorders some of ``text`` on screen."""
    return "\u202e" in text or "\u2067" in text


def visual(text: str) -> tuple[str, list[int]] | None:
    """(the text as displayed, visual index -> original index), or None without a right-to-left
    override or isolate. Controls are dropped; each overridden run is reversed."""
    if not has_rtl(text):
        return None
    out: list[str] = []
    src: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _RTL_OPEN:
            j = i + 1
            while j < n and text[j] not in _CLOSE:
                j += 1
            run = [(text[k], k) for k in range(i + 1, j) if not BIDI_RE.match(text[k])]
            for ch, k in reversed(run):
                out.append(ch)
                src.append(k)
            i = j + 1 if j < n and text[j] != "\n" else j
            continue
        if not BIDI_RE.match(c):
            out.append(c)
            src.append(i)
        i += 1
    return "".join(out), src
