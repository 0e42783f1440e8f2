"""Load, validate and version the rule files under rules/; hot reload with RuleSetManager.

``load_ruleset(rules_dir) -> RuleSet`` reads every rule file, validates it (a broken file raises
``RuleError`` with a one-line message naming the file and the entry), compiles the keyword
automata and the patterns, and returns an immutable RuleSet. ``RuleSet.version`` is a short
sha256 over the content of every rule file in force (sorted by path, external term files
included; self-test examples and README excluded).

``RuleSetManager`` keeps the RuleSet in force, polls the files' mtimes from a daemon thread
and rebuilds on a change off the request path, then swaps one reference. A rebuild that fails
is logged and kept in ``status()["last_error"]``; the rules in force stay.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from app.engine.normalize import normalize_term

log = logging.getLogger("smsguard.rules")

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

RULE_ID_RE = re.compile(r"^(KW|PAT|CLF|TPL|ACCT)_[A-Z0-9]+(?:_[A-Z0-9]+)*$")
CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
KEYWORD_ACTIONS = ("reject", "review", "score")
CATEGORY_ACTIONS = ("reject", "review", "allow")
LANGS = ("zh", "en")
MAX_VARIANTS_PER_TERM = 64

RULE_FILES = ("categories.yaml", "policy.yaml", "variants.yaml", "allow.yaml", "patterns.yaml", "context.yaml")
SKIP_DIRS = ("selftest",)


class RuleError(ValueError):
    """A rule file is broken. ``str(err)`` is one line: ``<file>: <where>: <what>``."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


# ------------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Category:
    id: str
    description: str
    default_action: str  # reject | review | allow (allow = informational, e.g. marketing)
    subcategories: dict[str, str] = field(default_factory=dict)  # "<id>.<name>" -> description


@dataclass(frozen=True)
class KeywordRule:
    id: str
    category: str | None  # None: a context rule (context.yaml)
    description: str
    action: str  # reject | review | score | context
    score: float
    lang: str  # zh | en
    pinyin: bool
    terms: tuple[str, ...]  # as written (inline terms, then the file's terms)
    source: str  # rules-relative path of the YAML file
    norm_terms: tuple[str, ...] = field(default=(), repr=False, compare=False)  # matching forms
    subcategory: str | None = None  # "<category>.<name>" declared in categories.yaml
    #: a composite rule: (group name, its terms' matching forms) each; fires when a term of every
    #: group occurs within ``within`` characters of the normalized text
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    within: int = 0

    @property
    def hit_action(self) -> str | None:
        return None if self.action == "score" else self.action


@dataclass(frozen=True)
class AllowPhrase:
    phrase: str
    categories: frozenset[str] | None  # None: cancels hits of every category


@dataclass(frozen=True)
class RuleSet:
    rules_dir: Path
    version: str
    categories: dict[str, Category]
    keyword_rules: tuple[KeywordRule, ...]
    allow: tuple[AllowPhrase, ...]
    variants: dict[str, tuple[str, ...]]
    standalone_variants: frozenset[str]
    keywords: Any  # app.engine.keywords.KeywordMatcher
    patterns: Any  # app.engine.patterns.PatternMatcher
    policy: Any  # app.engine.policy.Policy
    files: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    loaded_at: float = field(default_factory=time.time)
    build_seconds: float = 0.0

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset(r.id for r in self.keyword_rules) | frozenset(self.patterns.rule_ids)

    def summary(self) -> dict:
        return {
            "version": self.version,
            "keyword_rules": len(self.keyword_rules),
            "terms": sum(len(r.terms) for r in self.keyword_rules),
            "automaton_keys": self.keywords.size,
            "pinyin_keys": self.keywords.pinyin_size,
            "allow_phrases": len(self.allow),
            "pattern_rules": len(self.patterns.rules),
            "categories": len(self.categories),
            "build_seconds": round(self.build_seconds, 3),
        }


# ---------------------------------------------------------------------------------- helpers


def _rel(rules_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(rules_dir))
    except ValueError:
        return str(path)


