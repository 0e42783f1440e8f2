"""Keyword matching: one Aho-Corasick automaton for the whole rule set.

- Every term is normalized with the message normalizer (``normalize_term``) and added to ONE
  pyahocorasick automaton, keyed by its matching form, with the rule(s) it belongs to; allow
  phrases live in the same automaton.
- Homophone / slang variants (rules/variants.yaml) are expanded inside terms at build time: a
  term containing a canonical form (微信) is also added with every variant (威信, vx ...),
  mapped to the same rule. A term that IS the canonical form is not expanded unless the
  canonical is listed under ``standalone`` (so 菠菜 the vegetable never fires on its own).
  A canonical form made of Latin letters, digits, apostrophes and spaces (you, you're, going to,
  qq) is replaced only where it stands as whole words in the term, so "you -> u" turns "kill
  you" into "kill u" and leaves "young" alone.
- English terms (``lang: en``) match whole words only: the characters around the match must
  not be Latin letters ("classic" does not hold "ass"). Each English term is also
  added with any one vowel inside a word masked by ``*`` ("b*mb", "p*rn"), the way senders
  blank a letter to slip past a filter.
- An allow phrase cancels every keyword hit whose span lies inside one of its occurrences
  (平台独家 beats 台独), optionally only for some categories.
- Terms of ``pinyin: true`` rules also go, as toneless pinyin (every reading of polyphonic
  characters), into a second automaton scanned over the pinyin view; such a hit counts only
  when the matched text holds at least one Latin letter (luo聊, du场, fa轮, luoliao) and starts
  and ends on character and Latin-word boundaries. Pure-CJK homophones go through variants.
- Per-account ``CustomLists`` are compiled into a small automaton per (account, version),
  cached (LRU) on the matcher of the rule set in force, never shared between accounts.
"""
from __future__ import annotations

import functools
import itertools
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Sequence

import ahocorasick

from app.engine.normalize import Normalized, is_han, normalize_term, term_pinyins, window_sources
from app.engine.types import Hit

__all__ = ["CustomLists", "KeywordMatcher", "ACCOUNT_BLOCK_RULE", "ACCOUNT_REVIEW_RULE"]

ACCOUNT_BLOCK_RULE = "KW_ACCOUNT_BLOCK"
ACCOUNT_REVIEW_RULE = "KW_ACCOUNT_REVIEW"
ACCOUNT_CACHE_SIZE = 512
PINYIN_RUNS_MAX = 400_000


def _is_en(term: str) -> bool:
    """Whether a normalized list term is English (whole-word matching): ASCII letters/digits."""
    return term.isascii() and any(c.isalpha() for c in term)


@dataclass(frozen=True)
class CustomLists:
    """An account's own lists, given at check time.

    ``block`` / ``review``: (term, category) pairs (a bare string means category None);
    ``allow``: phrases that cancel keyword hits inside them, for this account only.
    Compiled once per (account, version) and cached; ``version`` must change whenever the
    lists change (the store uses the lists' last-modified stamp or a content hash)."""

    account: str
    version: str = ""
    block: tuple = ()
    review: tuple = ()
    allow: tuple = ()

    def __post_init__(self) -> None:
        def pairs(items) -> tuple:
            out = []
            for it in items or ():
                if isinstance(it, str):
                    out.append((it, None))
                else:
                    term, cat = it
                    out.append((str(term), cat))
            return tuple(out)

        object.__setattr__(self, "account", str(self.account))
        object.__setattr__(self, "version", str(self.version))
        object.__setattr__(self, "block", pairs(self.block))
        object.__setattr__(self, "review", pairs(self.review))
        object.__setattr__(self, "allow", tuple(str(a) for a in (self.allow or ())))

    @property
    def empty(self) -> bool:
        return not (self.block or self.review or self.allow)


class _Rule:
    __slots__ = ("id", "category", "score", "action", "description", "subcategory")

    def __init__(self, id, category, score, action, description, subcategory=None):
        self.id = id
        self.category = category
        self.score = score
        self.action = action
        self.description = description
        self.subcategory = subcategory

    def hit(self, norm: Normalized, s: int, e: int) -> Hit:
        a, b = norm.span(s, e)
        return Hit(self.id, self.category, "keyword", self.score, self.action,
                   norm.original[a:b], (a, b), self.description, None, self.subcategory)


