"""Fit the second-level decision (``smsguard fit-decision``; app/engine/decision.py).

Input: dumps of ``smsguard evaluate --by-source --dump`` - messages of sources the classifier of
their fold was trained without, each with its first-level signals. A model scores traffic it
never saw differently from its own training data (more sure of chatter that resembles a prohibited
category, less sure of prohibited messages in another writer's style), so the second level is
fitted on held-out signals only, never on the shipped model's scores of its own training rows.

1. Features: ``Policy.decision_features`` of every row, with the rules folder's policy
   (its ``channel_rules``, ``min_content_reject`` and informational categories), exactly as the
   engine computes them.
2. Fit: one L2 logistic regression, prohibited (any prohibited label) against not. Every source's
   prohibited rows get the same weight mass (a writer's 700 as much as a corpus's 4,000: the
   styles count, not the row counts); every source's other rows a mass proportional to the
   square root of its row count (the big Chinese corpus stays the largest voice without
   drowning the small English one); the two classes the same total. (Chosen on the dump of
   docs/evaluation.md: square roots for both classes, or equal masses for both, gained less or
   found no thresholds within the budgets.)
3. Thresholds, per language: every setting (reject, confirm, confirm_review) of the grids is
   replayed through the full policy (keyword and pattern hits from the dump, classifier hits and
   the decision as the engine makes them). Chosen: the setting per language that rejects the most
   prohibited rows (the mean over sources of each source's share) while every source's normal
   rows stay within the budgets (rejected, flagged), English and Chinese rows of a source counted
   together.

The result is the ``prohibited_head`` block for rules/policy.yaml and the figures behind it.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import numpy as np

from app.engine.classifier import AGGREGATE_LABEL, PROHIBITED
from app.engine.decision import BASE_FEATURES, FittedDecision
from app.engine.policy import AggregateThresholds, Policy
from app.engine.types import Hit

__all__ = ["load_dump", "fit", "choose", "DEFAULT_REJECT_GRID", "DEFAULT_CONFIRM_GRID", "policy_yaml"]

DEFAULT_REJECT_GRID = (0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)
DEFAULT_CONFIRM_GRID = (None, 0.1, 0.2, 0.3)
DEFAULT_REVIEW_GRID = (None, 0.02, 0.05, 0.1)
LANGS = ("zh", "en")


_PROHIBITED = frozenset(PROHIBITED)


class _Content(NamedTuple):
    lang: str | None
    units: int | None


class _Replay(NamedTuple):
    """One dump row as ``Policy.replay`` takes it, prepared once for every setting replayed."""
    source: str
    prohibited: bool
    normal: bool
    labels: tuple
    probs: list
    content: _Content
    evidence: list

    @classmethod
    def of(cls, r: dict) -> "_Replay":
        labels = tuple(r["probs"])
        return cls(r["source"], _is_prohibited(r), not r["labels"], labels, [r["probs"][lab] for lab in labels],
                   _Content(r["lang"], r["units"]), r["evidence"])

    def verdict(self, policy: Policy) -> str:
        return policy.replay(self.labels, self.probs, self.content, self.evidence).verdict


def load_dump(paths: Iterable[Path]) -> list[dict]:
    """Rows of one or more dumps; a line that is not a dump row is a ValueError naming it."""
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    r["probs"] = {str(k): float(v) for k, v in r["probs"].items()}
                    r["evidence"] = [Hit(rule=str(e[0]), category=e[1], detector="dump", score=float(e[3]),
                                         action=e[2]) for e in r["evidence"]]
                    r["labels"] = list(r["labels"])
                    r["source"] = str(r["source"])
                except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                    raise ValueError(f"{path}:{n}: not a --dump row ({exc.__class__.__name__}: {exc})") from None
                if AGGREGATE_LABEL not in r["probs"]:
                    raise ValueError(f"{path}:{n}: the model of this dump has no aggregate head "
                                     f"({AGGREGATE_LABEL!r}); the fitted decision needs one")
                rows.append(r)
    if not rows:
        raise ValueError("the dumps hold no row")
    return rows


def _is_prohibited(r: dict) -> bool:
    return not _PROHIBITED.isdisjoint(r["labels"])


def _features(rows: list[dict], policy: Policy) -> tuple[np.ndarray, list[str]]:
    labels = tuple(rows[0]["probs"])
    names = list(BASE_FEATURES) + [lab for lab in labels if lab in PROHIBITED and lab not in policy.informational]
    X = np.zeros((len(rows), len(names)))
    for i, r in enumerate(rows):
        v = policy.decision_features(labels, [r["probs"][lab] for lab in labels], r["lang"], r["units"],
                                     r["evidence"])
        X[i] = [v.get(n, 0.0) for n in names]
    return X, names


def _weights(rows: list[dict], y: np.ndarray) -> np.ndarray:
    keys = [(r["source"], bool(t)) for r, t in zip(rows, y)]
    count: dict = {}
    for k in keys:
        count[k] = count.get(k, 0) + 1
    w = np.array([(1.0 if k[1] else math.sqrt(count[k])) / count[k] for k in keys])
    pos, neg = w[y].sum(), w[~y].sum()
    if pos == 0 or neg == 0:
        raise ValueError("the dumps need both prohibited and other rows")
    w[y] *= neg / pos
    return w * (len(w) / w.sum())


def fit(rows: list[dict], policy: Policy, C: float = 1.0) -> FittedDecision:
    """The logistic second level on ``rows`` (see the module doc)."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([_is_prohibited(r) for r in rows])
    X, names = _features(rows, policy)
    lr = LogisticRegression(C=C, max_iter=5000)
    lr.fit(X, y, sample_weight=_weights(rows, y))
    weights = tuple((n, round(float(w), 4)) for n, w in zip(names, lr.coef_[0]) if round(float(w), 4) != 0.0)
    return FittedDecision(bias=round(float(lr.intercept_[0]), 4), weights=weights)


