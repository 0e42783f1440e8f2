#!/usr/bin/env python
"""Measure the keyword layer on the real labelled corpora.

For every corpus of ../shared/data/train it takes the normal rows (labels == []) and reports the
share the keyword layer alone would reject (and send to review), plus the rules that fire most on
normal rows (with counts and example matched terms). SMS corpora and social-media corpora are
printed as separate groups. For the labelled prohibited rows it prints the share that the keyword
layer flags (review or reject) - recall, which is secondary to precision.

It uses the real engine (app.engine.moderator.Moderator) when it is importable, otherwise (or with
--fallback) a self-contained approximation of it: NFKC + casefold + OpenCC t2s + removal of
invisible characters and of separators between CJK characters, substring matching of zh terms,
whole-word matching of en terms, each fired rule counted once, reject/review actions forcing the
verdict, and the summed scores against the thresholds (>= 5 review, >= 10 reject). The fallback nets
scores PER CATEGORY (a category's negative context rules cancel only that category's positive
scores, never below zero) - the semantics the lexicons are written for; no pinyin view, no
variants, no allow-list.

    .venv/bin/python bench/keyword_false_rejects.py                # all corpora
    .venv/bin/python bench/keyword_false_rejects.py --fallback     # force the approximation
    .venv/bin/python bench/keyword_false_rejects.py --selftest     # run rules/selftest/*.yaml too
    .venv/bin/python bench/keyword_false_rejects.py --show-rejects 30 --corpus zh_sms_spam800k
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
SMS_CORPORA = ["zh_sms_spam800k", "zh_fbs", "en_uci_sms"]
SOCIAL_CORPORA = ["zh_cold", "zh_swsr", "zh_ced_rumor"]
REVIEW_AT = 5.0
REJECT_AT = 10.0


# --------------------------------------------------------------------------------------------
# Fallback keyword layer (approximation of app/engine; used until the engine is importable)
# --------------------------------------------------------------------------------------------

_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# separators (anything that is not a letter, digit or CJK char) squeezed between two CJK chars
_CJK_GAP = re.compile(f"(?<=[{_CJK}])[^\\w{_CJK}]+(?=[{_CJK}])")
_WORD = re.compile(r"[a-z0-9]")


@dataclass
class Hit:
    rule: str
    category: str
    action: str
    score: float
    term: str


@dataclass
class Result:
    verdict: str
    score: float
    categories: list
    hits: list = field(default_factory=list)


class FallbackKeywords:
    def __init__(self, rules_dir: Path):
        import ahocorasick
        import opencc
        import yaml

        self._cc = opencc.OpenCC("t2s")
        self.rules = {}
        self._zh = ahocorasick.Automaton()
        self._en = ahocorasick.Automaton()
        zh_terms: dict[str, list] = collections.defaultdict(list)
        en_terms: dict[str, list] = collections.defaultdict(list)
        for path in sorted((rules_dir / "keywords").glob("*.yaml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            cat = doc.get("category")
            for r in doc.get("rules", []):
                rid = r["id"]
                if rid in self.rules:
                    raise SystemExit(f"duplicate rule id {rid} in {path}")
                self.rules[rid] = dict(r, category=r.get("category", cat))
                for t in r.get("terms", []):
                    t = self.norm(str(t)) if r.get("lang", "zh") == "zh" else self._base(str(t))
                    (en_terms if r.get("lang") == "en" else zh_terms)[t].append(rid)
        for t, rids in zh_terms.items():
            self._zh.add_word(t, (t, rids))
        for t, rids in en_terms.items():
            self._en.add_word(t, (t, rids))
        self._zh.make_automaton()
        if len(self._en):
            self._en.make_automaton()

    def _base(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text).casefold()
        return _INVISIBLE.sub("", text)

    def norm(self, text: str) -> str:
        text = self._cc.convert(self._base(text))
        return _CJK_GAP.sub("", text)

    def check(self, text: str) -> Result:
        base = self._base(text)
        zh = _CJK_GAP.sub("", self._cc.convert(base))
        fired: dict[str, Hit] = {}
        for _, (term, rids) in self._zh.iter(zh):
            for rid in rids:
                if rid not in fired:
                    r = self.rules[rid]
                    fired[rid] = Hit(rid, r["category"], r.get("action", "score"),
                                     float(r.get("score", 0) or 0), term)
        if len(self._en):
            en = self._cc.convert(base)
            for end, (term, rids) in self._en.iter(en):
                start = end - len(term) + 1
                if (start > 0 and _WORD.match(en[start - 1])) or \
                        (end + 1 < len(en) and _WORD.match(en[end + 1])):
                    continue
                for rid in rids:
                    if rid not in fired:
                        r = self.rules[rid]
                        fired[rid] = Hit(rid, r["category"], r.get("action", "score"),
                                         float(r.get("score", 0) or 0), term)
        hits = list(fired.values())
        # per-category netting: a category's negative (context) rules cancel only that
        # category's positive scores, and never below zero (see the module docstring)
        pos: dict[str, float] = collections.defaultdict(float)
        neg: dict[str, float] = collections.defaultdict(float)
        strong = set()
        for h in hits:
            if h.action in ("reject", "review"):
                strong.add(h.category)
            elif h.score > 0:
                pos[h.category] += h.score
            else:
                neg[h.category] += h.score
        net = {c: max(0.0, pos[c] + neg.get(c, 0.0)) for c in pos}
        net.pop("marketing", None)
        total = sum(net.values())
        forced = {h.action for h in hits if h.category != "marketing"}
        if "reject" in forced or total >= REJECT_AT:
            verdict = "reject"
        elif "review" in forced or total >= REVIEW_AT:
            verdict = "review"
        else:
            verdict = "allow"
        cats = sorted(c for c in set(net) | strong if c in strong or net.get(c, 0) > 0)
        if any(h.category == "marketing" and h.score > 0 for h in hits):
            cats.append("marketing")  # informational: listed, never counted
        return Result(verdict, total, cats, hits)


class EngineKeywords:
    """Adapter over the real engine: same Result shape as the fallback."""

    def __init__(self, rules_dir: Path):
        from app.engine.moderator import Moderator  # noqa: WPS433
        self.m = Moderator.from_paths(str(rules_dir))

    @staticmethod
    def _get(obj, name, default=None):
        if isinstance(obj, dict):
            return obj.get(name, default)
        return getattr(obj, name, default)

    def check(self, text: str) -> Result:
        v = self.m.check(text)
        if hasattr(v, "to_dict") and not isinstance(v, dict):
            try:
                v = v.to_dict()
            except Exception:  # pragma: no cover - best effort
                pass
        hits = []
        for r in self._get(v, "reasons", []) or []:
            det = self._get(r, "detector", "keyword")
            if det not in (None, "keyword"):
                continue
            hits.append(Hit(self._get(r, "rule"), self._get(r, "category"),
                            self._get(r, "action", "score") or "score",
                            float(self._get(r, "score", 0) or 0), self._get(r, "evidence", "")))
        return Result(self._get(v, "verdict"), float(self._get(v, "score", 0) or 0),
                      list(self._get(v, "categories", []) or []), hits)


def load_layer(rules_dir: Path, force_fallback: bool):
    if not force_fallback:
        sys.path.insert(0, str(ROOT))
        try:
            layer = EngineKeywords(rules_dir)
            layer.check("测试")
            return layer, "engine (app.engine.moderator)"
        except Exception as exc:  # engine not there yet or broken: say so and fall back
            print(f"[engine not usable: {type(exc).__name__}: {exc}] -> fallback", file=sys.stderr)
    return FallbackKeywords(rules_dir), "fallback approximation"


# --------------------------------------------------------------------------------------------

def read_rows(path: Path):
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def pct(n, d):
    return f"{100.0 * n / d:6.3f}%" if d else "   n/a"


def measure_normals(layer, data: Path, names, top: int, show: int, group: str):
    print(f"\n=== {group}: normal rows (labels == []) ===")
    print(f"{'corpus':18s} {'normal':>8s} {'reject':>8s} {'share':>8s} {'review':>8s} {'share':>8s}")
    agg = [0, 0, 0]
    fire_rej = collections.Counter()
    fire_any = collections.Counter()
    terms = collections.defaultdict(collections.Counter)
    samples = []
    for name in names:
        path = data / f"{name}.jsonl"
        if not path.exists():
            print(f"{name:18s} (missing)")
            continue
        n = rej = rev = 0
        for row in read_rows(path):
            if row.get("labels"):
                continue
            n += 1
            res = layer.check(row["text"])
            if res.verdict == "reject":
                rej += 1
                if len(samples) < show:
                    samples.append((name, row["text"], res))
            elif res.verdict == "review":
                rev += 1
            for h in res.hits:
                if h.score > 0 or h.action in ("reject", "review"):
                    fire_any[h.rule] += 1
                    terms[h.rule][h.term] += 1
                    if res.verdict == "reject":
                        fire_rej[h.rule] += 1
        agg[0] += n
        agg[1] += rej
        agg[2] += rev
        print(f"{name:18s} {n:8d} {rej:8d} {pct(rej, n)} {rev:8d} {pct(rev, n)}")
    print(f"{'ALL ' + group:18s} {agg[0]:8d} {agg[1]:8d} {pct(agg[1], agg[0])} {agg[2]:8d} {pct(agg[2], agg[0])}")
    print(f"-- top {top} rules in REJECTED normal rows (count, top terms)")
    for rid, c in fire_rej.most_common(top):
        ex = ", ".join(f"{t}({k})" for t, k in terms[rid].most_common(6))
        print(f"  {c:6d}  {rid:36s} {ex}")
    print(f"-- top {top} rules firing at all on normal rows (count, top terms)")
    for rid, c in fire_any.most_common(top):
        ex = ", ".join(f"{t}({k})" for t, k in terms[rid].most_common(6))
        print(f"  {c:6d}  {rid:36s} {ex}")
    if samples:
        print("-- sample rejected normal rows")
        for name, text, res in samples:
            why = "; ".join(f"{h.rule}:{h.term}" for h in res.hits if h.score or h.action != "score")
            print(f"  [{name}] {text[:90]!r}  <- {why}")
    return agg


def measure_recall(layer, data: Path, corpus_labels, show_miss: int):
    print("\n=== labelled rows: share flagged (review or reject) by the keyword layer ===")
    print(f"{'corpus':18s} {'label':14s} {'rows':>7s} {'flagged':>8s} {'share':>8s} {'reject':>8s} {'right cat':>9s}")
    for name, labels in corpus_labels:
        path = data / f"{name}.jsonl"
        if not path.exists():
            continue
        stats = {lab: [0, 0, 0, 0] for lab in labels}
        misses = collections.defaultdict(list)
        for row in read_rows(path):
            for lab in row.get("labels") or []:
                if lab not in stats:
                    continue
                res = layer.check(row["text"])
                s = stats[lab]
                s[0] += 1
                if res.verdict in ("review", "reject"):
                    s[1] += 1
                else:
                    if len(misses[lab]) < show_miss:
                        misses[lab].append(row["text"])
                if res.verdict == "reject":
                    s[2] += 1
                if lab in res.categories:
                    s[3] += 1
        for lab, (n, f, rj, rc) in stats.items():
            print(f"{name:18s} {lab:14s} {n:7d} {f:8d} {pct(f, n)} {pct(rj, n)} {pct(rc, n)}")
        for lab, ms in misses.items():
            for t in ms:
                print(f"     miss[{lab}] {t[:100]!r}")


def run_selftests(layer, rules_dir: Path):
    import yaml

    print("\n=== rule self-tests (rules/selftest/*.yaml) ===")
    failures = 0
    total = 0
    for path in sorted((rules_dir / "selftest").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        cat = doc["category"]
        for case in doc.get("must_match", []) or []:
            total += 1
            res = layer.check(case["text"])
            want = case.get("verdict")
            ok = cat in res.categories and (res.verdict == want if want else res.verdict != "allow")
            if not ok:
                failures += 1
                print(f"  FAIL must_match [{cat}] want={want or 'flag'} got={res.verdict} "
                      f"cats={res.categories} {case['text']!r} "
                      f"hits={[h.rule + ':' + h.term for h in res.hits]}")
        for case in doc.get("must_not_match", []) or []:
            total += 1
            res = layer.check(case["text"])
            if cat in res.categories:
                failures += 1
                print(f"  FAIL must_not_match [{cat}] got={res.verdict} {case['text']!r} "
                      f"hits={[h.rule + ':' + h.term for h in res.hits]}")
    print(f"self-tests: {total - failures}/{total} pass")
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory of *.jsonl corpora")
    ap.add_argument("--rules", type=Path, default=ROOT / "rules")
    ap.add_argument("--fallback", action="store_true", help="do not use app.engine even if importable")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--show-rejects", type=int, default=0, help="print N rejected normal rows")
    ap.add_argument("--show-misses", type=int, default=0, help="print N missed rows per label")
    ap.add_argument("--corpus", action="append", help="limit to these corpora")
    ap.add_argument("--selftest", action="store_true", help="also run rules/selftest/*.yaml")
    ap.add_argument("--no-recall", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.time()
    layer, kind = load_layer(args.rules, args.fallback)
    print(f"keyword layer: {kind}; rules: {args.rules}; data: {args.data}")
    print(f"thresholds (fallback): review >= {REVIEW_AT}, reject >= {REJECT_AT}")
    sel = set(args.corpus or SMS_CORPORA + SOCIAL_CORPORA)
    sms = measure_normals(layer, args.data, [c for c in SMS_CORPORA if c in sel], args.top,
                          args.show_rejects, "SMS")
    soc = measure_normals(layer, args.data, [c for c in SOCIAL_CORPORA if c in sel], args.top,
                          args.show_rejects, "social")
    if not args.no_recall:
        measure_recall(layer, args.data, [
            ("zh_fbs", ["gambling", "pornography", "fraud", "contraband", "politics", "marketing"]),
            ("zh_sms_spam800k", ["fraud"]),
            ("en_uci_sms", ["marketing"]),
            ("zh_ced_rumor", ["rumor"]),
            ("zh_swsr", ["hate"]),
            ("zh_cold", ["hate"]),
        ], args.show_misses)
    fails = run_selftests(layer, args.rules) if args.selftest else 0
    print(f"\nelapsed {time.time() - t0:.1f}s")
    sms_rate = sms[1] / sms[0] if sms[0] else 0.0
    print(f"SMS normal reject rate: {100 * sms_rate:.3f}% (target <= 0.3%)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
