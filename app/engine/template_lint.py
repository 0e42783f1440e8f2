"""Signature and template lint: the TPL_ rules of issue 5, as the big SMS platforms publish them.

A pure library (no Flask, no SQLAlchemy). The data (generic signature names, opt-out texts,
verification and marketing wording, short-link hosts, limits, variable types, the review policy)
is ``rules/templates.yaml``; rule ids and descriptions are here, because stored reviews refer to
them (``RULES``). Every finding is an :class:`app.engine.types.Hit` with ``detector="template"``,
``category=None`` (a lint finding is not a content category: the policy would treat a
``marketing`` one as informational and ignore it), the action and score from the
YAML, and, where the finding has a place, ``span``/``evidence`` in the ORIGINAL text.

Reviewing a template (what app/services/review.py does)::

    from app.engine import template_lint as tl

    rules = tl.load()                                  # rules/templates.yaml, cached by mtime
    hits = tl.lint_template(content, "verification", {"code": "code"}, region="cn", rules=rules)
    masked = tl.mask(content, {"code": "code"}, region="cn", rules=rules)
    verdict = moderator.check(masked.text, extra_hits=hits)   # lint hits already in ORIGINAL spans
    verdict = masked.remap(verdict)                    # engine spans -> ORIGINAL template spans

``mask`` replaces every ``${name}`` by a neutral placeholder of its declared type (验证码${code}
reads 验证码482915), so the content engine reads natural text; ``Masked.remap`` moves each
engine reason's span back onto the template as written (a match inside a placeholder covers
the whole ``${name}``) and resets its evidence to the original substring. Hits whose span is
already in template coordinates (the lint hits passed as ``extra_hits``) are recognised and left
alone, since they are passed through unchanged by the engine.

Signatures::

    hits = tl.lint_signature("阿里云")                 # [] when clean

Sending with a template (the pre-send check, issue 6)::

    tl.check_params(variables, params) -> list[Hit]    # [] when every param fits its type
    tl.fill(content, variables, params) -> str         # the message as it will be sent

- ``variables`` is the template's declaration ``{name: type}``; a type is ``"code"``,
  ``"number"``, ``"money"``, ``"date"``, ``"time"``, ``"name"``, ``"phone"``, ``"url"``,
  ``"text"`` or ``"text:N"`` (text of at most N characters), or the object form
  ``{"type": "text", "max_length": N}``. ``parse_variables`` turns it into ``{name: VarSpec}``
  and ``canonical_variables`` into the stored string form.
- ``params`` maps variable names to values (str, int or float; numbers are formatted with
  ``str``).
- ``check_params`` reports TPL_PARAM_MISSING (a declared variable without a value),
  TPL_PARAM_UNKNOWN (a value for an undeclared name; no action, score 0 by default),
  TPL_PARAM_TOO_LONG (over the type's maximum length), TPL_PARAM_TYPE (does not match the
  type's pattern: a code holding a URL fails) and TPL_PARAM_LINK (a link inside a variable that
  is not of type url). The hits carry ``evidence`` = the offending value and no span.
- ``fill`` substitutes every ``${name}`` with ``str(params[name])``; it raises
  :class:`ParamError` (a ValueError carrying ``.hits``) when ``check_params`` finds anything
  other than TPL_PARAM_UNKNOWN, so a caller cannot build a message from bad params by accident.
  Pass ``check=False`` to fill without checking (missing values are then left as ``${name}``).

Every function takes an optional ``rules=`` (a :class:`TemplateRules`); without it the shipped
``rules/templates.yaml`` is used (reloaded when the file changes; a broken file is logged and the
rules in force stay).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from app.engine.types import Hit, Verdict

__all__ = [
    "RULES",
    "VARIABLE_TYPES",
    "DEFAULT_PATH",
    "TemplateRules",
    "VarSpec",
    "Masked",
    "ParamError",
    "load",
    "parse_rules",
    "parse_variables",
    "canonical_variables",
    "find_variables",
    "lint_signature",
    "lint_template",
    "mask",
    "check_params",
    "fill",
    "rule_table",
]

log = logging.getLogger("smsguard.engine.template_lint")

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "rules" / "templates.yaml"
VARIABLE_TYPES = ("code", "number", "money", "date", "time", "name", "phone", "url", "text")
TEMPLATE_TYPES = ("verification", "notification", "promotional")
REGIONS = ("cn", "intl")

# rule id -> (applies to, description). Ids never change once released.
RULES: dict[str, tuple[str, str]] = {
    # signatures
    "TPL_SIGNATURE_LENGTH": ("signature", "a signature is 2-12 characters long"),
    "TPL_SIGNATURE_CHARSET": ("signature", "a signature holds Chinese characters, letters and digits only "
                                           "(no 【】 or other brackets, punctuation or spaces)"),
    "TPL_SIGNATURE_GENERIC": ("signature", "a generic or test name (测试, test, 客服通知, 客户您好 …) "
                                           "does not identify the sender"),
    # every template
    "TPL_TOO_LONG": ("all templates", "the template is longer than the 500-character limit"),
    "TPL_MALFORMED_VARIABLE": ("all templates", "a variable is not written ${name} (letters, digits, _; "
                                                "starting with a letter)"),
    "TPL_UNDECLARED_VARIABLE": ("all templates", "the content uses a variable that is not declared"),
    "TPL_UNUSED_VARIABLE": ("all templates", "a declared variable does not appear in the content"),
    "TPL_VARIABLE_TYPE": ("all templates", "a variable's type is unknown (code, number, money, date, time, "
                                           "name, phone, url, text or text:N)"),
    "TPL_ADJACENT_VARIABLES": ("all templates", "two variables side by side (${a}${b}): fixed text must "
                                                "separate variables"),
    "TPL_ONLY_VARIABLES": ("all templates", "the template is nothing but variables: fixed text must say "
                                            "what the message is"),
    "TPL_SHORTLINK_VARIABLE": ("all templates", "a short link glued to a variable (t.cn/${x}): the "
                                                "destination could be anything"),
    "TPL_BRACKETS": ("all templates", "【】 inside the content: the signature is added by the platform "
                                      "and must not be imitated"),
    # verification
    "TPL_VERIFICATION_WORDING": ("verification", "a verification template says what it is "
                                                 "(验证码 / 校验码 / 动态码 / verification code)"),
    "TPL_VERIFICATION_CODE_VARIABLE": ("verification", "a verification template has exactly one variable "
                                                       "of type code"),
    "TPL_VERIFICATION_LINK": ("verification", "no links in a verification template (nor url variables)"),
    "TPL_VERIFICATION_CONTACT": ("verification", "no contact numbers in a verification template (nor phone "
                                                 "variables)"),
    # verification and notification
    "TPL_MARKETING_CONTENT": ("verification, notification", "marketing content in a verification or "
                                                            "notification template: submit it as promotional"),
    "TPL_OPT_OUT_NOT_PROMOTIONAL": ("verification, notification", "an opt-out text belongs to promotional "
                                                                  "templates only"),
    # promotional
    "TPL_PROMOTIONAL_OPT_OUT": ("promotional", "a promotional template ends with an opt-out text "
                                               "(拒收请回复R, 回T退订, 退订回TD, Reply STOP …)"),
    # params at send time (check_params)
    "TPL_PARAM_MISSING": ("params", "a declared variable has no value"),
    "TPL_PARAM_UNKNOWN": ("params", "a value for a variable the template does not declare"),
    "TPL_PARAM_TOO_LONG": ("params", "a value is longer than its type allows"),
    "TPL_PARAM_TYPE": ("params", "a value does not match its variable's type (a code holding a URL fails)"),
    "TPL_PARAM_LINK": ("params", "a link inside a variable that is not of type url"),
}

VAR_TOKEN = re.compile(r"\$\{([^{}\s]*)\}")
VAR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
SIGNATURE_CHARS = re.compile(r"^[A-Za-z0-9\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")
BRACKETS = re.compile(r"[【】]")
CONTENT_CHAR = re.compile(r"[A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TRAIL_CHARS = r"[\s。．.！!，,；;、~～:：)）\]】]"
# the look-behind makes only the start of a run try to match: linear on long punctuation runs
TRAILING = re.compile(rf"(?<!{_TRAIL_CHARS}){_TRAIL_CHARS}+$")
# links: a scheme, www., or host.tld (with a list of TLDs seen in SMS) with an optional path
_TLDS = ("com|cn|net|org|cc|io|me|top|xyz|info|vip|app|ly|gl|im|co|tv|hk|link|club|site|online|"
         "shop|ink|ren|wang|so|la|gd|is|to|tk|mk|lt|id|us|uk|biz|mobi|pro|fun|icu|live|store|tech")
LINK = re.compile(
    r"(?i)(?:https?://[^\s<>\"'，。！？、]+"
    r"|www\.[^\s<>\"'，。！？、]+"
    r"|(?<![A-Za-z0-9@._-])(?:[a-z0-9][a-z0-9-]*\.)+(?:" + _TLDS + r")(?![a-z0-9-])"
    r"(?::\d{1,5})?(?:/[^\s<>\"'，。！？、]*)?)")
# contact numbers: mainland mobiles, landlines with area code, 400/800 service numbers
CONTACT = re.compile(
    r"(?<!\d)(?:\+?86[-\s]?)?1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}(?!\d)"
    r"|(?<!\d)0\d{2,3}[-\s]?\d{7,8}(?!\d)"
    r"|(?<!\d)[48]00[-\s]?\d{3}[-\s]?\d{4}(?!\d)")


# --------------------------------------------------------------------------- rules data

@dataclass(frozen=True)
class VarSpec:
    """A declared variable: its type and the longest value it accepts."""

    type: str
    max_length: int

    def canonical(self, rules: "TemplateRules") -> str:
        if self.type == "text" and self.max_length != rules.types["text"].max_length:
            return f"text:{self.max_length}"
        return self.type


@dataclass(frozen=True)
class TypeRule:
    name: str
    pattern: re.Pattern | None
    max_length: int
    placeholder: dict[str, str]


@dataclass(frozen=True)
class TemplateRules:
    """rules/templates.yaml, validated. Build with :func:`parse_rules` or :func:`load`."""

    template_max_chars: int
    signature_min_chars: int
    signature_max_chars: int
    rule_settings: dict[str, tuple[str | None, float]]
    generic_exact: frozenset[str]
    generic_contains_han: tuple[str, ...]
    generic_contains_latin: tuple[str, ...]
    opt_out_texts: tuple[str, ...]
    verification_words: tuple[str, ...]
    marketing_han: tuple[str, ...]
    marketing_latin: re.Pattern | None
    short_link_hosts: frozenset[str]
    types: dict[str, TypeRule]
    text_max_length: int
    review_policy: dict[str, str]
    source: str = ""
    version: str = ""

    def action_score(self, rule: str) -> tuple[str | None, float]:
        return self.rule_settings.get(rule, ("reject", 10.0))

    def hit(self, rule: str, evidence: str | None = None, span: tuple[int, int] | None = None,
            category: str | None = None, detail: str = "") -> Hit:
        action, score = self.action_score(rule)
        desc = RULES[rule][1] + (f": {detail}" if detail else "")
        return Hit(rule=rule, category=category, detector="template", score=score, action=action,
                   evidence=evidence, span=span, description=desc)

    def auto_approve(self, kind: str) -> bool:
        """Policy for a clean submission: kind is "signature" or a template type."""
        return self.review_policy.get(kind, "pending") == "approve"


def _fold(s: str) -> str:
    return unicodedata.normalize("NFKC", s).casefold()


def _is_latin(term: str) -> bool:
    return all(ord(c) < 0x3000 for c in term)


def _strs(data: Mapping, key: str) -> list[str]:
    v = data.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v):
        raise ValueError(f"{key}: expected a list of strings")
    return [str(x) for x in v if str(x).strip()]


def _word(term: str) -> str:
    """A regex for a Latin term as a whole word (no boundary on a side that is not alphanumeric)."""
    pre = r"(?<![a-z0-9])" if term[:1].isalnum() else ""
    post = r"(?![a-z0-9])" if term[-1:].isalnum() else ""
    return pre + re.escape(term) + post


def parse_rules(data: Mapping[str, Any], source: str = "",
                extra_short_link_hosts: Iterable[str] = ()) -> TemplateRules:
    """Validate the YAML mapping; raises ValueError naming what is wrong."""
    import hashlib
    import json

    if not isinstance(data, Mapping):
        raise ValueError("the file must hold a mapping")
    limits = data.get("limits") or {}
    settings: dict[str, tuple[str | None, float]] = {}
    for rid, conf in (data.get("rules") or {}).items():
        if rid not in RULES:
            raise ValueError(f"rules: unknown rule id {rid}")
        conf = conf or {}
        action = conf.get("action", "reject")
        if action not in (None, "review", "reject", "allow"):
            raise ValueError(f"rules.{rid}.action must be review, reject, allow or null")
        settings[rid] = (action, float(conf.get("score", 10.0)))
    generic = data.get("generic_signatures") or {}
    contains = _strs(generic, "contains")
    marketing = _strs(data, "marketing_words")
    latin_marketing = [w for w in marketing if _is_latin(w)]
    types: dict[str, TypeRule] = {}
    for name, conf in (data.get("variable_types") or {}).items():
        if name not in VARIABLE_TYPES:
            raise ValueError(f"variable_types: unknown type {name}")
        conf = conf or {}
        pat = conf.get("pattern")
        try:
            compiled = re.compile(pat) if pat else None
        except re.error as exc:
            raise ValueError(f"variable_types.{name}.pattern: {exc}") from None
        ph = conf.get("placeholder", "x")
        placeholder = {r: str(ph.get(r, next(iter(ph.values())))) for r in REGIONS} if isinstance(ph, Mapping) \
            else {r: str(ph) for r in REGIONS}
        types[name] = TypeRule(name, compiled, int(conf.get("max_length", 35)), placeholder)
    missing = [t for t in VARIABLE_TYPES if t not in types]
    if missing:
        raise ValueError(f"variable_types: missing {', '.join(missing)}")
    policy = {k: str(v) for k, v in (data.get("review_policy") or {}).items()}
    for k, v in policy.items():
        if k not in ("signature",) + TEMPLATE_TYPES:
            raise ValueError(f"review_policy: unknown kind {k}")
        if v not in ("approve", "pending"):
            raise ValueError(f"review_policy.{k} must be approve or pending")
    return TemplateRules(
        template_max_chars=int(limits.get("template_max_chars", 500)),
        signature_min_chars=int(limits.get("signature_min_chars", 2)),
        signature_max_chars=int(limits.get("signature_max_chars", 12)),
        rule_settings=settings,
        generic_exact=frozenset(_fold(x) for x in _strs(generic, "exact")),
        generic_contains_han=tuple(_fold(x) for x in contains if not _is_latin(x)),
        generic_contains_latin=tuple(_fold(x) for x in contains if _is_latin(x)),
        opt_out_texts=tuple(sorted({_fold(x) for x in _strs(data, "opt_out_texts")}, key=len, reverse=True)),
        verification_words=tuple(_fold(x) for x in _strs(data, "verification_words")),
        marketing_han=tuple(_fold(x) for x in marketing if not _is_latin(x)),
        marketing_latin=re.compile("|".join(
            _word(_fold(w)) for w in sorted(latin_marketing, key=len, reverse=True)))
        if latin_marketing else None,
        short_link_hosts=frozenset(_fold(x) for x in [*_strs(data, "short_link_hosts"), *extra_short_link_hosts]),
        types=types,
        text_max_length=int(data.get("text_max_length", 200)),
        review_policy=policy,
        source=source,
        version=hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16],
    )


def _stamp(path: Path) -> tuple:
    """mtimes of the file and of the file its ``short_link_hosts_from`` names (if it exists)."""
    sib = path.parent / "patterns.yaml"
    return (os.stat(path).st_mtime_ns, os.stat(sib).st_mtime_ns if sib.exists() else None)


def _read(path: Path) -> TemplateRules:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    extra: list[str] = []
    ref = data.get("short_link_hosts_from") if isinstance(data, Mapping) else None
    if ref:
        ref_path = path.parent / str(ref)
        if ref_path.exists():
            with open(ref_path, encoding="utf-8") as fh:
                ref_data = yaml.safe_load(fh) or {}
            extra = _strs(ref_data, "short_link_hosts") if isinstance(ref_data, Mapping) else []
    return parse_rules(data, source=str(path), extra_short_link_hosts=extra)


class _Loader:
    """Loads a rules file, reloads it when its mtime changes; a broken file keeps the old rules."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, TemplateRules]] = {}
        self.last_error: dict[str, str] = {}

    def get(self, path: Path) -> TemplateRules:
        key = str(path)
        try:
            mtime = _stamp(path)
        except OSError as exc:
            cached = self._cache.get(key)
            if cached:
                self.last_error[key] = str(exc)
                return cached[1]
            raise
        cached = self._cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == mtime:
                return cached[1]
            try:
                rules = _read(path)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                self.last_error[key] = f"{type(exc).__name__}: {exc}"
                if cached:
                    log.error("template rules %s are broken, keeping the rules in force: %s", key, exc)
                    self._cache[key] = (mtime, cached[1])  # do not re-parse until it changes again
                    return cached[1]
                raise
            self.last_error.pop(key, None)
            self._cache[key] = (mtime, rules)
            return rules