def _with(policy: Policy, lang: str, agg: AggregateThresholds) -> Policy:
    return replace(policy, classifier_aggregate_languages={**policy.classifier_aggregate_languages, lang: agg})


def choose(rows: list[dict], policy: Policy, fitted: FittedDecision, reject_grid=DEFAULT_REJECT_GRID,
           confirm_grid=DEFAULT_CONFIRM_GRID, review_grid=DEFAULT_REVIEW_GRID, budget_rejected: float = 0.45, budget_flagged: float = 2.0,
           min_normals: int = 1000, min_prohibited: int = 50, progress: Callable | None = None) -> dict:
    """The (reject, confirm, confirm_review) setting per language (see the module doc) and the
    figures: {"choice": {lang: {"reject", "confirm", "confirm_review"}}, "sources": {source: {...}},
    "baseline": {...}, "objective", "baseline_objective"}. Budgets in
    percent; sources with fewer than ``min_normals`` normal rows (``min_prohibited`` prohibited
    rows) are shown but do not bind (do not count in the objective)."""
    prog = progress or (lambda it, **kw: it)
    by_lang = {lang: [_Replay.of(r) for r in rows if (r["lang"] == "en") == (lang == "en")] for lang in LANGS}
    sources = sorted({r["source"] for r in rows})
    configs = [(rj, cf, rv) for rj in reject_grid for cf in confirm_grid for rv in review_grid
               if (cf is None or cf <= rj) and (rv is None or cf is None or rv <= cf)]

    def tally(pol: Policy, lang_rows: list[_Replay]) -> dict:
        t = {s: [0, 0, 0, 0, 0] for s in sources}  # normals, rejected, flagged, prohibited, rejected
        for r in lang_rows:
            v = r.verdict(pol)
            c = t[r.source]
            if r.prohibited:
                c[3] += 1
                c[4] += v == "reject"
            elif r.normal:
                c[0] += 1
                c[1] += v == "reject"
                c[2] += v != "allow"
        return t

    base = {lang: tally(policy, by_lang[lang]) for lang in LANGS}
    tallies = {lang: {} for lang in LANGS}
    for lang, cfg in prog([(lang, cfg) for lang in LANGS for cfg in configs], desc="replay", unit="policy"):
        agg = AggregateThresholds(reject=cfg[0], min_category=0.0, confirm=cfg[1], confirm_review=cfg[2],
                                  fitted=fitted)
        tallies[lang][cfg] = tally(_with(policy, lang, agg), by_lang[lang])

    def figures(parts: list[dict]) -> dict:
        out = {}
        for s in sources:
            n, rej, flag, pn, prej = (sum(p[s][i] for p in parts) for i in range(5))
            out[s] = {"normals": n, "normal_rejected": 100 * rej / n if n else None,
                      "normal_flagged": 100 * flag / n if n else None,
                      "prohibited": pn, "prohibited_rejected": 100 * prej / pn if pn else None}
        return out

    def ok_and_score(fig: dict) -> tuple[bool, float]:
        ok = all(f["normals"] < min_normals or (f["normal_rejected"] <= budget_rejected
                                              and f["normal_flagged"] <= budget_flagged) for f in fig.values())
        shares = [f["prohibited_rejected"] for f in fig.values() if f["prohibited"] >= min_prohibited]
        return ok, (sum(shares) / len(shares) if shares else 0.0)

    best = None
    for cz in configs:
        for ce in configs:
            fig = figures([tallies["zh"][cz], tallies["en"][ce]])
            ok, score = ok_and_score(fig)
            if ok and (best is None or score > best[0]):
                best = (score, cz, ce, fig)
    baseline = figures([base["zh"], base["en"]])
    if best is None:
        return {"choice": None, "sources": None, "baseline": baseline, "objective": None,
                "baseline_objective": ok_and_score(baseline)[1]}
    score, cz, ce, fig = best
    return {"choice": {lang: {"reject": c[0], "confirm": c[1], "confirm_review": c[2]}
                       for lang, c in (("zh", cz), ("en", ce))},
            "sources": fig, "baseline": baseline, "objective": score, "baseline_objective": ok_and_score(baseline)[1]}


def policy_yaml(fitted: FittedDecision, choice: dict) -> str:
    """The ``prohibited_head`` entries for rules/policy.yaml (classifier, and languages.en)."""
    zh, en = choice["zh"], choice["en"]

    def num(x):
        return "null" if x is None else repr(x)
    weights = ", ".join(f"{n}: {w}" for n, w in fitted.weights)
    return (f"  prohibited_head:\n"
            f"    reject: {num(zh['reject'])}\n    min_category: 0.0\n    exclude: []\n"
            f"    confirm: {num(zh['confirm'])}\n    confirm_review: {num(zh.get('confirm_review'))}\n"
            f"    fitted:\n      bias: {fitted.bias}\n      weights: {{{weights}}}\n"
            f"# and under classifier.languages.en:\n"
            f"      prohibited_head: {{reject: {num(en['reject'])}, confirm: {num(en['confirm'])}, "
            f"confirm_review: {num(en.get('confirm_review'))}}}\n")
