"""Property-based tests of the engine on hostile input (hypothesis), linear time on adversarial
input, and an audit of every regex the engine compiles.

- normalize never raises; every span it reports maps into the original text;
- Moderator.check is deterministic, and agrees with check_batch;
- any Unicode (lone surrogates, control characters, bidi overrides, floods of combining marks,
  emoji floods, 100k-character strings) gets a verdict, never a crash;
- no super-linear slowdown: check() on n and 4n characters of adversarial input;
- every regex of app/engine and rules/patterns.yaml: no nested unbounded quantifiers that are
  not reviewed, and linear time on adversarial strings.
"""
from __future__ import annotations

import json
import re
import time
from re import _constants as C, _parser as sre_parse

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from app.engine.normalize import normalize
from app.engine.types import Verdict

PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# characters that exercise every fold: CJK (simplified and traditional), separators, invisibles,
# bidi controls, combining marks, full-width and look-alike letters, leet digits, emoji with
# modifiers, controls, lone surrogates, tag characters, private use
SPECIAL = (list("赌博法轮功百家乐裸聊微信加扣扣發財澳門 ,.。，！!?-_*/:@$#✨🙂😀👍🏻\n\t\r")
           + ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202d", "\u202c",
              "\u2066", "\u2069", "\u200f", "\u0301", "\u0336", "\u20dd", "\u0489", "\uff21", "\uff41",
              "\uff11", "а", "е", "о", "р", "с", "А", "Ε", "\x00", "\x07", "\x1b", "\x7f", "\x85",
              "\ud800", "\udbff", "\udc00", "\udfff", "\U000e0041", "\ufe0f", "\u3000", "\ue000",
              "\U0010ffff", "\ufffd", "ǅ", "ß", "İ", "ﬃ", "㍿", "①", "⑳", "\u1160", "\u3164"])
WORDS = ["百家乐", "赌 博", "法✨轮功", "luo聊", "p0rn", "fuuuck", "f.u.c.k", "t.cn/abc", "http://ab.com/x?y=1",
         "13800138000", "+86 138 0013 8000", "400-123-4567", "微信：abc123", "加vx wx_12345", "QQ 12345678",
         "¥500", "1,000元", "平台独家", "classic", "路口交通", "Аpple", "a\u200dss", "赌\ud800博"]

chars = st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=()),
                  st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF))
hostile_text = st.lists(st.one_of(chars, st.sampled_from(WORDS)), max_size=60).map("".join)


# ------------------------------------------------------------------------------- normalize