_LOADER = _Loader()


def load(path: str | os.PathLike | None = None) -> TemplateRules:
    """The template rules from ``path`` (default rules/templates.yaml), cached until the file changes."""
    return _LOADER.get(Path(path) if path else DEFAULT_PATH)


def _rules(rules: TemplateRules | None) -> TemplateRules:
    return rules if rules is not None else load()


# --------------------------------------------------------------------------- variables

def parse_variables(variables: Mapping[str, Any] | None,
                    rules: TemplateRules | None = None) -> dict[str, VarSpec]:
    """{name: "code" | "text:20" | {"type": "text", "max_length": 20}} -> {name: VarSpec}.
    Raises ValueError naming the first bad declaration."""
    rules = _rules(rules)
    out: dict[str, VarSpec] = {}
    for name, decl in (variables or {}).items():
        if not isinstance(name, str) or not VAR_NAME.match(name):
            raise ValueError(f"variable name {name!r}: letters, digits and _, starting with a letter")
        max_len: Any = None
        if isinstance(decl, Mapping):
            vtype, max_len = decl.get("type"), decl.get("max_length")
        elif isinstance(decl, str):
            vtype, _, rest = decl.strip().partition(":")
            max_len = rest or None
        else:
            raise ValueError(f"variable {name}: the type must be a string such as \"code\" or \"text:20\"")
        if vtype not in VARIABLE_TYPES:
            raise ValueError(f"variable {name}: unknown type {vtype!r} (one of {', '.join(VARIABLE_TYPES)})")
        type_rule = rules.types[vtype]
        if max_len is None:
            out[name] = VarSpec(vtype, type_rule.max_length)
            continue
        if vtype != "text":
            raise ValueError(f"variable {name}: only text takes a maximum length")
        try:
            n = int(max_len)
        except (TypeError, ValueError):
            raise ValueError(f"variable {name}: the maximum length must be a whole number") from None
        if not 1 <= n <= rules.text_max_length:
            raise ValueError(f"variable {name}: the maximum length must be 1-{rules.text_max_length}")
        out[name] = VarSpec("text", n)
    return out


