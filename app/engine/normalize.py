"""Text normalization with an offset map back to the original text.

``normalize(text) -> Normalized`` runs, in this order:

1. a per-character fold (one ``str.translate`` with a table filled on first sight of each
   character): NFKC (full-width, circled and styled letters and digits), case folding,
   Cyrillic/Greek look-alikes to Latin, typographic apostrophes (’ ‘ ʼ) to ', accents stripped
   from Latin letters, invisible characters removed (zero-width, soft hyphen, BOM, bidi
   controls, variation selectors, tag characters, Hangul fillers, every combining mark, so
   combining floods vanish), whitespace to a plain space (newlines kept); the order a phone
   DISPLAYS a right-to-left override in, and the report of the controls themselves, are
   app/engine/bidi.py's and PAT_BIDI_CONTROL's job;
2. traditional to simplified Chinese with the OpenCC C++ binding over the whole string (per
   character if the whole-string conversion changes the length);
   -> this is the *pattern view* (``Normalized.pattern_text``) that URL/phone/id patterns use;
3. digits used as letters inside Latin words (p0rn, s3x, v1agra, @, $ and ! too: sh!t), 1:1;
4. separators skipped inside words: spaces, symbols, emoji and non-sentence punctuation between
   two CJK characters (赌 博, 法✨轮功; sentence punctuation ，。！？；：、 brackets and quotes stay
   as boundaries so clauses do not glue together; emoji that stand for words, ``WORD_EMOJI``,
   are kept: 你这🐶东西), and the separators of a run of three or more
   single Latin letters (f.u.c.k, s e x);
5. runs of three or more of the same Latin letter folded to one (fuuuuck).

The result is ``Normalized.text``. ``Normalized.span(a, b)`` maps a span of ``text`` to the
ORIGINAL text (code points, end exclusive); the per-character map is computed lazily, only when a
hit needs it, so messages without hits never pay for it. Keyword terms go through the very
same function, so a term and a message agree on every fold.

The pinyin view (``pinyin_windows``) writes the CJK characters of the windows around Latin
letters as toneless pinyin from a table built once from pypinyin's data, so luo聊, du场 and
fa轮 meet the pinyin of 裸聊, 赌场, 法轮.
"""
from __future__ import annotations

import functools
import itertools
import re
import threading
import unicodedata

__all__ = [
    "Normalized",
    "normalize",
    "normalize_term",
    "fold_char",
    "pinyin_table",
    "pinyin_readings",
    "term_pinyins",
    "is_han",
]

# --------------------------------------------------------------------------- character fold

_HAN_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FFFF),
    (0x30000, 0x3134F),
)
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"


def is_han(ch: str) -> bool:
    """A CJK ideograph (unified, extension A, compatibility, extensions B and later)."""
    return ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"
            or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0003134f")


# Look-alike letters (after case folding) -> Latin.
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k",
    "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ь": "b", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "һ": "h", "ӏ": "l", "ӓ": "a", "ӧ": "o", "ѵ": "v", "ү": "y", "ғ": "f",
    # Greek
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "ι": "i",
    "κ": "k", "μ": "m", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "ω": "w", "ϲ": "c", "ϳ": "j", "ς": "s",
    # Armenian and Latin extensions that read as ASCII letters
    "օ": "o", "ս": "u", "ց": "g", "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i",
    "ʏ": "y", "ɴ": "n", "ʀ": "r", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e",
    "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ᴏ": "o",
    "ᴘ": "p", "ǫ": "q", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
    # apostrophes: phones type the typographic one (I’ll, you’re); terms are written with '
    "\u2019": "'", "\u2018": "'", "\u201b": "'", "\u02bc": "'", "\u2032": "'",
}