def parse_yaml(text: str | bytes) -> Any:
    """A rule or policy file's YAML, parsed as the engine parses it (libyaml when available).
    Use it wherever rules/ is read, so that no reader accepts or drops what the engine does not."""
    return yaml.load(text, Loader=_Loader)


def _read_yaml(rules_dir: Path, path: Path, hasher, required: bool = True) -> Any:
    rel = _rel(rules_dir, path)
    if not path.exists():
        if required:
            raise RuleError(f"{rel}: file missing", rel)
        return None
    raw = path.read_bytes()
    hasher.append((rel, raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"{rel}: not UTF-8 ({exc.reason} at byte {exc.start})", rel) from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"{rel}: invalid YAML: {problem}{where}", rel) from None


def _expect(cond: bool, rel: str, where: str, msg: str) -> None:
    if not cond:
        raise RuleError(f"{rel}: {where}: {msg}" if where else f"{rel}: {msg}", rel)


def _check_keys(d: dict, allowed: set[str], rel: str, where: str) -> None:
    unknown = sorted(set(d) - allowed)
    _expect(not unknown, rel, where, f"unknown key(s) {', '.join(map(str, unknown))} (allowed: {', '.join(sorted(allowed))})")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_term_file(rules_dir: Path, relpath: str, hasher, rel: str, where: str) -> list[str]:
    """One term per line; blank lines and lines starting with # are skipped."""
    _expect(isinstance(relpath, str) and relpath.strip() != "", rel, where, "file: must be a path relative to rules/")
    path = (rules_dir / relpath).resolve()
    root = rules_dir.resolve()
    _expect(path == root or root in path.parents, rel, where, f"file: {relpath} is outside the rules directory")
    _expect(path.is_file(), rel, where, f"file: {relpath} not found")
    raw = path.read_bytes()
    hasher.append((_rel(root, path), raw))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleError(f"{relpath}: not UTF-8 ({exc.reason} at byte {exc.start})", relpath) from None
    out = []
    for line in text.splitlines():
        t = line.strip()
        if t and not t.startswith("#"):
            out.append(t)
    return out


# --------------------------------------------------------------------------------- loaders


def load_categories(rules_dir: Path, hasher) -> dict[str, Category]:
    path = rules_dir / "categories.yaml"
    rel = "categories.yaml"
    doc = _read_yaml(rules_dir, path, hasher)
    _expect(isinstance(doc, dict) and isinstance(doc.get("categories"), list), rel, "", "expected a mapping with a 'categories' list")
    _check_keys(doc, {"categories"}, rel, "")
    out: dict[str, Category] = {}
    for i, c in enumerate(doc["categories"]):
        where = f"categories[{i}]"
        _expect(isinstance(c, dict), rel, where, "expected a mapping with id, description, default_action")
        _check_keys(c, {"id", "description", "default_action", "subcategories"}, rel, where)
        cid = c.get("id")
        _expect(isinstance(cid, str) and bool(CATEGORY_RE.match(cid)), rel, where, f"id {cid!r} must be lower_snake")
        _expect(cid not in out, rel, where, f"duplicate category {cid}")
        act = c.get("default_action", "reject")
        _expect(act in CATEGORY_ACTIONS, rel, where, f"default_action must be one of {', '.join(CATEGORY_ACTIONS)}")
        subs: dict[str, str] = {}
        items = c.get("subcategories") or []
        _expect(isinstance(items, list), rel, f"{where}.subcategories", "expected a list of {id, description}")
        for j, sc in enumerate(items):
            w = f"{where}.subcategories[{j}]"
            _expect(isinstance(sc, dict), rel, w, "expected a mapping with id and description")
            _check_keys(sc, {"id", "description"}, rel, w)
            sid = sc.get("id")
            _expect(isinstance(sid, str) and bool(CATEGORY_RE.match(sid)), rel, w, f"id {sid!r} must be lower_snake")
            _expect(f"{cid}.{sid}" not in subs, rel, w, f"duplicate subcategory {sid}")
            subs[f"{cid}.{sid}"] = str(sc.get("description", "") or "")
        out[cid] = Category(cid, str(c.get("description", "")), act, subs)
    _expect(bool(out), rel, "", "no categories")
    return out