def canonical_variables(variables: Mapping[str, Any] | None,
                        rules: TemplateRules | None = None) -> dict[str, str]:
    """The stored form: {name: "code" | "text:20"} (raises ValueError like parse_variables)."""
    rules = _rules(rules)
    return {k: v.canonical(rules) for k, v in parse_variables(variables, rules).items()}


def find_variables(content: str) -> list[tuple[str, int, int]]:
    """Every ``${...}`` token as (name, start, end) in the content (names not validated)."""
    return [(m.group(1), m.start(), m.end()) for m in VAR_TOKEN.finditer(content)]


# --------------------------------------------------------------------------- signatures

def lint_signature(name: str, rules: TemplateRules | None = None) -> list[Hit]:
    """TPL_SIGNATURE_* hits for a signature name (the text between 【】, without the brackets)."""
    rules = _rules(rules)
    hits: list[Hit] = []
    n = len(name)
    if not rules.signature_min_chars <= n <= rules.signature_max_chars:
        hits.append(rules.hit("TPL_SIGNATURE_LENGTH", evidence=name, span=(0, n),
                              detail=f"{n} characters (allowed {rules.signature_min_chars}-"
                                     f"{rules.signature_max_chars})"))
    bad = [(i, c) for i, c in enumerate(name) if not SIGNATURE_CHARS.match(c)]
    if bad:
        i, c = bad[0]
        shown = "".join(dict.fromkeys(repr(ch)[1:-1] if ch.isspace() else ch for _, ch in bad))
        hits.append(rules.hit("TPL_SIGNATURE_CHARSET", evidence=c, span=(i, i + 1),
                              detail=f"not allowed: {shown}"))
    folded = _fold(name)
    generic = folded in rules.generic_exact
    if not generic:
        generic = any(t in folded for t in rules.generic_contains_han) or any(
            folded.startswith(t) or folded.endswith(t) for t in rules.generic_contains_latin)
    if generic:
        hits.append(rules.hit("TPL_SIGNATURE_GENERIC", evidence=name, span=(0, n)))
    return hits


