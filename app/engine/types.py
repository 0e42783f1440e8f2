"""Hit and Verdict: the result types every detector and caller shares.

``Verdict.to_dict()`` is the Verdict JSON of ../shared/DESIGN.md (API, CLI, audit output)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

VERDICTS = ("allow", "review", "reject")
ACTIONS = (None, "review", "reject", "allow")
DETECTORS = ("keyword", "pattern", "classifier", "template", "account", "presend")


class Hit(NamedTuple):
    """One fired rule (immutable; a NamedTuple because a check makes several and a frozen
    dataclass costs 5x more to build).

    ``span`` is [start, end) in the ORIGINAL text (code points) and ``evidence`` the original
    substring, even when the match was found in the normalized text."""

    rule: str
    category: str | None
    detector: str
    score: float
    action: str | None = None
    evidence: str | None = None
    span: tuple[int, int] | None = None
    description: str = ""
    words: tuple[str, ...] | None = None

    def with_(self, **changes: Any) -> "Hit":
        return self._replace(**changes)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "rule": self.rule,
            "category": self.category,
            "detector": self.detector,
            "score": round(float(self.score), 4),
        }
        if self.action is not None:
            d["action"] = self.action
        if self.evidence is not None:
            d["evidence"] = self.evidence
        if self.span is not None:
            d["span"] = [int(self.span[0]), int(self.span[1])]
        if self.description:
            d["description"] = self.description
        if self.words is not None:
            d["words"] = list(self.words)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Hit":
        span = d.get("span")
        words = d.get("words")
        return cls(
            rule=d["rule"],
            category=d.get("category"),
            detector=d.get("detector", "keyword"),
            score=float(d.get("score", 0.0)),
            action=d.get("action"),
            evidence=d.get("evidence"),
            span=(int(span[0]), int(span[1])) if span is not None else None,
            description=d.get("description", "") or "",
            words=tuple(words) if words is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """allow / review / reject with the reasons that led there.

    ``forced_by`` names the rule whose action forced the verdict (a reject-action rule, or an
    allow-action rule from a caller), None when the verdict comes from the score thresholds."""

    verdict: str
    categories: tuple[str, ...] = ()
    score: float = 0.0
    reasons: tuple[Hit, ...] = ()
    ruleset_version: str | None = None
    model_version: str | None = None
    forced_by: str | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "categories": list(self.categories),
            "score": round(float(self.score), 4),
            "reasons": [h.to_dict() for h in self.reasons],
            "ruleset_version": self.ruleset_version,
            "model_version": self.model_version,
            "forced_by": self.forced_by,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        return cls(
            verdict=d["verdict"],
            categories=tuple(d.get("categories", ())),
            score=float(d.get("score", 0.0)),
            reasons=tuple(Hit.from_dict(r) for r in d.get("reasons", ())),
            ruleset_version=d.get("ruleset_version"),
            model_version=d.get("model_version"),
            forced_by=d.get("forced_by"),
        )


def hits_by_rule(hits: Iterable[Hit]) -> dict[str, Hit]:
    out: dict[str, Hit] = {}
    for h in hits:
        out.setdefault(h.rule, h)
    return out
