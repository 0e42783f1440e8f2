"""Pattern rules (PAT_): URLs and short links, phone numbers, WeChat / QQ ids, money amounts.

Declared in rules/patterns.yaml; the regexes of the built-in kinds live here, their data
(short-link hosts, contact introducers, top-level domains) in the YAML. Patterns run on the
*pattern view* of a message (NFKC, case folded, invisibles removed, traditional to simplified,
separators kept), so full-width digits and ＶＸ behave, and report spans in the ORIGINAL text.

Built-in kinds run in the order of the YAML file; rules of the same ``group`` (phone, link) never
report overlapping text: the earlier rule claims it (short_link before url). Each kind has a
cheap prefilter (a substring test or one tiny regex shared by the phone kinds) so a message
without a digit run, a dot or a currency word skips its regexes. (One combined alternation
was tried and is slower: the regex engine loses its candidate-position skipping.)

Every regex is linear on any input (input may be 100k chars): bounded repetitions, no nested
unbounded quantifiers, and guards that stop a match from starting in the middle of a run of
digits or letters. Each alternative starts with a literal or a character set so the regex
engine skips straight to candidate positions (a leading look-behind would make it try every
position, 4x slower on a typical SMS); guards that need a look-behind put it after the first
character or run in Python on the (rare) matches. Operator regexes must follow the same
discipline (see rules/README.md).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from app.engine.bidi import BIDI_RE
from app.engine.normalize import Normalized, normalize
from app.engine.types import Hit

__all__ = ["PatternRule", "PatternMatcher", "BUILTIN_KINDS"]

_DEFAULT_TLDS = (
    "com cn net org info top xyz vip cc me io co tk ml ga cf gq club site online shop app ly gl "
    "to tv hk tw biz link live fun icu ink wang ltd group store work pro asia mobi win bet one "
    "life plus red kim ren xin fit"
).split()
_DEFAULT_SHORT = ("t.cn", "dwz.cn", "url.cn", "bit.ly", "tinyurl.com", "goo.gl", "is.gd", "ow.ly", "suo.im")
_DEFAULT_WECHAT = ("微信", "威信", "薇信", "徽信", "v信", "vx", "wx", "微x", "加v", "weixin", "wechat")
_DEFAULT_QQ = ("qq", "扣扣", "企鹅号", "q号")

# characters a URL never contains here (whitespace, CJK and its punctuation, quotes, brackets)
_URL_STOP = r"\s<>\"'，。！？、；：（）【】《》「」“”‘’\u3400-\u9fff\uf900-\ufaff"
_URL_TAIL = f"(?::\\d{{1,5}})?(?:[/?#][^{_URL_STOP}]{{0,500}})?"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_DOMAIN_CH = frozenset(_ALNUM + "-.")
_SEP = r"[ \-]?"
_AMOUNT = r"\d{0,11}(?:,\d{3}){0,4}(?:\.\d{1,2})?"
_MONEY_UNITS = "万元|亿元|元|块钱|块|万|亿|rmb|usd|美元|港币|dollars|dollar|pounds|pound"

# A post check gets (text, match) and returns the reported (start, end) or None to drop it.
Post = Callable[[str, "re.Match"], "tuple[int, int] | None"]


def _lit_alt(prefixes, words) -> str:
    """An alternation of literals (prefix + word), longest first."""
    alts = {p + w for p in prefixes for w in words}
    return "|".join(re.escape(w) for w in sorted(alts, key=len, reverse=True))


def _guard(bad_prev: str) -> Post:
    """Drop a match whose preceding character is in ``bad_prev``."""

    def post(text: str, m: re.Match):
        s = m.start()
        if s > 0 and text[s - 1] in bad_prev:
            return None
        return m.span()

    return post


def _plain(text: str, m: re.Match):
    return m.span()


def _domain_start(text: str, dot: int) -> int | None:
    """Walk back from the dot before a top-level domain to the start of the host name."""
    s = dot
    lo = max(0, dot - 253)
    while s > lo and text[s - 1] in _DOMAIN_CH:
        s -= 1
    while s < dot and text[s] in ".-":
        s += 1
    if s == dot or (s > 0 and text[s - 1] in _ALNUM + "@._-"):
        return None  # no host name, or the middle of a word / an e-mail address
    return s


def _url_alts(cfg: dict) -> list[tuple[str, Post]]:
    tlds = "|".join(re.escape(t) for t in sorted(set(cfg["tlds"]), key=len, reverse=True))

    def bare(text: str, m: re.Match):
        s = _domain_start(text, m.start())
        return None if s is None else (s, m.end())

    return [
        (f"(?:https://|http://|ftp://|www\\.)[^{_URL_STOP}]{{1,500}}", _guard(_ALNUM)),
        # a TLD-like label followed by more labels (netflix.com.verify-acct.io) is not the end
        # of the host: the match at the real last label takes the whole host
        (f"\\.(?:{tlds})(?![a-z0-9-]|\\.[a-z0-9-]{{1,63}}\\.|\\.(?:{tlds})(?![a-z0-9-])){_URL_TAIL}", bare),
    ]


def _short_link_alts(cfg: dict) -> list[tuple[str, Post]]:
    """Anchored on ".<last label>/": the host is read backwards and looked up in the set."""
    hosts = frozenset(h for h in cfg["short_link_hosts"] if "." in h)
    labels = sorted({h.rsplit(".", 1)[1] for h in hosts}, key=len, reverse=True)
    if not labels:
        return []

    def post(text: str, m: re.Match):
        d = m.start()
        s = d
        lo = max(0, d - 64)
        while s > lo and text[s - 1] in _DOMAIN_CH:
            s -= 1
        host = text[s:d] + text[d:m.end()].split("/", 1)[0]
        if host.startswith("www."):
            host = host[4:]
        if host not in hosts:
            return None
        for scheme in ("https://", "http://"):
            if text.startswith(scheme, s - len(scheme)):
                s -= len(scheme)
                break
        else:
            if s > 0 and text[s - 1] in _ALNUM + "._-/":
                return None
        e = m.end()
        while text[e - 1] in ".?&=%-":
            e -= 1
        return s, e

    return [(f"\\.(?:{'|'.join(map(re.escape, labels))})/[a-z0-9_.?=&%-]{{1,80}}", post)]


# contact ids written in Chinese numerals (加扣扣 壹贰叁肆伍陆柒捌玖) are ids too
_CN_DIGITS = "零〇一二三四五六七八九两幺壹贰叁肆伍陆柒捌玖"
_ID_DIGIT = f"[0-9{_CN_DIGITS}]"
_ID_FIRST = f"[1-9{_CN_DIGITS[2:]}]"


def _wechat_alts(cfg: dict) -> list[tuple[str, Post]]:
    intro = _lit_alt(("", "加", "添加", "+"), cfg["wechat"])
    return [(
        f"(?:{intro})(?:号码|号|id)?[ ]{{0,3}}[:=]?[ ]{{0,3}}"
        f"(?:[a-z][a-z0-9_-]{{5,19}}|1[3-9]\\d{{9}}|{_ID_DIGIT}{{6,11}})(?![a-z0-9_{_CN_DIGITS}-])",
        _guard(_ALNUM),
    )]


def _qq_alts(cfg: dict) -> list[tuple[str, Post]]:
    intro = _lit_alt(("", "加", "添加"), cfg["qq"])
    return [(f"(?:{intro})(?:群号|群|号码|号)?[ ]{{0,3}}[:=]?[ ]{{0,3}}{_ID_FIRST}{_ID_DIGIT}{{4,10}}(?![0-9{_CN_DIGITS}])",
             _guard(_ALNUM))]


# Phone numbers: the first token is a character set and the "no digit before" guard is a
# look-behind placed after it.
_PHONE = {
    "cn_mobile": rf"[+81](?<![\d+].)(?:(?<=\+)86{_SEP}1|(?<=8)6{_SEP}1|(?<=1))[3-9]\d(?:{_SEP}\d{{4}}){{2}}(?!\d)",
    "cn_landline": r"[(0](?<![\d+(].)(?:(?<=\()0\d{2,3}\)|(?<=0)\d{2,3})[ \-]?[2-9]\d{6,7}(?!\d)",
    "cn_service": r"[48](?<![\d+].)00[ \-]?\d{3}[ \-]?\d{4}(?!\d)",
    "intl_phone": r"\+(?<![\d+].)(?!86)[1-9]\d{0,2}[ \-]?\(?\d{1,4}\)?(?:[ \-]?\d{2,4}){2,4}(?!\d)",
}


def _money_alts(cfg: dict) -> list[tuple[str, Post]]:
    return [
        (rf"\d(?<![\d.,]\d){_AMOUNT}[ ]?(?:{_MONEY_UNITS})", _plain),
        (rf"(?:[¥$€£]|rmb|usd|hkd)[ ]?\d{_AMOUNT}", _guard(_ALNUM)),
    ]


_RE_PHONEISH = re.compile(r"\d(?:[ \-]?\d){6}")
_RE_MONEYISH = re.compile(r"[元块万亿¥$€£]|rmb|usd|hkd|dollar|pound")

# kind -> prefilter key: "phone" (a run of 7+ digits), "money" (a currency word or sign), or a
# substring that must occur
_PREFILTER = {
    "short_link": "/", "url": ".", "cn_mobile": "phone", "cn_landline": "phone",
    "cn_service": "phone", "intl_phone": "phone", "money": "money",
}

BUILTIN_KINDS: dict[str, Callable[[dict], list[tuple[str, Post]]]] = {
    "bidi_control": lambda cfg: [],  # matched on the original text (PatternMatcher._bidi_hits)
    "official_link": lambda cfg: [],  # judged from the other rules' links (PatternMatcher._official)
    "short_link": _short_link_alts,
    "url": _url_alts,
    "wechat_id": _wechat_alts,
    "qq_id": _qq_alts,
    "money": _money_alts,
    **{k: (lambda cfg, _r=v: [(_r, _plain)]) for k, v in _PHONE.items()},
}
_DEFAULT_GROUP = {
    "url": "link", "short_link": "link",
    "cn_mobile": "phone", "cn_landline": "phone", "cn_service": "phone", "intl_phone": "phone",
}


@dataclass(frozen=True)
class PatternRule:
    id: str
    kind: str  # a builtin kind or "regex"
    category: str | None
    score: float
    action: str | None
    description: str
    group: str | None
    regex: re.Pattern | None = None  # operator regex (kind "regex")
    alts: tuple = ()  # builtin: ((compiled regex, post check), ...)
    prefilter: str | None = None
    #: operator regex: strings one of which every match contains (``requires:``); a text with
    #: none of them is not searched
    requires: tuple[str, ...] = ()


def _nested_repeat(src: str) -> bool:
    """Whether a regex repeats a repetition many times: (a+)+, (x{1,9}){2,}, (a*){1,50}:
    catastrophic backtracking on a short input. An outer repetition of at most 10 rounds passes."""
    from re import _constants as C, _parser as P  # noqa: N814 - the stdlib's own regex parser

    repeats = (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None))

    def walk(items, inside: bool) -> bool:
        for op, av in items:
            if op in repeats and op is not None:
                _lo, hi, sub = av
                if inside and (hi is C.MAXREPEAT or hi > 1):
                    return True
                # an outer repetition bounded to a few rounds cannot blow up: (\.[a-z]{2,4}){1,3}
                if walk(sub, inside or hi is C.MAXREPEAT or hi > 10):
                    return True
            elif op is C.SUBPATTERN:
                if walk(av[-1], inside):
                    return True
            elif op is C.BRANCH:
                if any(walk(b, inside) for b in av[1]):
                    return True
            elif op in (C.ASSERT, C.ASSERT_NOT):
                if walk(av[1], inside):
                    return True
        return False

    return walk(P.parse(src), False)


class PatternMatcher:
    """Compiled pattern rules of one rule set (immutable, shared by threads)."""

    def __init__(self, rules: list[PatternRule], cfg: dict | None = None):
        cfg = cfg or _config({})
        compiled = []
        for r in rules:
            if r.kind != "regex" and not r.alts:
                alts = tuple((re.compile(src), post) for src, post in BUILTIN_KINDS[r.kind](cfg))
                r = replace(r, alts=alts, prefilter=_PREFILTER.get(r.kind))
            compiled.append(r)
        self.rules = tuple(compiled)
        self.rule_ids = tuple(r.id for r in compiled)
        self._bidi_rules = tuple(r for r in compiled if r.kind == "bidi_control")
        self._official_rules = tuple(r for r in compiled if r.kind == "official_link")
        self.official_domains = frozenset(cfg.get("official_domains", ()))

    @classmethod
    def from_config(cls, doc: Any, categories: dict | None = None) -> "PatternMatcher":
        """Build from the parsed rules/patterns.yaml (None: no patterns). Raises ValueError."""
        if doc is None:
            return cls([])
        if not isinstance(doc, dict):
            raise ValueError("expected a mapping with 'patterns'")
        allowed = {"patterns", "short_link_hosts", "contact_introducers", "tlds", "official_domains"}
        unknown = set(doc) - allowed
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        cfg = _config(doc)
        items = doc.get("patterns") or []
        if not isinstance(items, list):
            raise ValueError("patterns: expected a list")
        rules: list[PatternRule] = []
        seen: set[str] = set()
        kinds: set[str] = set()
        from app.engine.ruleset import RULE_ID_RE  # local: ruleset imports this module

        for i, p in enumerate(items):
            where = f"patterns[{i}]"
            if not isinstance(p, dict):
                raise ValueError(f"{where}: expected a mapping")
            rid = p.get("id")
            where = f"patterns[{i}] ({rid})"
            unknown = set(p) - {"id", "builtin", "regex", "requires", "category", "score", "action",
                                "description", "group"}
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
            if not (isinstance(rid, str) and rid.startswith("PAT_") and RULE_ID_RE.match(rid)):
                raise ValueError(f"{where}: id must be UPPER_SNAKE starting with PAT_")
            if rid in seen:
                raise ValueError(f"{where}: duplicate id")
            seen.add(rid)
            kind = p.get("builtin")
            src = p.get("regex")
            if (kind is None) == (src is None):
                raise ValueError(f"{where}: give exactly one of builtin: or regex:")
            rx = None
            if kind is not None:
                if kind not in BUILTIN_KINDS:
                    raise ValueError(f"{where}: unknown builtin {kind!r} (known: {', '.join(sorted(BUILTIN_KINDS))})")
                if kind in kinds:
                    raise ValueError(f"{where}: builtin {kind} is already used by another rule")
                kinds.add(kind)
            else:
                kind = "regex"
                if not isinstance(src, str) or not src:
                    raise ValueError(f"{where}: regex must be a non-empty string")
                try:
                    rx = re.compile(src)
                except re.error as exc:
                    raise ValueError(f"{where}: bad regex: {exc}") from None
                if rx.search("") is not None:
                    raise ValueError(f"{where}: regex matches the empty string")
                if _nested_repeat(src):
                    raise ValueError(f"{where}: regex repeats a repetition (like (a+)+): it can take "
                                     "exponential time on a short input; bound or flatten it")
            requires = p.get("requires", ())
            if requires and (kind != "regex" or not isinstance(requires, list)
                             or not all(isinstance(x, str) and x for x in requires)):
                raise ValueError(f"{where}: requires must be a list of non-empty strings, with regex: only")
            cat = p.get("category")
            if cat is not None and (not isinstance(cat, str) or (categories is not None and cat not in categories)):
                raise ValueError(f"{where}: category {cat!r} is not a category of categories.yaml")
            score = p.get("score", 0)
            if not isinstance(score, (int, float)) or isinstance(score, bool):
                raise ValueError(f"{where}: score must be a number")
            action = p.get("action", "score")
            if action not in ("score", "review", "reject"):
                raise ValueError(f"{where}: action must be score, review or reject")
            group = p.get("group", _DEFAULT_GROUP.get(kind))
            if group is not None and not isinstance(group, str):
                raise ValueError(f"{where}: group must be a string")
            rules.append(PatternRule(
                id=rid, kind=kind, category=cat, score=float(score),
                action=None if action == "score" else action,
                description=str(p.get("description", "") or ""), group=group, regex=rx,
                requires=tuple(requires or ()),
            ))
        return cls(rules, cfg)

    def _bidi_hits(self, original: str) -> list[Hit]:
        """bidi_control rules look at the ORIGINAL text: normalization removes those controls."""
        m = BIDI_RE.search(original)
        if m is None:
            return []
        codes = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(m.group(0)))
        return [Hit(r.id, r.category, "pattern", r.score, r.action, m.group(0), m.span(), f"{r.description} ({codes})")
                for r in self._bidi_rules]

    def spans(self, text: str) -> list[tuple[PatternRule, int, int]]:
        """(rule, start, end) of every pattern match in a pattern-view text."""
        out: list[tuple[PatternRule, int, int]] = []
        taken: dict[str, list[tuple[int, int]]] | None = None
        phoneish = moneyish = None
        for rule in self.rules:
            if rule.kind in ("bidi_control", "official_link"):
                continue
            if rule.requires and not any(r in text for r in rule.requires):
                continue
            pf = rule.prefilter
            if pf is not None:
                if pf == "phone":
                    if phoneish is None:
                        phoneish = _RE_PHONEISH.search(text) is not None
                    if not phoneish:
                        continue
                elif pf == "money":
                    if moneyish is None:
                        moneyish = _RE_MONEYISH.search(text) is not None
                    if not moneyish:
                        continue
                elif pf not in text:
                    continue
            if rule.regex is not None:
                found = [m.span() for m in rule.regex.finditer(text)]
            else:
                found = []
                for rx, post in rule.alts:
                    for m in rx.finditer(text):
                        span = post(text, m)
                        if span is not None:
                            found.append(span)
            if not found:
                continue
            group = rule.group
            if group is not None:
                if taken is None:
                    taken = {}
                claimed = taken.setdefault(group, [])  # sorted, non-overlapping spans
                for s, e in found:
                    i = bisect.bisect_left(claimed, (s, e))
                    if (i and claimed[i - 1][1] > s) or (i < len(claimed) and claimed[i][0] < e):
                        continue  # overlaps a span an earlier rule of the group claimed
                    claimed.insert(i, (s, e))
                    out.append((rule, s, e))
            else:
                for s, e in found:
                    out.append((rule, s, e))
        return out

    def _official(self, text: str, found: list[tuple[PatternRule, int, int]]) -> tuple[int, int] | None:
        """The span of the first link when every link of the message is on an official domain
        (``official_domains``: the domain or a subdomain of it) and the message offers no other
        way to act (no mobile or foreign number, no WeChat or QQ id): such a message can only
        lead its reader to the genuine sender. None otherwise."""
        links = []
        for r, s, e in found:
            if r.kind in ("url", "short_link"):
                links.append((s, e))
            elif r.kind in _OFF_PLATFORM:
                return None
        if not links:
            return None
        for s, e in links:
            if not self._is_official(_host(text[s:e])):
                return None
        return links[0]

    def _is_official(self, host: str | None) -> bool:
        """Whether ``host`` is an official domain or a subdomain of one (each of its suffixes
        after a dot looked up in the set, not the set scanned)."""
        official = self.official_domains
        while host:
            if host in official:
                return True
            dot = host.find(".")
            host = host[dot + 1:] if dot >= 0 else ""
        return False

    def match(self, norm: Normalized) -> list[Hit]:
        """Pattern hits of a message: one per match, spans and evidence in the ORIGINAL text."""
        found = self.spans(norm.pattern_text)
        original = norm.original
        bidi = self._bidi_hits(original) if self._bidi_rules else None
        if not found:
            return bidi or []
        hits = bidi or []
        for r, s, e in found:
            a, b = norm.pattern_span(s, e)
            hits.append(Hit(r.id, r.category, "pattern", r.score, r.action, original[a:b], (a, b), r.description))
        if self._official_rules and not bidi:
            span = self._official(norm.pattern_text, found)
            if span is not None:
                a, b = norm.pattern_span(*span)
                for r in self._official_rules:
                    hits.append(Hit(r.id, r.category, "pattern", r.score, r.action, original[a:b], (a, b),
                                    r.description))
        return hits


# pattern kinds that give the reader a way to act outside the sender's official site
_OFF_PLATFORM = frozenset({"cn_mobile", "intl_phone", "wechat_id", "qq_id"})


def _host(link: str) -> str:
    """The host name of a link as written (scheme, user info, port and path removed)."""
    h = link.split("://", 1)[-1]
    for sep in "/?#\\":
        h = h.split(sep, 1)[0]
    h = h.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    return h[4:] if h.startswith("www.") else h


def _config(doc: dict) -> dict:
    intro = doc.get("contact_introducers") or {}
    if not isinstance(intro, dict) or set(intro) - {"wechat", "qq"}:
        raise ValueError("contact_introducers: expected a mapping with wechat and/or qq lists")
    return {
        "short_link_hosts": _strings(doc.get("short_link_hosts"), _DEFAULT_SHORT, "short_link_hosts"),
        "tlds": _strings(doc.get("tlds"), _DEFAULT_TLDS, "tlds"),
        "wechat": _strings(intro.get("wechat"), _DEFAULT_WECHAT, "contact_introducers.wechat"),
        "qq": _strings(intro.get("qq"), _DEFAULT_QQ, "contact_introducers.qq"),
        "official_domains": _strings(doc.get("official_domains"), (), "official_domains"),
    }


def _strings(v: Any, default, name: str) -> tuple[str, ...]:
    if v is None:
        v = list(default)
    if not isinstance(v, list) or not all(isinstance(x, (str, int)) and str(x) for x in v):
        raise ValueError(f"{name}: expected a list of strings")
    out = []
    for x in v:
        n = normalize(str(x)).pattern_text.strip()
        if n and n not in out:
            out.append(n)
    return tuple(out)