# --------------------------------------------------------------------------- templates

def _find_all(folded: str, term: str) -> Iterable[int]:
    i = folded.find(term)
    while i >= 0:
        yield i
        i = folded.find(term, i + 1)


def _fold_keep_len(text: str) -> str:
    """Case and width fold that keeps one character per character, so offsets stay valid."""
    out = []
    for c in text:
        f = _fold(c)
        out.append(f if len(f) == 1 else c.lower())
    return "".join(out)


def _opt_out_at_end(folded: str, rules: TemplateRules) -> tuple[int, int] | None:
    body = TRAILING.sub("", folded)
    for t in rules.opt_out_texts:
        if body.endswith(t):
            return len(body) - len(t), len(body)
    return None


def _marketing_hits(text: str, folded: str, rules: TemplateRules) -> list[Hit]:
    found: list[tuple[int, int]] = []
    for term in rules.marketing_han:
        for i in _find_all(folded, term):
            found.append((i, i + len(term)))
    if rules.marketing_latin is not None:
        found += [(m.start(), m.end()) for m in rules.marketing_latin.finditer(folded)]
    hits = []
    taken: list[tuple[int, int]] = []
    for a, b in sorted(found, key=lambda s: (s[0], -(s[1] - s[0]))):
        if any(a < tb and ta < b for ta, tb in taken):
            continue  # 优惠券 already covers 优惠
        taken.append((a, b))
        hits.append(rules.hit("TPL_MARKETING_CONTENT", evidence=text[a:b], span=(a, b)))
    return hits


