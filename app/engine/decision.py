"""The fitted decision: a second-level score over one message's first-level signals.

The category heads, the aggregate head, the message's language and length and its keyword and
pattern evidence each say something about whether a message is prohibited; hand thresholds use
them one at a time. A fitted decision weighs them together: a logistic model over the features
below, fitted (``smsguard fit-decision``, app/training/decision_fit.py) on messages of sources
the classifier was trained without, so the weights describe how the model behaves on traffic it
never saw. The policy uses its score where it would use the aggregate head's probability
(``classifier.prohibited_head.fitted`` in rules/policy.yaml).

Features (every probability is the bounded one: times units / min_content on short texts):
- ``prohibited``, ``top``: log-odds of the aggregate head and of the most likely prohibited category;
- ``en``, ``en_prohibited``, ``en_top``: an English message, and the two log-odds again for it
  (the English heads are calibrated on other data than the Chinese);
- ``units``: content units / 40 (at most 1), ``short``: fewer units than ``min_content_reject``;
- ``keyword``: a keyword or pattern hit of a prohibited category, ``context``: a warning or
  notice context hit (one that demotes), ``channel``: a ``channel_rules`` hit (link, phone, id);
- one per prohibited category, by its id: that head's log-odds.

No Flask, no database: the engine's policy calls it per message, the trainer on dumps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["FittedDecision", "BASE_FEATURES", "feature_values", "logit"]

BASE_FEATURES = ("prohibited", "top", "en", "en_prohibited", "en_top", "units", "short",
                 "keyword", "context", "channel")
_EPS = 1e-4
_UNITS_SCALE = 40.0


def logit(p: float) -> float:
    """Log-odds of ``p``, clipped to [1e-4, 1 - 1e-4] (a head's 0 or 1 is not infinitely sure)."""
    p = _EPS if p < _EPS else (1.0 - _EPS if p > 1.0 - _EPS else p)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class FittedDecision:
    """``bias`` + sum of weight * feature, through the logistic function."""
    bias: float
    weights: tuple[tuple[str, float], ...]

    def score(self, values: dict[str, float]) -> float:
        z = self.bias
        for name, w in self.weights:
            v = values.get(name)
            if v:
                z += w * v
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


def feature_values(labels: Sequence[str], probs: Sequence[float], factor: float, p_any: float,
                   prohibited: Iterable[str], lang: str | None, units: int | None, evidence: Iterable,
                   channel_rules: frozenset[str], min_content_reject: int) -> dict[str, float]:
    """The features of one message (see the module doc). ``labels``/``probs``: the model's;
    ``p_any``: the aggregate head's bounded probability; ``prohibited``: the category ids that
    count as prohibited (informational ones left out); ``evidence``: its keyword and pattern
    hits (``Hit``: rule, category, score, action)."""
    if not isinstance(prohibited, (set, frozenset)):
        prohibited = frozenset(prohibited)
    values: dict[str, float] = {}
    top = 0.0
    for label, p in zip(labels, probs):
        if label in prohibited:
            p = float(p) * factor
            if not p == p:  # NaN
                continue
            values[label] = logit(p)
            if p > top:
                top = p
    values["prohibited"] = logit(p_any)
    values["top"] = logit(top)
    if lang == "en":
        values["en"] = 1.0
        values["en_prohibited"] = values["prohibited"]
        values["en_top"] = values["top"]
    if units is not None:
        values["units"] = min(units, _UNITS_SCALE) / _UNITS_SCALE
        if units < min_content_reject:
            values["short"] = 1.0
    for h in evidence:
        if h.action == "context" or h.score < 0:
            values["context"] = 1.0
        elif h.category in prohibited and h.score > 0:
            values["keyword"] = 1.0
        if h.rule in channel_rules:
            values["channel"] = 1.0
    return values