class _Composite(_Rule):
    """A rule that fires when a term of every group occurs within ``within`` characters."""

    __slots__ = ("groups", "within")

    def __init__(self, id, category, score, action, description, subcategory, groups, within):
        super().__init__(id, category, score, action, description, subcategory)
        self.groups = groups  # group names, in order
        self.within = within

    def find(self, norm: Normalized, found: list[tuple[int, int, int]]) -> Hit | None:
        """The hit for the narrowest window holding one occurrence of every group, or None.
        ``found``: (start, end, group index) of each part occurrence (normalized text)."""
        n = len(self.groups)
        found.sort()
        best = None
        count = [0] * n
        have = 0
        lo = 0
        for hi, (_s, e, g) in enumerate(found):  # sliding window over occurrences by start
            if count[g] == 0:
                have += 1
            count[g] += 1
            while have == n:
                s0 = found[lo][0]
                end = max(x[1] for x in found[lo:hi + 1])
                if end - s0 <= self.within and (best is None or end - s0 < best[1] - best[0]):
                    best = (s0, end, lo, hi)
                gl = found[lo][2]
                count[gl] -= 1
                if count[gl] == 0:
                    have -= 1
                lo += 1
        if best is None:
            return None
        s0, e0, lo, hi = best
        parts = []
        seen = set()
        for s, e, g in found[lo:hi + 1]:
            if g in seen:
                continue
            seen.add(g)
            a, b = norm.span(s, e)
            parts.append((self.groups[g], norm.original[a:b], (a, b)))
        parts.sort(key=lambda p: self.groups.index(p[0]))
        a, b = norm.span(s0, e0)
        return Hit(self.id, self.category, "keyword", self.score, self.action, norm.original[a:b], (a, b),
                   self.description, None, self.subcategory, tuple(parts))


class _Part:
    """One group of a composite rule, as an automaton value."""

    __slots__ = ("rule", "group", "category")

    def __init__(self, rule: _Composite, group: int):
        self.rule = rule
        self.group = group
        self.category = rule.category


_LATIN_CANON_RE = re.compile(r"[a-z0-9' ]+")


@functools.lru_cache(maxsize=None)
def _canon_re(canon: str) -> re.Pattern:
    """Where a canonical form stands in a term: anywhere for CJK forms (赌博 in 赌博平台), as
    whole words for Latin ones (you in "kill you", not in "young")."""
    if _LATIN_CANON_RE.fullmatch(canon):
        return re.compile(r"(?<![a-z0-9'])" + re.escape(canon) + r"(?![a-z0-9'])")
    return re.compile(re.escape(canon))


def _expand(term: str, variants: dict[str, tuple[str, ...]], standalone: frozenset[str],
            canon_order: Sequence[str], limit: int = 64) -> list[str]:
    """The term plus its variant spellings (see module doc)."""
    out = [term]
    for c in canon_order:
        if c not in term:
            continue
        if term == c and c not in standalone:
            continue
        rx = _canon_re(c)
        new = [rx.sub(lambda _m, v=v: v, t) for t in out if rx.search(t) for v in variants[c]]
        for n in new:
            if n not in out:
                out.append(n)
                if len(out) >= limit:
                    return out
    return out


def _initial_forms(term: str, units: tuple[str, ...], limit: int = 16) -> list[tuple[str, ...]]:
    """``units`` (one pinyin spelling of ``term``) and the spellings with some of its Han
    syllables cut to their first letter, at least two Han syllables left whole: a letter beside
    one character ("h回" of 回回, "jb的" of 嫁不得) is everywhere a link or a code meets Chinese.
    Terms of fewer than three Han characters: ``units`` alone."""
    han = [i for i, ch in enumerate(term) if is_han(ch)]
    out = [units]
    if len(han) < 3:
        return out
    for k in range(1, len(han) - 1):
        for cut in itertools.combinations(han, k):
            u = list(units)
            for i in cut:
                u[i] = u[i][0]
            out.append(tuple(u))
            if len(out) > limit:
                return out
    return out