def _host_of(link: str) -> str:
    s = re.sub(r"(?i)^https?://", "", link)
    return _fold(re.split(r"[/?#:]", s, maxsplit=1)[0])


def lint_template(content: str, type: str, variables: Mapping[str, Any] | None = None,
                  region: str = "cn", rules: TemplateRules | None = None) -> list[Hit]:
    """TPL_ hits for a template (spans in ``content`` as written). ``type`` is verification,
    notification or promotional; ``variables`` the declaration {name: type}."""
    rules = _rules(rules)
    hits: list[Hit] = []
    n = len(content)
    if n > rules.template_max_chars:
        hits.append(rules.hit("TPL_TOO_LONG", detail=f"{n} characters (limit {rules.template_max_chars})"))

    # declarations
    specs: dict[str, VarSpec] = {}
    for name, decl in (variables or {}).items():
        try:
            specs.update(parse_variables({name: decl}, rules))
        except ValueError as exc:
            hits.append(rules.hit("TPL_VARIABLE_TYPE", evidence=str(name), detail=str(exc)))

    # tokens in the content
    tokens = find_variables(content)
    used: dict[str, list[tuple[int, int]]] = {}
    for name, a, b in tokens:
        if not VAR_NAME.match(name):
            hits.append(rules.hit("TPL_MALFORMED_VARIABLE", evidence=content[a:b], span=(a, b)))
            continue
        used.setdefault(name, []).append((a, b))
        if name not in specs and name not in (variables or {}):
            hits.append(rules.hit("TPL_UNDECLARED_VARIABLE", evidence=content[a:b], span=(a, b)))
    # a "${" or "$" + "{" that never closes, or a stray "}" after "$"
    stripped = VAR_TOKEN.sub(lambda m: " " * len(m.group(0)), content)
    for m in re.finditer(r"\$\{|\$[A-Za-z_]\w*", stripped):
        hits.append(rules.hit("TPL_MALFORMED_VARIABLE", evidence=content[m.start():m.end()],
                              span=(m.start(), m.end())))
    for name in specs:
        if name not in used:
            hits.append(rules.hit("TPL_UNUSED_VARIABLE", evidence=name, detail=f"${{{name}}} is declared"))

    # adjacency: only whitespace between two tokens
    for (_, a1, b1), (_, a2, b2) in zip(tokens, tokens[1:]):
        if content[b1:a2].strip() == "":
            hits.append(rules.hit("TPL_ADJACENT_VARIABLES", evidence=content[a1:b2], span=(a1, b2)))
    if tokens and not CONTENT_CHAR.search(stripped):
        hits.append(rules.hit("TPL_ONLY_VARIABLES", evidence=content, span=(0, n)))
    for m in BRACKETS.finditer(content):
        hits.append(rules.hit("TPL_BRACKETS", evidence=m.group(0), span=(m.start(), m.end())))

    # links glued to a variable (t.cn/${x}, https://bit.ly/${x})
    links = [(m.start(), m.end(), m.group(0)) for m in LINK.finditer(stripped)]
    for a, b, text in links:
        glued = any(ta == b for _, ta, _ in tokens)
        link_text = content[a:b]
        if glued and _host_of(link_text) in rules.short_link_hosts:
            end = next(tb for _, ta, tb in tokens if ta == b)
            hits.append(rules.hit("TPL_SHORTLINK_VARIABLE", evidence=content[a:end], span=(a, end)))

    folded = _fold_keep_len(stripped)
    if type == "verification":
        if not any(w in folded for w in rules.verification_words if not _is_latin(w)) and not any(
                re.search(_word(w), folded) for w in rules.verification_words if _is_latin(w)):
            hits.append(rules.hit("TPL_VERIFICATION_WORDING"))
        codes = [k for k, v in specs.items() if v.type == "code"]
        if len(codes) != 1:
            hits.append(rules.hit("TPL_VERIFICATION_CODE_VARIABLE",
                                  detail=f"found {len(codes)}" + (f": {', '.join(codes)}" if codes else "")))
        for a, b, _ in links:
            hits.append(rules.hit("TPL_VERIFICATION_LINK", evidence=content[a:b], span=(a, b)))
        for name, spec in specs.items():
            for a, b in used.get(name, ()):
                if spec.type == "url":
                    hits.append(rules.hit("TPL_VERIFICATION_LINK", evidence=content[a:b], span=(a, b),
                                          detail="a url variable"))
                elif spec.type == "phone":
                    hits.append(rules.hit("TPL_VERIFICATION_CONTACT", evidence=content[a:b], span=(a, b),
                                          detail="a phone variable"))
        link_spans = [(a, b) for a, b, _ in links]
        for m in CONTACT.finditer(stripped):
            if any(a <= m.start() < b for a, b in link_spans):
                continue
            hits.append(rules.hit("TPL_VERIFICATION_CONTACT", evidence=content[m.start():m.end()],
                                  span=(m.start(), m.end())))
    if type in ("verification", "notification"):
        hits += _marketing_hits(content, folded, rules)
        for t in rules.opt_out_texts:  # the longest first; one is enough
            i = folded.find(t)
            if i >= 0:
                hits.append(rules.hit("TPL_OPT_OUT_NOT_PROMOTIONAL", evidence=content[i:i + len(t)],
                                      span=(i, i + len(t))))
                break
    elif type == "promotional":
        if _opt_out_at_end(folded, rules) is None:
            hits.append(rules.hit("TPL_PROMOTIONAL_OPT_OUT",
                                  detail="end the content with one, e.g. 拒收请回复R"))
    return hits