@PROPS
@given(hostile_text)
def test_normalize_spans_point_into_the_original(text):
    norm = normalize(text)
    n_orig, n = len(text), len(norm.text)
    src = norm.source_map()
    assert len(src) == n
    assert all(0 <= i < n_orig for i in src)
    assert src == sorted(src), "the offset map goes backwards"
    cuts = sorted({0, n, n // 2, n // 3, max(0, n - 1), min(n, 1)})
    for a in cuts:
        for b in cuts:
            if a > b:
                continue
            s, e = norm.span(a, b)
            assert 0 <= s <= e <= n_orig, (a, b, s, e)
            assert norm.evidence(a, b) == text[s:e]
    m = len(norm.pattern_text)
    for a, b in ((0, m), (0, m // 2), (m // 2, m)):
        s, e = norm.pattern_span(a, b)
        assert 0 <= s <= e <= n_orig
    assert normalize(text).text == norm.text  # deterministic


@PROPS
@given(hostile_text)
def test_every_reason_points_at_the_original(moderator, text):
    v = moderator.check(text)
    assert isinstance(v, Verdict) and v.verdict in ("allow", "review", "reject")
    for r in v.reasons:
        if r.span is not None:
            s, e = r.span
            assert 0 <= s <= e <= len(text), (r.rule, r.span, len(text))
            assert r.evidence == text[s:e], (r.rule, r.evidence, text[s:e])
    json.dumps(v.to_dict())  # serialisable (ASCII-escaped: lone surrogates survive)


@PROPS
@given(hostile_text)
def test_check_is_deterministic_and_agrees_with_batch(moderator, text):
    a = moderator.check(text).to_dict()
    b = moderator.check(text).to_dict()
    assert a == b
    batch = moderator.check_batch([text, "你好", text])
    assert batch[0].to_dict() == batch[2].to_dict()
    c = batch[0].to_dict()
    # the audit (batch) and the pre-send check (one message) give the same verdict
    assert (c["verdict"], c["categories"]) == (a["verdict"], a["categories"])
    assert [r["rule"] for r in c["reasons"]] == [r["rule"] for r in a["reasons"]]
    assert c["score"] == pytest.approx(a["score"], abs=1e-3)


HOSTILE = {
    "lone surrogates": "\ud800赌\udfff博\udbff\udc00",
    "controls": "".join(chr(i) for i in range(32)) + "\x7f百家乐\x00",
    "bidi overrides": "\u202e乐家百\u202c \u2066赌博\u2069 \u200f\u061c微信abc123",
    "combining flood": "赌" + "\u0301" * 50_000 + "博",
    "combining on every letter": "".join(c + "\u0336\u0489" * 3 for c in "fuck porn casino"),
    "emoji flood": "😀👍🏻✨" * 10_000,
    "emoji between cjk": "✨".join("澳门百家乐首充送八十八") * 500,
    "100k cjk": ("您的验证码是123456，请勿泄露。" * 6_000)[:100_000],
    "100k latin": ("hello world casino " * 6_000)[:100_000],
    "100k one char": "a" * 100_000,
    "100k digits": "1" * 100_000,
    "zero width everywhere": "\u200b".join("百家乐 luo聊 p0rn") * 2_000,
    "tags and variation selectors": "\U000e0041\ufe0f\U000e007f" * 5_000 + "赌博",
    "private use and noncharacters": "\ue000\uffff\U0010fffe" * 5_000,
    "only separators": "-_*~ .|" * 15_000,
    "nul bytes": "\x00" * 50_000,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_unicode_gets_a_verdict(moderator, name):
    text = HOSTILE[name]
    t0 = time.perf_counter()
    v = moderator.check(text)
    took = time.perf_counter() - t0
    assert v.verdict in ("allow", "review", "reject")
    for r in v.reasons:
        if r.span is not None:
            assert r.evidence == text[r.span[0]:r.span[1]]
    assert took < 10, f"{name}: {took:.1f} s"


def test_non_string_is_a_clear_error(moderator):
    for bad in (None, b"bytes", 123):
        with pytest.raises((TypeError, AttributeError)):
            moderator.check(bad)


# --------------------------------------------------------------------------- linear time

def _best(fn, arg, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best


def growth(fn, small, large, attempts: int = 3, limit: float = 8.0) -> tuple[float, float, float]:
    """(time on small, time on large, ratio), measured again (up to ``attempts`` times) while the
    ratio is over ``limit``: on a shared machine one slow run is noise, a quadratic stays slow."""
    best = (0.0, 0.0, float("inf"))
    for _ in range(attempts):
        t1 = _best(fn, small)
        t4 = _best(fn, large)
        r = t4 / max(t1, 1e-5)
        if r < best[2]:
            best = (t1, t4, r)
        if r < limit:
            break
    return best


FAMILIES = {
    "separators between cjk": lambda n: "赌" + "".join("✨ *-_~"[i % 6] + "博" for i in range(n // 2)),
    "long run of one letter": lambda n: "a" * n,
    "long run of one cjk": lambda n: "赌" * n,
    "alternating latin/cjk": lambda n: "a中" * (n // 2),
    "alternating words": lambda n: "ab中文" * (n // 4),
    "many urls": lambda n: "http://t.cn/x " * (n // 14),
    "bare domains": lambda n: "ab.com " * (n // 7),
    "dots between letters": lambda n: "a." * (n // 2),
    "phone-like digit runs": lambda n: "1380013800 " * (n // 11),
    "digits only": lambda n: "1" * n,
    "plus and digits": lambda n: ("+1" + "2" * 20) * (n // 22),
    "e-mail-like run": lambda n: "ab1." * (n // 4) + "@",
    "single letters and spaces": lambda n: "a b " * (n // 4),
    "money commas": lambda n: "1," * (n // 2) + "元",
    "wechat introducers": lambda n: "微信" * (n // 2),
    "combining marks": lambda n: "a" + "\u0301" * n,
    "sentence punctuation": lambda n: "。" * n + "x",
    "leet digits": lambda n: "a1" * (n // 2),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_check_time_is_linear(moderator, family):
    make = FAMILIES[family]
    moderator.check(make(200))  # warm the fold tables and caches
    n = 4_000
    t1, t4, ratio = growth(moderator.check, make(n), make(4 * n))
    # 4x the input: linear is ~4x, quadratic ~16x; 8x leaves room for a noisy shared machine
    assert ratio < 8 or t4 < 0.02, f"{family}: {t1 * 1000:.1f} ms -> {t4 * 1000:.1f} ms (x{ratio:.1f})"


# ---------------------------------------------------------------------------- regex audit

def _engine_regexes(moderator) -> dict[str, re.Pattern]:
    """Every compiled regex of app/engine (module level) and of the rules in force."""
    import importlib
    import pkgutil

    import app.engine as engine

    found: dict[str, re.Pattern] = {}
    for mod in pkgutil.iter_modules(engine.__path__):
        module = importlib.import_module(f"app.engine.{mod.name}")
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found[f"{mod.name}.{name}"] = value
    for rule in moderator.ruleset.patterns.rules:  # rules/patterns.yaml, builtin and operator regexes
        if rule.regex is not None:
            found[f"patterns.yaml:{rule.id}"] = rule.regex
        for i, (rx, _post) in enumerate(rule.alts):
            found[f"patterns.yaml:{rule.id}[{i}]"] = rx
    return found


def nested_unbounded(pattern: re.Pattern) -> list[str]:
    """Unbounded repeats inside unbounded repeats (the shape of catastrophic backtracking)."""
    out: list[str] = []

    def walk(sub, outer: bool) -> None:
        for op, av in sub:
            if op in (C.MAX_REPEAT, C.MIN_REPEAT):
                lo, hi, inner = av
                unbounded = hi == C.MAXREPEAT
                if unbounded and outer:
                    out.append(str(inner)[:80])
                walk(inner, outer or unbounded)
            elif op is C.SUBPATTERN:
                walk(av[3], outer)
            elif op is C.BRANCH:
                for b in av[1]:
                    walk(b, outer)
            elif op in (C.ASSERT, C.ASSERT_NOT):
                walk(av[1], outer)
            elif op is C.ATOMIC_GROUP:
                walk(av, False)  # no backtracking into an atomic group
            elif op is C.GROUPREF_EXISTS:
                walk(av[1], outer)
                if av[2] is not None:
                    walk(av[2], outer)

    walk(sre_parse.parse(pattern.pattern, pattern.flags), False)
    return out


# reviewed: nested unbounded repeats that cannot backtrack catastrophically
REVIEWED_NESTED = {
    # (?:\.[a-z0-9\-]+)* : every iteration starts with a '.', which the inner class excludes,
    # so there is exactly one way to split a run into iterations
    "features._URL_RE",
    # (?:[a-z0-9][a-z0-9-]*\.)+ : every iteration ends with a '.' the inner class excludes
    "template_lint.LINK",
    # (?:_[A-Z0-9]+)* : every iteration starts with a '_' the inner class excludes (rule ids)
    "ruleset.RULE_ID_RE",
}

PROBES = {
    "a": lambda n: "a" * n,
    "1": lambda n: "1" * n,
    "a.": lambda n: "a." * (n // 2),
    "a-": lambda n: "a-" * (n // 2),
    "ab1.+@": lambda n: "ab1." * (n // 4) + "@",
    "space": lambda n: " " * n + "x",
    "。": lambda n: "。" * n + "x",
    "中 ": lambda n: "中 " * (n // 2),
    "+1": lambda n: "+" + "1" * n,
    "1,": lambda n: "1," * (n // 2),
    "x.com": lambda n: "x.com." * (n // 6),
    "http": lambda n: "http://" * (n // 7),
    "${": lambda n: "${" * (n // 2),
    "a b": lambda n: "a b " * (n // 4),
}

def _regex_slowdowns(moderator) -> list[tuple[str, str, float, float]]:
    slow = []
    n = 1_000
    for name, rx in _engine_regexes(moderator).items():
        def scan(s, rx=rx):
            for _ in rx.finditer(s):
                pass

        for probe, make in PROBES.items():
            small, large = make(n), make(4 * n)
            if _best(scan, small, runs=1) < 2e-4 and _best(scan, large, runs=1) < 2e-3:
                continue  # too fast to matter at 4x
            t1, t4, ratio = growth(scan, small, large, attempts=2)
            if ratio > 8 and t4 > 0.004:
                slow.append((name, probe, t1, t4))
    return slow


def test_regex_audit_no_unreviewed_nested_quantifiers(moderator):
    found = {name: nested_unbounded(rx) for name, rx in _engine_regexes(moderator).items()}
    found = {k: v for k, v in found.items() if v}
    assert set(found) <= REVIEWED_NESTED, {k: v for k, v in found.items() if k not in REVIEWED_NESTED}


@pytest.fixture(scope="module")
def regex_slowdowns(moderator):
    return _regex_slowdowns(moderator)


def test_regex_audit_linear_on_adversarial_strings(regex_slowdowns):
    assert not regex_slowdowns, "super-linear regexes: " + "; ".join(
        f"{name} on {probe!r}: {t1 * 1000:.1f} -> {t4 * 1000:.1f} ms" for name, probe, t1, t4 in regex_slowdowns)