def _masked(key: str) -> list[str]:
    """An English key with one vowel inside a word blanked by ``*`` (b*mb, p*rn), one variant
    per vowel; a vowel that starts or ends a word is left alone (``*`` there is punctuation)."""
    out = []
    for i in range(1, len(key) - 1):
        if key[i] in "aeiou" and "a" <= key[i - 1] <= "z" and "a" <= key[i + 1] <= "z":
            out.append(key[:i] + "*" + key[i + 1:])
    return out


def _bounded(t: str, s: int, e: int) -> bool:
    """Whole-word test for English terms in the normalized text."""
    if s > 0:
        p = t[s - 1]
        if "a" <= p <= "z" or ("0" <= p <= "9" and "0" <= t[s] <= "9"):
            return False
    if e < len(t):
        n = t[e]
        if "a" <= n <= "z" or ("0" <= n <= "9" and "0" <= t[e - 1] <= "9"):
            return False
    return True


class _Builder:
    """Collects key -> (rules, allow) before making an automaton."""

    def __init__(self) -> None:
        self.keys: dict[str, list] = {}

    def add_rule(self, key: str, rule: _Rule, en: bool) -> None:
        slot = self.keys.get(key)
        if slot is None:
            slot = self.keys[key] = [[], None, False]
        ref = (rule, en)
        if ref not in slot[0]:
            slot[0].append(ref)

    def add_allow(self, key: str, cats: frozenset | None) -> None:
        slot = self.keys.get(key)
        if slot is None:
            slot = self.keys[key] = [[], None, False]
        if cats is None or slot[1] is True:
            slot[1] = True
        else:
            slot[1] = cats if slot[1] is None else (slot[1] | cats)
        slot[2] = _is_en(key)

    def build(self):
        if not self.keys:
            return None
        a = ahocorasick.Automaton()
        for key, (refs, allow, allow_en) in self.keys.items():
            a.add_word(key, (len(key), tuple(refs), allow, allow_en))
        a.make_automaton()
        return a


class _AccountMatcher:
    __slots__ = ("account", "version", "auto")

    def __init__(self, account: str, version: str, auto):
        self.account = account
        self.version = version
        self.auto = auto