def marketing_hits_from(reasons: Iterable[Hit], rules: TemplateRules | None = None) -> list[Hit]:
    """TPL_MARKETING_CONTENT hits for content-engine reasons in the ``marketing`` category
    (verification and notification templates must not carry marketing): keyword and pattern
    matches, and classifier hits confident enough to carry action review."""
    rules = _rules(rules)
    out = []
    for r in reasons:
        if r.category != "marketing" or r.detector == "template":
            continue
        # keyword and pattern matches; the classifier only when it is confident (action review)
        if r.detector in ("keyword", "pattern") or r.action in ("review", "reject"):
            out.append(rules.hit("TPL_MARKETING_CONTENT", evidence=r.evidence, span=r.span,
                                 detail=f"the content engine's {r.rule}"))
    return out


# --------------------------------------------------------------------------- masking

@dataclass(frozen=True)
class Masked:
    """A template with its variables replaced by placeholders, and the way back.

    ``segments`` are (masked_start, masked_end, orig_start, orig_end, is_variable)."""

    original: str
    text: str
    segments: tuple[tuple[int, int, int, int, bool], ...]

    def to_original(self, pos: int, end: bool = False) -> int:
        """A masked-text offset -> a template offset (inside a placeholder: its start, or its
        end when ``end``)."""
        for ms, me, os_, oe, is_var in self.segments:
            if ms <= pos < me or (end and ms < pos <= me):
                if is_var:
                    return oe if end else os_
                return os_ + (pos - ms)
        return len(self.original) if pos >= len(self.text) else 0

    def span(self, a: int, b: int) -> tuple[int, int]:
        if b <= a:
            p = self.to_original(a)
            return p, p
        return self.to_original(a), self.to_original(b, end=True)

    def remap_hit(self, h: Hit) -> Hit:
        if h.span is None:
            return h
        a, b = self.span(*h.span)
        return h.with_(span=(a, b), evidence=self.original[a:b])

    def remap(self, verdict: Verdict, keep: Iterable[Hit] = ()) -> Verdict:
        """The verdict with every engine reason's span and evidence moved onto the template as
        written. Hits in ``keep`` (and every detector="template" hit) already are."""
        kept = set(keep)
        reasons = tuple(h if (h in kept or h.detector == "template") else self.remap_hit(h)
                        for h in verdict.reasons)
        return replace(verdict, reasons=reasons)


