"""Feature extraction for the trained classifier (module-level and picklable).

Input is the NORMALIZED text (``app.engine.normalize.normalize(text).text``). Steps:

1. ``mask_classes``: URLs, e-mail addresses, phone numbers and digit runs become one class
   character each (private-use code points), so real traffic ("call 13812345678", "100元")
   looks like the corpora whose digits are masked (spam800k: "xxxxxxxxxxx", "xxx元").
   Digit runs are bucketed by length: 1-2, 3-4, 5-10, 11 (phone-like), 12+ (card-like).
2. ``compact``: punctuation, symbols and whitespace are dropped, except one space between two
   Latin/digit characters (English words stay apart). The fake-base-station corpus has had its
   punctuation removed; dropping it everywhere makes the corpora and real SMS look alike and
   defeats separator evasion (赌 博, 赌.博).
3. ``Analyzer``: character 1-3-grams of the compact text plus jieba words (rjieba, the jieba-rs
   binding: the same tokens as ``jieba.lcut(HMM=False)`` ~24x faster; falls back to jieba), with
   an optional user dictionary (the rule lexicons' Chinese terms, frozen into the model at
   training time so tokenization never drifts from what the model learnt). Word features carry
   a ``\\x02`` prefix so they never collide with character n-grams. With ``latin_bigrams`` (a
   training recipe option, pickled with the model) pairs of neighbouring Latin words are added,
   prefixed ``\\x03``.

Character n-grams respect word boundaries: the compact text is cut at its spaces (which stand
only between two Latin/digit words) and each piece is padded with one space, so "is ex" gives no
"sex" and a word's first and last letters are marked (" es", "ex "), as scikit-learn's
``char_wb`` does. Chinese text has no spaces and is one piece.

``content_units`` counts what a message says in words: CJK characters plus Latin words of two or
more letters, after links, e-mail addresses, phone numbers and digit runs are masked. The policy
bounds the classifier on texts with little content (rules/policy.yaml ``classifier.min_content``).

Bump FEATURES_VERSION whenever a change here alters the tokens of any text: a model whose
metadata names another version is refused at load time.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple

FEATURES_VERSION = "2"

URL_TOK = "\ue000"
EMAIL_TOK = "\ue001"
PHONE_TOK = "\ue002"
NUM_S_TOK = "\ue003"   # 1-2 digits
NUM_M_TOK = "\ue004"   # 3-4 digits
NUM_L_TOK = "\ue005"   # 5-10 digits
NUM_XL_TOK = "\ue006"  # 12+ digits (card / account numbers)
WORD_PREFIX = "\x02"
BIGRAM_PREFIX = "\x03"
# a Latin word (the compact text keeps one space between two Latin/digit words)
_LATIN_TOKEN_RE = re.compile(r"(?<![a-z0-9])[a-z0-9]+")

CLASS_NAMES = {
    URL_TOK: "<URL>", EMAIL_TOK: "<EMAIL>", PHONE_TOK: "<PHONE>", NUM_S_TOK: "<NUM>",
    NUM_M_TOK: "<NUM>", NUM_L_TOK: "<NUM>", NUM_XL_TOK: "<LONGNUM>",
}

_TLD = r"(?:com|cn|net|org|cc|me|top|xyz|vip|info|io|co|ly|tk|ml|gl|link|club|site|shop|app|hk|tw|ru|uk|biz|pw|mobi|asia|tv|la|in)"
_URL_RE = re.compile(
    r"(?:https?://|www\.)[a-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
    r"|(?<![a-z0-9@.\-])[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\." + _TLD
    + r"(?![a-z0-9\-])(?:/[a-z0-9\-._~/?#=&%+]*)?"
)
# the look-behind lets only the start of a run of address characters try to match (linear, same matches)
_EMAIL_RE = re.compile(r"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}")
# phone numbers: mobile (optionally +86), 400/800 hotlines, landlines with area code
_PHONE_RE = re.compile(
    r"(?<![0-9x])(?:(?:\+?86[\s\-]?)?1[3-9]\d{9}"
    r"|[48]00[\s\-]?\d{3}[\s\-]?\d{4}"
    r"|0\d{2,3}[\s\-]\d{7,8})(?![0-9x])"
)
# digit runs; masked 'x' runs only when not part of a Latin word (spam800k masks digits as x)
_NUM_RE = re.compile(r"\d+|(?<![a-z])x+(?![a-z])")
_DIGIT_RE = re.compile(r"\d")  # the same digits as \d above (any script's, not only 0-9)
_NON_WORD_RE = re.compile(r"[^\w\ue000-\ue00f]+")
_UNDERSCORE_RE = re.compile(r"_+")
_SPACE_RE = re.compile(r"(?<![a-z0-9]) | (?![a-z0-9])")


def _num_token(m: re.Match) -> str:
    s = m.group(0)
    n = len(s)
    if s[0] == "x" and s.strip("x") == "" and n == 1:
        # a lone 'x' between non-letters: a masked single digit in the corpora, "3 x 4" in life
        return NUM_S_TOK
    if n <= 2:
        return NUM_S_TOK
    if n <= 4:
        return NUM_M_TOK
    if n == 11:
        return PHONE_TOK
    if n <= 10:
        return NUM_L_TOK
    return NUM_XL_TOK


def mask_classes(text: str) -> str:
    """URLs, e-mails, phone numbers and digit runs (also masked ``x`` runs) -> class characters.
    Each regex runs only on a text that has what every one of its matches needs (a URL a dot
    or "://", an e-mail "@", a phone number a digit, a run a digit or an "x")."""
    if "." in text or "://" in text:
        text = _URL_RE.sub(URL_TOK, text)
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL_TOK, text)
    if _DIGIT_RE.search(text) is not None:
        text = _PHONE_RE.sub(PHONE_TOK, text)
    elif "x" not in text:
        return text
    return _NUM_RE.sub(_num_token, text)


def compact(text: str) -> str:
    """Drop punctuation/symbols/whitespace; keep one space only between two Latin/digit chars."""
    text = _NON_WORD_RE.sub(" ", text)
    if "_" in text:
        text = _UNDERSCORE_RE.sub(" ", text)
    return _SPACE_RE.sub("", text).strip()


def prepare(normalized_text: str) -> str:
    """The text the n-grams and words are taken from."""
    return compact(mask_classes(normalized_text))


def char_ngrams(s: str, lo: int = 1, hi: int = 3) -> list[str]:
    out: list[str] = []
    n_chars = len(s)
    for n in range(lo, hi + 1):
        out.extend([s[i:i + n] for i in range(n_chars - n + 1)])
    return out


def char_ngrams_wb(s: str, lo: int = 1, hi: int = 3) -> list[str]:
    """Character n-grams that never cross a space: each space-free piece of ``s`` gives its
    n-grams of length ``lo``..``hi``, those of length >= 2 from the piece padded with a space."""
    out: list[str] = []
    for piece in (s.split(" ") if " " in s else (s,)):
        if not piece:
            continue
        if lo <= 1:
            out.extend(piece)
        padded = " " + piece + " "
        n_chars = len(padded)
        for n in range(max(lo, 2), hi + 1):
            out.extend([padded[i:i + n] for i in range(n_chars - n + 1)])
    return out


_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD_RE = re.compile(r"[a-z]{2,}")


class Content(NamedTuple):
    """What a message says in words: its CJK characters and its Latin words (2+ letters)."""

    cjk: int
    latin: int

    @property
    def units(self) -> int:
        return self.cjk + self.latin

    @property
    def lang(self) -> str:
        """"en" when Latin words outnumber CJK characters, else "zh"."""
        return "en" if self.latin > self.cjk else "zh"


def content_units(prepared: str) -> Content:
    """The Content of a PREPARED text (links, e-mail addresses and numbers already masked)."""
    return Content(len(_CJK_RE.findall(prepared)), len(_LATIN_WORD_RE.findall(prepared)))


class Analyzer:
    """``Analyzer(user_words)(normalized_text) -> list[str]`` of feature tokens.

    Picklable (it pickles as its user-word list and rebuilds its own jieba instance), so a
    scikit-learn vectorizer holding it can be saved with joblib. Each Analyzer owns its
    tokenizer: the global jieba dictionary is never touched.
    """

    def __init__(self, user_words: Iterable[str] = (), ngram_range: tuple[int, int] = (1, 3),
                 latin_bigrams: bool = False):
        self.user_words = tuple(sorted(set(w for w in user_words if w)))
        self.ngram_range = tuple(ngram_range)
        self.latin_bigrams = bool(latin_bigrams)
        self._cut = _make_cutter(self.user_words)

    def __reduce__(self):
        return (Analyzer, (self.user_words, self.ngram_range, self.latin_bigrams))

    def words(self, prepared: str) -> list[str]:
        # words of two or more characters (single characters are already unigrams; the
        # compact text has single spaces only, which are one character long)
        return [WORD_PREFIX + w for w in self._cut(prepared) if len(w) > 1]

    def tokens_of_prepared(self, prepared: str) -> list[str]:
        """The feature tokens of a prepared text: its character n-grams, words and word pairs."""
        toks = char_ngrams_wb(prepared, *self.ngram_range)
        toks.extend(self.word_tokens(prepared)[0])
        return toks

    def word_tokens(self, prepared: str) -> tuple[list[str], list[str]]:
        """(the feature tokens that are not character n-grams, the words among them) of a
        prepared text: its words and, with ``latin_bigrams``, its Latin word pairs after them
        (``Classifier`` finds the n-grams itself and explains with the words)."""
        if not prepared:
            return [], []
        words = self.words(prepared)
        if not self.latin_bigrams:
            return words, words
        return words + latin_bigrams(prepared), words

    def __call__(self, normalized_text: str) -> list[str]:
        return self.tokens_of_prepared(prepare(normalized_text))


def latin_bigrams(prepared: str) -> list[str]:
    """Pairs of neighbouring Latin words ("kill urself", "go back"): English says with word order
    what Chinese says with characters. Prefixed so they never collide with other tokens."""
    out = []
    prev, prev_end = None, -2
    for m in _LATIN_TOKEN_RE.finditer(prepared):
        if prev is not None and m.start() == prev_end + 1 and prepared[prev_end] == " ":
            out.append(BIGRAM_PREFIX + prev + " " + m.group())
        prev, prev_end = m.group(), m.end()
    return out


def analyze(normalized_text: str) -> list[str]:
    """Module-level analyzer with no user dictionary (for quick use and tests)."""
    return _DEFAULT_ANALYZER(normalized_text)


def display_token(tok: str) -> str:
    """A feature token as a reviewer reads it: class characters spelled out, prefix dropped."""
    if tok.startswith((WORD_PREFIX, BIGRAM_PREFIX)):
        tok = tok[1:]
    if any(c in CLASS_NAMES for c in tok):
        tok = "".join(CLASS_NAMES.get(c, c) for c in tok)
    return tok


def _make_cutter(user_words: tuple[str, ...]):
    try:
        import rjieba
    except ImportError:  # pragma: no cover - rjieba is a declared dependency
        return _make_jieba_cutter(user_words)
    tk = rjieba.Jieba()
    for w in user_words:
        if len(w) >= 2 and " " not in w:
            tk.add_word(w, max(tk.suggest_freq(w), 1), None)
    return lambda s: tk.cut(s, False)


def _make_jieba_cutter(user_words):  # pragma: no cover
    import logging

    import jieba
    jieba.setLogLevel(logging.ERROR)
    tk = jieba.Tokenizer()
    for w in user_words:
        if len(w) >= 2 and " " not in w:
            tk.add_word(w, tk.suggest_freq(w, tune=False))
    return lambda s: tk.lcut(s, HMM=False)


_DEFAULT_ANALYZER = Analyzer(())
