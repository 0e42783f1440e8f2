"""Hit and Verdict: the result types every detector and caller shares.

``Verdict.to_dict()`` is the Verdict JSON of ../shared/DESIGN.md (API, CLI, audit output)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

VERDICTS = ("allow", "review", "reject")
ACTIONS = (None, "review", "reject", "allow", "context")  # context: rules/context.yaml notice wording
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
    #: the scenario within the category, "<category>.<name>" (categories.yaml), or None
    subcategory: str | None = None
    #: a composite rule's parts: (group, evidence, (start, end)) each, in the original text
    parts: tuple[tuple[str, str, tuple[int, int]], ...] | None = None

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
        if self.subcategory is not None:
            d["subcategory"] = self.subcategory
        if self.parts is not None:
            d["parts"] = [{"group": g, "evidence": ev, "span": [int(sp[0]), int(sp[1])]} for g, ev, sp in self.parts]
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
            subcategory=d.get("subcategory"),
            parts=tuple((p["group"], p["evidence"], (int(p["span"][0]), int(p["span"][1])))
                        for p in parts) if (parts := d.get("parts")) is not None else None,
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
    #: scenarios named by the hits that decided it ("fraud.impersonation_authority"), first first
    subcategories: tuple[str, ...] = ()

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
            "subcategories": list(self.subcategories),
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
            subcategories=tuple(d.get("subcategories", ())),
        )


def hits_by_rule(hits: Iterable[Hit]) -> dict[str, Hit]:
    out: dict[str, Hit] = {}
    for h in hits:
        out.setdefault(h.rule, h)
    return out