def mask(content: str, variables: Mapping[str, Any] | None = None, region: str = "cn",
         rules: TemplateRules | None = None) -> Masked:
    """Replace each ``${name}`` by a neutral placeholder of its declared type (undeclared or
    malformed ones by the text placeholder)."""
    rules = _rules(rules)
    specs: dict[str, VarSpec] = {}
    for name, decl in (variables or {}).items():
        try:
            specs.update(parse_variables({name: decl}, rules))
        except ValueError:
            pass
    region = region if region in REGIONS else "cn"
    parts: list[str] = []
    segments: list[tuple[int, int, int, int, bool]] = []
    pos = mpos = 0
    for name, a, b in find_variables(content):
        if a > pos:
            chunk = content[pos:a]
            parts.append(chunk)
            segments.append((mpos, mpos + len(chunk), pos, a, False))
            mpos += len(chunk)
        vtype = specs[name].type if name in specs else "text"
        ph = rules.types[vtype].placeholder[region]
        parts.append(ph)
        segments.append((mpos, mpos + len(ph), a, b, True))
        mpos += len(ph)
        pos = b
    if pos < len(content):
        chunk = content[pos:]
        parts.append(chunk)
        segments.append((mpos, mpos + len(chunk), pos, len(content), False))
    return Masked(content, "".join(parts), tuple(segments))