def load_keyword_rules(rules_dir: Path, categories: dict[str, Category], hasher,
                       warnings: list[str] | None = None) -> list[KeywordRule]:
    """The rules of keywords/<category>.yaml, then those of context.yaml."""
    if warnings is None:
        warnings = []
    kw_dir = rules_dir / "keywords"
    rules: list[KeywordRule] = []
    seen: dict[str, str] = {}
    if not kw_dir.is_dir():
        return rules + load_context_rules(rules_dir, hasher, seen, warnings)
    files = sorted(p for p in kw_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        rel = _rel(rules_dir, path)
        doc = _read_yaml(rules_dir, path, hasher)
        if doc is None:
            continue  # an empty file defines nothing
        _expect(isinstance(doc, dict), rel, "", "expected a mapping with 'category' and 'rules'")
        _check_keys(doc, {"category", "rules", "description"}, rel, "")
        cat = doc.get("category")
        _expect(isinstance(cat, str) and cat in categories, rel, "category", f"{cat!r} is not a category of categories.yaml")
        items = doc.get("rules") or []
        _expect(isinstance(items, list), rel, "rules", "expected a list")
        for i, r in enumerate(items):
            rules.append(_keyword_rule(rules_dir, r, cat, rel, f"rules[{i}]", seen, hasher, warnings,
                                       categories[cat].subcategories))
    return rules + load_context_rules(rules_dir, hasher, seen, warnings)


def _keyword_rule(rules_dir: Path, r: Any, cat: str | None, rel: str, where: str, seen: dict[str, str], hasher,
                  warnings: list[str], subcategories: dict[str, str] | None = None) -> KeywordRule:
    """One validated keyword rule of ``rel`` (a keywords/ file: ``cat`` its category; context.yaml:
    ``cat`` None, action ``context``, score <= 0). A rule with ``groups`` is composite."""
    _expect(isinstance(r, dict), rel, where, "expected a mapping")
    rid = r.get("id")
    where = f"{where} ({rid})"
    context = cat is None
    keys = {"id", "description", "score", "lang", "pinyin", "terms", "file"}
    if not context:
        keys |= {"action", "subcategory", "groups", "within"}
    _check_keys(r, keys, rel, where)
    _expect(isinstance(rid, str) and rid.startswith("KW_") and bool(RULE_ID_RE.match(rid)), rel, where, "id must be UPPER_SNAKE starting with KW_")
    _expect(rid not in seen, rel, where, f"duplicate rule id (also in {seen.get(rid)})")
    seen[rid] = rel
    action = "context" if context else r.get("action", "score")
    _expect(action in KEYWORD_ACTIONS or context, rel, where, f"action must be one of {', '.join(KEYWORD_ACTIONS)}")
    score = r.get("score", 0)
    _expect(_number(score), rel, where, "score must be a number")
    _expect(not context or score <= 0, rel, where, "a context rule's score must be 0 or negative")
    lang = r.get("lang", "zh")
    _expect(lang in LANGS, rel, where, f"lang must be one of {', '.join(LANGS)}")
    pinyin = r.get("pinyin", False)
    _expect(isinstance(pinyin, bool), rel, where, "pinyin must be true or false")
    _expect(not (pinyin and lang != "zh"), rel, where, "pinyin: true needs lang: zh")
    sub = r.get("subcategory")
    if sub is not None:
        _expect(isinstance(sub, str) and sub in (subcategories or {}), rel, where,
                f"subcategory {sub!r} is not declared for {cat} in categories.yaml")
    groups: list[tuple[str, tuple[str, ...]]] = []
    within = 0
    if "groups" in r:
        _expect("terms" not in r and "file" not in r, rel, where, "a composite rule has groups, not terms or file")
        g = r.get("groups")
        _expect(isinstance(g, dict) and len(g) >= 2, rel, where, "groups must map at least two group names to term lists")
        terms = []
        for name, items in g.items():
            _expect(isinstance(name, str) and bool(CATEGORY_RE.match(name)), rel, where, f"group name {name!r} must be lower_snake")
            _expect(isinstance(items, list) and bool(items), rel, f"{where} groups.{name}", "expected a non-empty list of terms")
            gterms = _terms(items, rel, f"{where} groups.{name}")
            terms.extend(gterms)
            # a one-character part is no warning: it counts only beside every other group
            groups.append((name, tuple(dict.fromkeys(_norm_terms(gterms, rel, f"{where} groups.{name}", [])))))
        within = r.get("within")
        _expect(isinstance(within, int) and not isinstance(within, bool) and 1 <= within <= 1000, rel, where,
                "within must be a whole number of characters from 1 to 1000")
        norms = [t for _n, ts in groups for t in ts]
    else:
        _expect("within" not in r, rel, where, "within goes with groups")
        terms = _terms(r.get("terms") or [], rel, where)
        if "file" in r:
            terms.extend(read_term_file(rules_dir, r["file"], hasher, rel, where))
        _expect(bool(terms), rel, where, "no terms (give terms: or file:)")
        terms = list(dict.fromkeys(terms))
        norms = _norm_terms(terms, rel, where, warnings)
    return KeywordRule(id=rid, category=cat, description=str(r.get("description", "") or ""),
                       action=action, score=float(score), lang=lang, pinyin=pinyin,
                       terms=tuple(terms), source=rel, norm_terms=tuple(norms), subcategory=sub,
                       groups=tuple(groups), within=within)


def _terms(items: Any, rel: str, where: str) -> list[str]:
    _expect(isinstance(items, list), rel, where, "terms must be a list")
    out: list[str] = []
    for j, t in enumerate(items):
        _expect(isinstance(t, (str, int)) and not isinstance(t, bool), rel, f"{where} terms[{j}]", "a term must be a string")
        out.append(str(t))
    return out


def _norm_terms(terms: list[str], rel: str, where: str, warnings: list[str]) -> list[str]:
    """The matching forms of ``terms`` (refusing terms that vanish or are one Latin letter)."""
    norms = []
    for t in terms:
        n = normalize_term(t).strip()
        _expect(n != "", rel, where, f"term {t!r} is empty after normalization")
        _expect(len(n) >= 2 or not n.isascii(), rel, where, f"term {t!r} normalizes to a single character {n!r}: it would fire on ordinary text")
        if len(n) == 1:
            warnings.append(f"{rel}: {where}: single-character term {t!r} (matches anywhere it appears)")
        norms.append(n)
    return norms


def load_context_rules(rules_dir: Path, hasher, seen: dict[str, str], warnings: list[str]) -> list[KeywordRule]:
    """rules/context.yaml: wording that warns against, reports on or moderates prohibited content
    in any category (the policy demotes every category's hits one step; rules/README.md)."""
    rel = "context.yaml"
    _doc, items = _optional_list_file(rules_dir, rel, "rules", {"rules", "description"}, hasher)
    return [_keyword_rule(rules_dir, r, None, rel, f"rules[{i}]", seen, hasher, warnings) for i, r in enumerate(items)]


def _optional_list_file(rules_dir: Path, rel: str, key: str, keys: set[str], hasher) -> tuple[dict, list]:
    """An optional rules file holding a mapping with the list ``key``: (the mapping, the list);
    ({}, []) when the file is absent."""
    doc = _read_yaml(rules_dir, rules_dir / rel, hasher, required=False)
    if doc is None:
        return {}, []
    _expect(isinstance(doc, dict), rel, "", f"expected a mapping with a '{key}' list")
    _check_keys(doc, keys, rel, "")
    items = doc.get(key) or []
    _expect(isinstance(items, list), rel, key, "expected a list")
    return doc, items


def load_allow(rules_dir: Path, categories: dict[str, Category], hasher) -> list[AllowPhrase]:
    rel = "allow.yaml"
    doc, items = _optional_list_file(rules_dir, rel, "phrases", {"phrases", "file"}, hasher)
    out: list[AllowPhrase] = []
    for i, p in enumerate(items):
        where = f"phrases[{i}]"
        if isinstance(p, dict):
            _check_keys(p, {"phrase", "categories"}, rel, where)
            phrase = p.get("phrase")
            cats = p.get("categories")
            if cats is not None:
                _expect(isinstance(cats, list) and all(isinstance(c, str) for c in cats), rel, where, "categories must be a list of category ids")
                bad = [c for c in cats if c not in categories]
                _expect(not bad, rel, where, f"unknown categories {bad}")
                cats = frozenset(cats)
        else:
            phrase, cats = p, None
        _expect(isinstance(phrase, (str, int)) and not isinstance(phrase, bool) and str(phrase).strip() != "", rel, where, "a phrase must be a non-empty string")
        _expect(normalize_term(str(phrase)).strip() != "", rel, where, f"phrase {phrase!r} is empty after normalization")
        out.append(AllowPhrase(str(phrase), cats))
    if "file" in doc:
        for t in read_term_file(rules_dir, doc["file"], hasher, rel, "file"):
            out.append(AllowPhrase(t, None))
    return out


def load_variants(rules_dir: Path, hasher) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    rel = "variants.yaml"
    doc = _read_yaml(rules_dir, rules_dir / rel, hasher, required=False)
    if doc is None:
        return {}, frozenset()
    _expect(isinstance(doc, dict), rel, "", "expected a mapping with 'variants' (and optional 'standalone')")
    _check_keys(doc, {"variants", "standalone"}, rel, "")
    var = doc.get("variants") or {}
    _expect(isinstance(var, dict), rel, "variants", "expected a mapping canonical -> [variants]")
    out: dict[str, tuple[str, ...]] = {}
    for canon, vs in var.items():
        where = f"variants.{canon}"
        _expect(isinstance(canon, (str, int)) and str(canon).strip() != "", rel, where, "canonical form must be a string")
        _expect(isinstance(vs, list) and vs and all(isinstance(v, (str, int)) for v in vs), rel, where, "expected a non-empty list of variant strings")
        c = normalize_term(str(canon))
        _expect(len(c) >= 2, rel, where, "canonical form must be at least two characters after normalization")
        vn = []
        for v in vs:
            n = normalize_term(str(v))
            _expect(n.strip() != "", rel, where, f"variant {v!r} is empty after normalization")
            if n != c and n not in vn:
                vn.append(n)
        out[c] = tuple(vn)
    st = doc.get("standalone") or []
    _expect(isinstance(st, list), rel, "standalone", "expected a list of canonical forms")
    stand = set()
    for s in st:
        n = normalize_term(str(s))
        _expect(n in out, rel, "standalone", f"{s!r} is not a canonical form of variants")
        stand.add(n)
    return out, frozenset(stand)


def _load_plain(rules_dir: Path, name: str, hasher, required: bool) -> Any:
    return _read_yaml(rules_dir, rules_dir / name, hasher, required=required)


def _version(entries: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for rel, raw in sorted(entries):
        h.update(rel.encode("utf-8"))
        h.update(b"\0")
        h.update(hashlib.sha256(raw).digest())
        h.update(b"\n")
    return h.hexdigest()[:16]


def load_ruleset(rules_dir: str | os.PathLike) -> RuleSet:
    """Load, validate and compile every rule file under ``rules_dir``. Raises RuleError."""
    from app.engine.keywords import KeywordMatcher
    from app.engine.patterns import PatternMatcher
    from app.engine.policy import Policy

    t0 = time.perf_counter()
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RuleError(f"{rules_dir}: rules directory not found", str(rules_dir))
    hasher: list[tuple[str, bytes]] = []
    warnings: list[str] = []
    categories = load_categories(rules_dir, hasher)
    keyword_rules = load_keyword_rules(rules_dir, categories, hasher, warnings)
    allow = load_allow(rules_dir, categories, hasher)
    variants, standalone = load_variants(rules_dir, hasher)
    pat_doc = _load_plain(rules_dir, "patterns.yaml", hasher, required=False)
    try:
        patterns = PatternMatcher.from_config(pat_doc, categories)
    except ValueError as exc:
        raise RuleError(f"patterns.yaml: {exc}", "patterns.yaml") from None
    kw_ids = {r.id for r in keyword_rules}
    dup = kw_ids & set(patterns.rule_ids)
    if dup:
        raise RuleError(f"patterns.yaml: rule ids also used by keyword rules: {sorted(dup)}", "patterns.yaml")
    pol_doc = _load_plain(rules_dir, "policy.yaml", hasher, required=True)
    try:
        policy, pol_warnings = Policy.from_config(pol_doc, categories, kw_ids | set(patterns.rule_ids))
    except ValueError as exc:
        raise RuleError(f"policy.yaml: {exc}", "policy.yaml") from None
    warnings.extend(f"policy.yaml: {w}" for w in pol_warnings)
    keywords = KeywordMatcher(keyword_rules, allow, variants, standalone)
    warnings.extend(keywords.warnings)
    return RuleSet(
        rules_dir=rules_dir,
        version=_version(hasher),
        categories=categories,
        keyword_rules=tuple(keyword_rules),
        allow=tuple(allow),
        variants=variants,
        standalone_variants=standalone,
        keywords=keywords,
        patterns=patterns,
        policy=policy,
        files=tuple(sorted(rel for rel, _ in hasher)),
        warnings=tuple(warnings),
        build_seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------- self-tests


@dataclass(frozen=True)
class SelfTestCase:
    file: str
    category: str
    kind: str  # must_match | must_not_match
    text: str
    verdict: str | None  # the verdict a must_match example must get (None: anything but allow)


def load_selftests(rules_dir: str | os.PathLike, categories: dict[str, Category] | None = None) -> list[SelfTestCase]:
    rules_dir = Path(rules_dir)
    st_dir = rules_dir / "selftest"
    out: list[SelfTestCase] = []
    if not st_dir.is_dir():
        return out
    sink: list = []
    for path in sorted(p for p in st_dir.iterdir() if p.suffix in (".yaml", ".yml")):
        rel = _rel(rules_dir, path)
        doc = _read_yaml(rules_dir, path, sink)
        if doc is None:
            continue
        _expect(isinstance(doc, dict), rel, "", "expected a mapping with category, must_match, must_not_match")
        _check_keys(doc, {"category", "must_match", "must_not_match", "description"}, rel, "")
        cat = doc.get("category")
        _expect(isinstance(cat, str) and (categories is None or cat in categories), rel, "category", f"{cat!r} is not a category")
        for kind in ("must_match", "must_not_match"):
            items = doc.get(kind) or []
            _expect(isinstance(items, list), rel, kind, "expected a list")
            for i, it in enumerate(items):
                where = f"{kind}[{i}]"
                if isinstance(it, str):
                    it = {"text": it}
                _expect(isinstance(it, dict) and isinstance(it.get("text"), str), rel, where, "expected {text: ...}")
                _check_keys(it, {"text", "verdict", "note"}, rel, where)
                v = it.get("verdict")
                _expect(v is None or v in ("allow", "review", "reject"), rel, where, "verdict must be allow, review or reject")
                out.append(SelfTestCase(rel, cat, kind, it["text"], v))
    return out


# ------------------------------------------------------------------------ hot reload manager


def rules_signature(rules_dir: Path) -> tuple:
    """(path, mtime_ns, size) of every file under rules_dir except self-tests and docs."""
    sig = []
    stack = [rules_dir]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if e.is_dir(follow_symlinks=True):
                    if e.name not in SKIP_DIRS and not e.name.startswith("."):
                        stack.append(Path(e.path))
                elif not e.name.startswith(".") and not e.name.endswith((".md", "~", ".swp")):
                    try:
                        st = e.stat()
                    except OSError:
                        continue
                    sig.append((e.path, st.st_mtime_ns, st.st_size))
    sig.sort()
    return tuple(sig)


_managers: "weakref.WeakSet[RuleSetManager]" = weakref.WeakSet()


def _after_fork_in_child() -> None:  # pragma: no cover - exercised under gunicorn
    for m in list(_managers):
        m._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RuleSetManager:
    """The RuleSet in force, reloaded on change without a restart.

    ``current`` is one attribute read (atomic); a rebuild happens in the watcher thread (or
    in ``reload()``) and swaps the reference only when the new rules loaded and compiled."""

    def __init__(
        self,
        rules_dir: str | os.PathLike,
        watch: bool = True,
        poll_interval: float = 1.0,
        loader: Callable[[Path], RuleSet] = load_ruleset,
        gate: Callable[[RuleSet], str | None] | None = None,
    ):
        self.rules_dir = Path(rules_dir)
        self._gate = gate
        self.poll_interval = float(poll_interval)
        self._loader = loader
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch = watch
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.reloads = 0
        # callables (event, info) told of every reload ("reloaded") and failed reload ("error"),
        # e.g. the service's metrics; the engine itself knows nothing of them
        self.listeners: list[Callable[[str, dict], None]] = []
        self._sig = rules_signature(self.rules_dir)
        self._current: RuleSet = self._build()  # raises: no rules, no service
        _managers.add(self)
        if watch:
            self._start_watcher()

    @property
    def current(self) -> RuleSet:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    def reload(self) -> bool:
        """Rebuild now. True if new rules are in force; False if the build failed (the error is
        in ``last_error``) or nothing changed."""
        with self._build_lock:
            sig = rules_signature(self.rules_dir)
            self._sig = sig
            try:
                rs = self._build()
            except Exception as exc:  # a broken file must never take the rules in force down
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if not isinstance(exc, RuleError):
                    msg = f"{type(exc).__name__}: {msg}"
                self.last_error = msg
                self.last_error_at = time.time()
                log.error("rules reload failed, keeping version %s: %s", self._current.version, msg)
                self._notify("error", {"error": msg, "version": self._current.version})
                return False
            failing, self.last_error, self.last_error_at = self.last_error, None, None
            if rs.version == self._current.version:
                if failing:  # the files are back to the rules in force
                    self._notify("recovered", {"version": rs.version})
                return False
            old = self._current.version
            self._current = rs
            self.reloads += 1
            log.info("rules reloaded: %s -> %s (%.2fs)", old, rs.version, rs.build_seconds)
            self._notify("reloaded", {"version": rs.version, "old_version": old})
            return True

    def _build(self) -> RuleSet:
        """Load the rule files and pass them through the gate (the self-tests): RuleError when
        they fail it."""
        rs = self._loader(self.rules_dir)
        if self._gate is not None:
            failure = self._gate(rs)
            if failure:
                raise RuleError(f"{self.rules_dir}: {failure}")
        return rs

    def _notify(self, event: str, info: dict) -> None:
        for fn in list(self.listeners):
            try:
                fn(event, info)
            except Exception:  # noqa: BLE001 - a listener must never break a reload
                log.exception("rules %s listener failed", event)

    def check_for_changes(self) -> bool:
        """One poll: reload if the files changed since the last look."""
        sig = rules_signature(self.rules_dir)
        if sig == self._sig:
            return False
        return self.reload()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.check_for_changes()
            except Exception:  # pragma: no cover - keep watching whatever happens
                log.exception("rules watcher error")

    def _start_watcher(self) -> None:
        self._stop = threading.Event()
        t = threading.Thread(target=self._run, name="smsguard-rules-watcher", daemon=True)
        self._thread = t
        t.start()

    def _after_fork(self) -> None:
        self._build_lock = threading.Lock()
        if self._watch and self._thread is not None and not self._stop.is_set():
            self._start_watcher()

    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict:
        rs = self._current
        return {
            "loaded": True,
            "version": rs.version,
            "dir": str(self.rules_dir),
            "loaded_at": rs.loaded_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "reloads": self.reloads,
            "watching": self.watching,
            "selftests_gate": self._gate is not None,
            "warnings": list(rs.warnings),
            **{k: v for k, v in rs.summary().items() if k != "version"},
        }

    def close(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(timeout=max(1.0, self.poll_interval * 2))
        self._thread = None