# Invisible characters that are not category Cf/Mn/Me (those are removed wholesale).
_INVISIBLE = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F}
_WHITESPACE = {"\t", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"}


def _enclosed_letter(cp: int) -> str | None:
    # negative circled / negative squared Latin capitals have no NFKC decomposition
    for base in (0x1F150, 0x1F170):
        if base <= cp < base + 26:
            return chr(ord("a") + cp - base)
    return None


def _fold_one(ch: str) -> str:
    """Fold one character of NFKC output (case folded) to its matching form."""
    out = []
    for c in ch:
        if c in _HOMOGLYPHS:
            out.append(_HOMOGLYPHS[c])
            continue
        cp = ord(c)
        if cp < 128:
            out.append(c)
            continue
        cat = unicodedata.category(c)
        if cat in ("Mn", "Me", "Cf") or cp in _INVISIBLE:
            continue
        if cat == "Zs":
            out.append(" ")
            continue
        if cat[0] == "L" and not is_han(c):
            d = unicodedata.normalize("NFD", c)
            if len(d) > 1 and d[0].isascii() and d[0].isalpha() and all(
                unicodedata.category(x) == "Mn" for x in d[1:]
            ):
                out.append(d[0])
                continue
        out.append(c)
    return "".join(out)


def fold_char(ch: str) -> str:
    """The per-character fold of stage 1 (see module doc); may return '' or several chars."""
    cp = ord(ch)
    if ch == "\n":
        return "\n"
    if ch in _WHITESPACE:
        return "\n" if ch in ("\r", "\x85") else " "
    if cp < 32 or cp == 127:
        return ""
    if cp in _INVISIBLE:
        return ""
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me", "Cf", "Cc", "Cs", "Co"):
        return ""
    enc = _enclosed_letter(cp)
    if enc:
        return enc
    return _fold_one(unicodedata.normalize("NFKC", ch).casefold())


class _LazyTable(dict):
    """A translate table filled on first sight of each code point (bounded)."""

    __slots__ = ("_fn", "_limit", "_on_new")

    def __init__(self, fn, limit: int = 300_000, on_new=None):
        super().__init__()
        self._fn = fn
        self._limit = limit
        self._on_new = on_new

    def __missing__(self, cp: int) -> str:
        v = self._fn(chr(cp))
        if self._on_new is not None:
            self._on_new(cp, v)
        if len(self) < self._limit:
            self[cp] = v
        return v


# Characters whose fold is not exactly one character (deleted or expanded) make the offset map
# non-trivial. They are collected as the fold table meets them; a message without any of them
# (the usual case) has the identity map for stages 1-2, so spans cost nothing.
_irregular: set[str] = set()
_irregular_re: re.Pattern | None = None
_irregular_lock = threading.Lock()


def _note(cp: int, folded: str) -> None:
    global _irregular_re
    if len(folded) != 1:
        with _irregular_lock:
            _irregular.add(chr(cp))
            _irregular_re = None


def _has_irregular(text: str) -> bool:
    global _irregular_re
    rx = _irregular_re
    if rx is None:
        with _irregular_lock:
            chars = "".join(sorted(_irregular))
            rx = re.compile("[" + re.escape(chars) + "]") if chars else re.compile(r"(?!x)x")
            _irregular_re = rx
    return rx.search(text) is not None


FOLD = _LazyTable(fold_char, on_new=_note)
for _cp in range(128):
    FOLD[_cp]  # prime the ASCII range

# Text made only of these characters folds to itself (or, with A-Z, to its .lower()), so the
# translate pass can be skipped: ASCII except A-Z and controls, the CJK unified ideographs, and
# CJK punctuation that NFKC keeps.
_STABLE_PUNCT = "。、“”‘’《》〈〉【】〔〕〖〗「」『』·—～"
_STABLE_PUNCT = "".join(c for c in _STABLE_PUNCT if fold_char(c) == c)
_STABLE = "\n -@\\[-`a-~" + re.escape(_STABLE_PUNCT) + "\u3400-\u4dbf\u4e00-\u9fff"
_RE_UNSTABLE = re.compile(f"[^{_STABLE}]")
_RE_UNSTABLE_NOT_UPPER = re.compile(f"[^{_STABLE}A-Z]")

# ---------------------------------------------------------------- separators (stage 4)
# A separator is any character that is not a letter or digit (``\\w``) and not a boundary:
# spaces, symbols, emoji, non-sentence punctuation, underscore. Boundaries (newline, sentence
# punctuation, brackets, quotes) are never skipped so clauses do not glue together.
_BOUNDARY = "\n,!?;:。、，！？；：…()[]{}<>《》〈〉【】〔〕〖〗「」『』\"'“”‘’`｢｣"
# Emoji that stand for a word are not separators: animals (你这🐶东西, 非洲🐒越来越多, 特🐎), pile of
# poo and clown. Dropping them would turn the insult into 你这东西 before any keyword sees it;
# decorative emoji and symbols (法✨轮功, 赌❤博) stay separators. The classifier's compact text
# drops every emoji anyway (app/engine/features.py), so this changes no feature.
WORD_EMOJI = (
    "\U0001F400-\U0001F43D"  # rat ... pig nose (animals and animal faces)
    "\U0001F980-\U0001F99F\U0001F9A1-\U0001F9AE"  # crab ... (not microbe U+1F9A0)
    "\U0001FAB0-\U0001FAB3\U0001FACE\U0001FACF"  # fly, worm, beetle, cockroach, moose, donkey
    "\U0001F4A9\U0001F921"  # pile of poo, clown face
)
_SEP = "(?:[^\\w" + re.escape(_BOUNDARY) + WORD_EMOJI + "]|_)"
_HAN = f"[{HAN_CLASS}]"

# -------------------------------------------------------------------------- OpenCC (stage 2)

_cc_lock = threading.Lock()
_cc = None


def _converter():
    global _cc
    if _cc is None:
        with _cc_lock:
            if _cc is None:
                import opencc

                try:
                    _cc = opencc.OpenCC("t2s")
                except Exception:  # older bindings want the file name
                    _cc = opencc.OpenCC("t2s.json")
    return _cc


@functools.lru_cache(maxsize=65536)
def _t2s_char(ch: str) -> str:
    return _converter().convert(ch)


def _t2s(s: str) -> tuple[str, list[int] | None]:
    """Whole-string t2s; per character when the length changes. Returns (text, lens or None)."""
    out = _converter().convert(s)
    if len(out) == len(s):
        return out, None
    parts = [_t2s_char(c) for c in s]
    return "".join(parts), [len(p) for p in parts]


# ------------------------------------------------------------------ context rules (stages 3-5)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "@": "a", "$": "s", "!": "i"})
_RE_LEET = re.compile(r"(?<=[a-z])[013457@$!]{1,4}(?=[a-z])")
# separators between two CJK characters (the char before is checked in Python: a leading
# look-behind would make the engine try every position)
_RE_CJK_GAP = re.compile(f"{_SEP}{{1,6}}(?={_HAN})")
# a run of 3+ single Latin letters split by separators (f.u.c.k); the character before the
# run must not be a letter or digit (a look-behind placed after the first letter, so the
# engine still skips straight to letters)
_RE_LETTER_RUN = re.compile(f"[a-z](?<![a-z0-9][a-z])(?:{_SEP}{{1,3}}[a-z](?![a-z0-9])){{2,}}")
_RE_SEPS = re.compile(f"{_SEP}+")
_RE_REPEAT = re.compile(r"([a-z])\1{2,}")
_RE_LATIN = re.compile(r"[a-z]")
_RE_LATIN_RUN = re.compile(r"[a-z]+")


def _delete(s: str, ranges: list[tuple[int, int]]) -> str:
    parts = []
    pos = 0
    for a, b in ranges:
        parts.append(s[pos:a])
        pos = b
    parts.append(s[pos:])
    return "".join(parts)


def _kept(n: int, ranges: list[tuple[int, int]]) -> list[int]:
    """Indices of the input that survive deleting ``ranges`` from a string of length n."""
    out: list[int] = []
    pos = 0
    for a, b in ranges:
        out.extend(range(pos, a))
        pos = b
    out.extend(range(pos, n))
    return out


class Normalized:
    """A normalized message: ``text`` for keywords, ``pattern_text`` for patterns, and the map
    from either back to ``original``."""

    __slots__ = (
        "original", "text", "pattern_text", "_ident", "_lens2", "_del_join", "_del_rep", "_n2",
        "_n3", "_src_pattern", "_src_text",
    )

    def __init__(self, original, text, pattern_text, ident, lens2, del_join, del_rep, n2, n3):
        self.original = original
        self.text = text
        self.pattern_text = pattern_text
        self._ident = ident
        self._lens2 = lens2
        self._del_join = del_join
        self._del_rep = del_rep
        self._n2 = n2
        self._n3 = n3
        self._src_pattern: list[int] | None = None
        self._src_text: list[int] | None = None

    def __repr__(self) -> str:
        return f"Normalized({self.text!r})"

    # -- offset maps (lazy) -------------------------------------------------------------
    def _pattern_sources(self) -> list[int] | None:
        """For each char of pattern_text, the index of the original char it came from
        (None: the identity)."""
        if self._ident:
            return None
        src = self._src_pattern
        if src is None:
            src1: list[int] = []
            get = FOLD.__getitem__
            for i, ch in enumerate(self.original):
                n = len(get(ord(ch)))
                if n == 1:
                    src1.append(i)
                elif n:
                    src1.extend(itertools.repeat(i, n))
            if self._lens2 is not None:  # per-char t2s changed lengths
                src = []
                for j, n in enumerate(self._lens2):
                    src.extend(itertools.repeat(src1[j], n))
            else:
                src = src1
            self._src_pattern = src
        return src

    def _text_sources(self) -> list[int] | None:
        src = self._src_text
        if src is None:
            src = self._pattern_sources()
            if self._del_join:
                kept = _kept(self._n2, self._del_join)
                src = kept if src is None else [src[k] for k in kept]
            if self._del_rep:
                kept = _kept(self._n3, self._del_rep)
                src = kept if src is None else [src[k] for k in kept]
            if src is None:
                return None
            self._src_text = src
        return src

    @staticmethod
    def _map(src: list[int] | None, start: int, end: int) -> tuple[int, int]:
        if src is None:
            return start, end
        if end <= start:
            o = src[start] if start < len(src) else (src[-1] + 1 if src else 0)
            return o, o
        return src[start], src[end - 1] + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """[start, end) of ``text`` -> [start, end) of the original (code points)."""
        return self._map(self._text_sources(), start, end)

    def pattern_span(self, start: int, end: int) -> tuple[int, int]:
        """[start, end) of ``pattern_text`` -> [start, end) of the original."""
        return self._map(self._pattern_sources(), start, end)

    def evidence(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]

    def source_map(self) -> list[int]:
        """The original index of every char of ``text`` (for tests and debugging)."""
        src = self._text_sources()
        return list(range(len(self.text))) if src is None else list(src)

    # -- pinyin view --------------------------------------------------------------------
    def pinyin_windows(self, context: int, accept=None) -> list[tuple[int, str, str]]:
        """(text_offset, window_text, pinyin_text) for the windows of ``text`` where a pinyin /
        mixed writing hit is possible: a run of Latin letters (that ``accept(run)`` allows)
        plus up to ``context`` CJK characters on each side, overlapping windows merged (a hit
        must contain a Latin letter). Pure-ASCII text is one window, its own pinyin view."""
        t = self.text
        if _RE_LATIN.search(t) is None:
            return []
        if t.isascii():
            return [(0, t, t)]
        spans: list[list[int]] = []
        n = len(t)
        for m in _RE_LATIN_RUN.finditer(t):
            if accept is not None and not accept(m.group()):
                continue
            a, b = m.span()
            s, lo = a, max(0, a - context)
            while s > lo and is_han(t[s - 1]):
                s -= 1
            e, hi = b, min(n, b + context)
            while e < hi and is_han(t[e]):
                e += 1
            if spans and s <= spans[-1][1]:
                spans[-1][1] = e
            else:
                spans.append([s, e])
        if not spans:
            return []
        table = pinyin_table()
        return [(s, t[s:e], t[s:e].translate(table)) for s, e in spans]


def window_sources(window: str) -> list[int]:
    """For each char of the pinyin of ``window``, the index of the window char it came from."""
    table = pinyin_table()
    src: list[int] = []
    for i, ch in enumerate(window):
        p = table.get(ord(ch))
        n = 1 if p is None else len(p)
        src.extend(itertools.repeat(i, n))
    return src


def normalize(text: str) -> Normalized:
    """Normalize ``text`` for matching; see the module doc for the stages."""
    ident = True  # stages 1-2 map each original char to exactly one char
    m = _RE_UNSTABLE.search(text)
    if m is None:
        s1 = text
    elif _RE_UNSTABLE_NOT_UPPER.search(text, m.start()) is None:
        s1 = text.lower()  # only ASCII capitals to fold: 1:1
    else:
        s1 = text.translate(FOLD)
        ident = len(s1) == len(text) and not _has_irregular(text)
    lens2 = None
    if s1.isascii():
        s2 = s1
    else:
        s2, lens2 = _t2s(s1)
        if lens2 is not None:
            ident = False
    pattern_text = s2
    # stage 3: digits and @/$ used as letters inside Latin words (1:1)
    if _RE_LATIN.search(s2):
        leet = [m.span() for m in _RE_LEET.finditer(s2)]
        if leet:
            parts = []
            pos = 0
            for a, b in leet:
                parts.append(s2[pos:a])
                parts.append(s2[a:b].translate(_LEET))
                pos = b
            parts.append(s2[pos:])
            s2 = "".join(parts)
    # stage 4: separators inside words
    del_join: list[tuple[int, int]] = []
    for m in _RE_CJK_GAP.finditer(s2):
        a = m.start()
        if a > 0 and is_han(s2[a - 1]):
            del_join.append((a, m.end()))
    if _RE_LATIN.search(s2):
        runs = []
        for m in _RE_LETTER_RUN.finditer(s2):
            a, b = m.span()
            runs.extend(x.span() for x in _RE_SEPS.finditer(s2, a, b))
        if runs:
            del_join = sorted(del_join + runs)
    s3 = _delete(s2, del_join) if del_join else s2
    # stage 5: folded repeats of Latin letters
    del_rep = [(m.start() + 1, m.end()) for m in _RE_REPEAT.finditer(s3)] if len(s3) > 2 else []
    final = _delete(s3, del_rep) if del_rep else s3
    return Normalized(text, final, pattern_text, ident, lens2, del_join, del_rep, len(s2), len(s3))


def normalize_term(term: str) -> str:
    """A rule term in its matching form (the same folds as a message)."""
    return normalize(term).text


# ------------------------------------------------------------------------------------ pinyin

_TONE = str.maketrans({"ü": "v", "ǖ": "v", "ǘ": "v", "ǚ": "v", "ǜ": "v", "ê": "e"})


def _toneless(p: str) -> str:
    p = p.translate(_TONE)
    return "".join(c for c in unicodedata.normalize("NFD", p) if unicodedata.category(c) != "Mn")


_py_lock = threading.Lock()
_py_table: dict[int, str] | None = None
_py_all: dict[int, tuple[str, ...]] | None = None


def _build_pinyin() -> None:
    global _py_table, _py_all
    from pypinyin.pinyin_dict import pinyin_dict

    table: dict[int, str] = {}
    every: dict[int, tuple[str, ...]] = {}
    for cp, readings in pinyin_dict.items():
        rs: list[str] = []
        for r in readings.split(","):
            t = _toneless(r.strip())
            if t and t.isascii() and t.isalpha() and t not in rs:
                rs.append(t)
        if rs:
            table[cp] = rs[0]
            every[cp] = tuple(rs)
    _py_all = every
    _py_table = table


def pinyin_table() -> dict[int, str]:
    """code point -> toneless first pinyin reading (a str.translate table), built once."""
    if _py_table is None:
        with _py_lock:
            if _py_table is None:
                _build_pinyin()
    return _py_table  # type: ignore[return-value]


def pinyin_readings(ch: str) -> tuple[str, ...]:
    """Every toneless reading of a character (empty for non-Han)."""
    pinyin_table()
    return _py_all.get(ord(ch), ())  # type: ignore[union-attr]


def term_pinyins(term: str, limit: int = 16, units: bool = False) -> list:
    """Pinyin spellings of a normalized zh term: every combination of the readings of its
    polyphonic characters (capped at ``limit``), non-Han characters kept as they are. With
    ``units=True`` each spelling is a tuple of its units (one syllable or character each)."""
    choices: list[tuple[str, ...]] = []
    for ch in term:
        rs = pinyin_readings(ch)
        choices.append(rs if rs else (ch,))
    out: list = []
    for combo in itertools.product(*choices):
        out.append(combo if units else "".join(combo))
        if len(out) >= limit:
            break
    return out