# --------------------------------------------------------------------------- params

class ParamError(ValueError):
    """Raised by :func:`fill` when params do not fit the declaration; ``.hits`` says why."""

    def __init__(self, hits: list[Hit]):
        super().__init__("; ".join(f"{h.rule}: {h.description}" for h in hits))
        self.hits = hits


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return v if isinstance(v, str) else str(v)


def check_params(variables: Mapping[str, Any] | None, params: Mapping[str, Any] | None,
                 rules: TemplateRules | None = None) -> list[Hit]:
    """TPL_PARAM_* hits for the values of one send (see the module docstring)."""
    rules = _rules(rules)
    params = params or {}
    hits: list[Hit] = []
    try:
        specs = parse_variables(variables, rules)
    except ValueError as exc:
        return [rules.hit("TPL_VARIABLE_TYPE", detail=str(exc))]
    for name, spec in specs.items():
        if name not in params or params[name] is None or _value(params[name]) == "":
            hits.append(rules.hit("TPL_PARAM_MISSING", evidence=name, detail=f"${{{name}}} ({spec.type})"))
            continue
        value = _value(params[name])
        type_rule = rules.types[spec.type]
        if len(value) > 2 * max(spec.max_length, 64):  # before any regex sees a hostile value
            hits.append(rules.hit("TPL_PARAM_TOO_LONG", evidence=value[:64] + "…",
                                  detail=f"${{{name}}} has {len(value)} characters, {spec.type} allows "
                                         f"{spec.max_length}"))
            continue
        if type_rule.pattern is not None and not type_rule.pattern.fullmatch(value):
            hits.append(rules.hit("TPL_PARAM_TYPE", evidence=value,
                                  detail=f"${{{name}}} is not a valid {spec.type}"))
            continue
        if len(value) > spec.max_length:
            hits.append(rules.hit("TPL_PARAM_TOO_LONG", evidence=value,
                                  detail=f"${{{name}}} has {len(value)} characters, {spec.type} allows "
                                         f"{spec.max_length}"))
            continue
        if spec.type != "url" and LINK.search(value):
            hits.append(rules.hit("TPL_PARAM_LINK", evidence=value, detail=f"${{{name}}} ({spec.type})"))
    for name in params:
        if name not in specs:
            hits.append(rules.hit("TPL_PARAM_UNKNOWN", evidence=str(name)))
    return hits


def fill(content: str, variables: Mapping[str, Any] | None, params: Mapping[str, Any] | None,
         rules: TemplateRules | None = None, check: bool = True) -> str:
    """The message as sent: every ``${name}`` replaced by its value. Raises ParamError when
    ``check`` and the params do not fit (TPL_PARAM_UNKNOWN alone does not raise)."""
    params = params or {}
    if check:
        bad = [h for h in check_params(variables, params, rules) if h.rule != "TPL_PARAM_UNKNOWN"]
        if bad:
            raise ParamError(bad)

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name in params and params[name] is not None:
            return _value(params[name])
        return m.group(0)

    return VAR_TOKEN.sub(sub, content)


def rule_table() -> list[dict[str, str]]:
    """[{id, applies_to, description}] for docs and the reviewer pages."""
    return [{"id": k, "applies_to": a, "description": d} for k, (a, d) in RULES.items()]