class KeywordMatcher:
    """The compiled keyword layer of one rule set (immutable once built, shared by threads)."""

    def __init__(self, rules: Iterable, allow: Iterable = (), variants: dict | None = None,
                 standalone: frozenset = frozenset(), account_block_score: float = 10.0,
                 account_review_score: float = 5.0):
        self.variants = dict(variants or {})
        self.standalone = frozenset(standalone)
        # longest canonical first so 微信号 expands before 微信
        self._canon = sorted(self.variants, key=len, reverse=True)
        self.account_block_score = account_block_score
        self.account_review_score = account_review_score
        self.warnings: list[str] = []
        self.rules: dict[str, _Rule] = {}
        main = _Builder()
        py = _Builder()
        py_units: set[tuple[str, ...]] = set()
        self._py_context = 0
        for r in rules:
            en = r.lang == "en"
            if r.groups:
                comp = _Composite(r.id, r.category, float(r.score), r.hit_action, r.description, r.subcategory,
                                  tuple(name for name, _t in r.groups), r.within)
                self.rules[r.id] = comp
                for gi, (_name, gterms) in enumerate(r.groups):
                    part = _Part(comp, gi)
                    for term in gterms:
                        for key in self._keys(term, en):
                            main.add_rule(key, part, en)
                        if r.pinyin:
                            self._add_pinyin(py, py_units, term, part, initials=True)
                continue
            rule = _Rule(r.id, r.category, float(r.score), r.hit_action, r.description, r.subcategory)
            self.rules[r.id] = rule
            norms = r.norm_terms or tuple(normalize_term(t).strip() for t in r.terms)
            for term in norms:
                if not term:
                    continue
                for key in self._keys(term, en):
                    main.add_rule(key, rule, en)
                if r.pinyin:
                    self._add_pinyin(py, py_units, term, rule)
        for p in allow:
            key = normalize_term(p.phrase).strip()
            if key:
                main.add_allow(key, p.categories)
        self.size = len(main.keys)
        self.pinyin_size = len(py.keys)
        # Latin runs that can be part of a pinyin hit: a hit covers whole units (syllables or
        # the term's own Latin characters) and a whole Latin run, so the run must be a
        # contiguous unit sequence of some key. The set is exact while it stays small;
        # beyond PINYIN_RUNS_MAX entries only the letter pairs of the keys are checked.
        runs: set[str] | None = set()
        for units in py_units:
            n = len(units)
            for i in range(n):
                acc = ""
                for j in range(i, n):
                    acc += units[j]
                    runs.add(acc)
            if len(runs) > PINYIN_RUNS_MAX:
                runs = None
                break
        self._py_runs = frozenset(runs) if runs is not None else None
        self._py_pairs = frozenset(k[i:i + 2] for k in py.keys for i in range(len(k) - 1))
        self._py_maxlen = max((len(k) for k in py.keys), default=0)
        self._auto = main.build()
        self._py_auto = py.build()
        self._acct_lock = threading.Lock()
        self._acct_cache: OrderedDict[tuple[str, str], _AccountMatcher | None] = OrderedDict()

    def _add_pinyin(self, py: _Builder, py_units: set, term: str, rule, initials: bool = False) -> None:
        """Key a Chinese term (of a plain rule, or of one group of a composite) by its pinyin
        readings in the pinyin automaton (安hui人, fei洲人 match 安徽人, 非洲人). With
        ``initials`` (a composite's parts, which count only beside the other groups) also with
        some of its syllables cut to their first letter, two kept whole (贵Z人, h南人 match 贵州人,
        河南人; see ``_initial_forms``). A term without a Han character has no pinyin key."""
        if not any(is_han(c) for c in term):
            return
        self._py_context = max(self._py_context, len(term))
        for units in term_pinyins(term, units=True):
            for u in (_initial_forms(term, units) if initials else (units,)):
                py_units.add(u)
                py.add_rule("".join(u), rule, False)

    def _keys(self, term: str, en: bool) -> list[str]:
        """The automaton keys of a normalized term: its variant spellings and, for English,
        each of those with one inner vowel masked by ``*``."""
        keys = _expand(term, self.variants, self.standalone, self._canon)
        if en:
            keys = keys + [m for k in keys for m in _masked(k)]
        return keys

    # ----------------------------------------------------------------------- account lists
    def compile_account(self, lists: CustomLists | None) -> _AccountMatcher | None:
        if lists is None or lists.empty:
            return None
        key = (lists.account, lists.version)
        with self._acct_lock:
            if key in self._acct_cache:
                self._acct_cache.move_to_end(key)
                return self._acct_cache[key]
        b = _Builder()
        rules: dict[tuple[str, object], _Rule] = {}
        for kind, items, rid, action, score in (
            ("block", lists.block, ACCOUNT_BLOCK_RULE, "reject", self.account_block_score),
            ("review", lists.review, ACCOUNT_REVIEW_RULE, "review", self.account_review_score),
        ):
            for term, cat in items:
                norm = normalize_term(term).strip()
                if not norm:
                    continue
                rule = rules.get((rid, cat))
                if rule is None:
                    rule = rules[(rid, cat)] = _Rule(
                        rid, cat, score, action, f"account {lists.account} {kind} list")
                en = _is_en(norm)
                for k in self._keys(norm, en):
                    b.add_rule(k, rule, en)
        for phrase in lists.allow:
            norm = normalize_term(phrase).strip()
            if norm:
                b.add_allow(norm, None)
        m = _AccountMatcher(lists.account, lists.version, b.build())
        with self._acct_lock:
            self._acct_cache[key] = m
            self._acct_cache.move_to_end(key)
            while len(self._acct_cache) > ACCOUNT_CACHE_SIZE:
                self._acct_cache.popitem(last=False)
        return m

    @property
    def cached_accounts(self) -> list[tuple[str, str]]:
        with self._acct_lock:
            return list(self._acct_cache)

    # ----------------------------------------------------------------------------- match
    @staticmethod
    def _scan(auto, text: str, cands: list, allows: list) -> None:
        for end, (n, refs, allow, allow_en) in auto.iter(text):
            e = end + 1
            s = e - n
            if allow is not None and (not allow_en or _bounded(text, s, e)):
                allows.append((s, e, allow))
            for rule, en in refs:
                if en and not _bounded(text, s, e):
                    continue
                cands.append((s, e, rule))

    def _py_run_ok(self, run: str) -> bool:
        runs = self._py_runs
        if runs is not None:
            return run in runs
        if len(run) > self._py_maxlen:
            return False
        pairs = self._py_pairs
        for i in range(len(run) - 1):
            if run[i:i + 2] not in pairs:
                return False
        return True

    def _scan_pinyin(self, norm: Normalized, cands: list) -> None:
        text = norm.text
        auto = self._py_auto
        for off, window, view in norm.pinyin_windows(self._py_context, self._py_run_ok):
            src = None
            for end, (n, refs, _a, _e) in auto.iter(view):
                pe = end + 1
                ps = pe - n
                if view is window:
                    ws, we = ps, pe
                else:
                    if src is None:
                        src = window_sources(window)
                    ws, we = src[ps], src[pe - 1] + 1
                    # the hit must cover whole characters (whole pinyin syllables)
                    if (ps > 0 and src[ps - 1] == ws) or (pe < len(src) and src[pe] == we - 1):
                        continue
                s, e = off + ws, off + we
                seg = text[s:e]
                if not any("a" <= c <= "z" for c in seg):
                    continue  # pure CJK homophone: that is variants.yaml's job
                if not _bounded_latin(text, s, e):
                    continue
                for rule, _en in refs:
                    cands.append((s, e, rule))

    def match(self, norm: Normalized, account: _AccountMatcher | CustomLists | None = None) -> list[Hit]:
        """Keyword hits of a normalized message, allow-list applied, one hit per rule (its
        first, longest occurrence), spans and evidence in the ORIGINAL text."""
        text = norm.text
        cands: list = []
        allows: list = []
        if self._auto is not None:
            self._scan(self._auto, text, cands, allows)
        if isinstance(account, CustomLists):
            account = self.compile_account(account)
        if account is not None and account.auto is not None:
            self._scan(account.auto, text, cands, allows)
        if self._py_auto is not None:
            self._scan_pinyin(norm, cands)
        if not cands:
            return []
        best: dict[int, tuple[int, int, _Rule]] = {}
        parts: dict[int, tuple[_Composite, list]] | None = None
        for s, e, rule in cands:
            if allows:
                cancelled = False
                for a, b, cats in allows:
                    if a <= s and e <= b and (cats is True or rule.category in cats):
                        cancelled = True
                        break
                if cancelled:
                    continue
            if type(rule) is _Part:
                if parts is None:
                    parts = {}
                slot = parts.get(id(rule.rule))
                if slot is None:
                    slot = parts[id(rule.rule)] = (rule.rule, [])
                slot[1].append((s, e, rule.group))
                continue
            k = id(rule)
            cur = best.get(k)
            if cur is None or s < cur[0] or (s == cur[0] and e > cur[1]):
                best[k] = (s, e, rule)
        hits = [rule.hit(norm, s, e) for s, e, rule in best.values()]
        if parts is not None:
            for comp, found in parts.values():
                if len({g for _s, _e, g in found}) == len(comp.groups):
                    h = comp.find(norm, found)
                    if h is not None:
                        hits.append(h)
        hits.sort(key=lambda h: (h.span[0], h.rule))
        return hits

    def cancelled_by(self, norm: Normalized) -> list[tuple[str, tuple[int, int]]]:
        """Allow phrases found in a message (phrase evidence, original span): for explaining."""
        if self._auto is None:
            return []
        cands: list = []
        allows: list = []
        self._scan(self._auto, norm.text, cands, allows)
        out = []
        for s, e, _c in allows:
            a, b = norm.span(s, e)
            out.append((norm.original[a:b], (a, b)))
        return out


def _bounded_latin(t: str, s: int, e: int) -> bool:
    """A pinyin hit that starts (ends) on a Latin letter must start (end) a Latin word."""
    if s > 0 and "a" <= t[s] <= "z" and "a" <= t[s - 1] <= "z":
        return False
    if e < len(t) and "a" <= t[e - 1] <= "z" and "a" <= t[e] <= "z":
        return False
    return True


def iter_keys(matcher: KeywordMatcher) -> Iterable[str]:  # pragma: no cover - debugging aid
    if matcher._auto is None:
        return iter(())
    return (k for k, _v in matcher._auto.items())

