"""Hit and Verdict: the result types every detector and caller shares.

``Verdict.to_dict()`` is the Verdict JSON of ../shared/DESIGN.md (API, CLI, audit output)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    #: classifier only: the thresholds its probability was compared against, as (key, value)
    #: pairs (``p``, ``report``, ``review``, ``reject``, ``reject_with_channel``, ``channel``,
    #: ``lang``, ``units`` / ``min_content_reject`` when a reject was held back): a tuple so a
    #: Hit stays hashable; ``to_dict`` gives it as the reason's ``threshold`` object
    threshold: tuple[tuple[str, Any], ...] | None = None

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
        if self.threshold is not None:
            d["threshold"] = dict(self.threshold)
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
            threshold=tuple(th.items()) if (th := d.get("threshold")) is not None else None,
        )


#: what decided a verdict (``Explanation.decided``), in the order the policy asks
DECISIONS = {
    "rule_reject": "a reason whose action is reject forces reject, whatever the total",
    "rule_allow": "a caller's reason whose action is allow forces allow",
    "score_reject": "the total reached the reject threshold",
    "context_review": "the total reached the reject threshold only with the scores of categories under "
                      "warning context, which never reject on their total alone: review",
    "score_review": "the total reached the review threshold",
    "rule_review": "a reason whose action is review forces at least review",
    "below_review": "the total is below the review threshold and no reason forces a verdict",
}
#: why a reason's points differ from its own score (``Explanation.notes``)
NOTES = {
    "repeat": "its rule already counted: a rule counts once per message",
    "informational": "informational category: adds nothing (and forces nothing unless it comes from the "
                     "account's own list)",
    "floor": "a category's sum is floored at 0: this negative score counts only as far as the "
             "category's positive scores go",
    "context": "notice context: adds nothing itself, demotes reject actions to review",
    "offset": "notice context: its score offsets each category without a context rule of its own",
    "override": "score or action set by overrides in policy.yaml",
    "demoted": "action demoted one step by warning context",
}


class Explanation(NamedTuple):
    """How a Verdict's score and decision were made, recorded by ``Policy.decide`` while it
    decides (so it cannot drift from the decision) and turned into JSON only by ``to_dict``
    (a NamedTuple, like Hit: built on every check, so it must cost next to nothing).

    ``points[i]`` is what ``reasons[i]`` adds to the total after everything the policy does to
    it (classifier weight, a rule counted once, informational categories, a category floored at
    0, a notice context's offset): the points sum to the Verdict's score. ``decided`` is a key
    of ``DECISIONS``; ``by`` the index of the reason that forced it (``rule_*``), else None."""

    points: tuple[float, ...]
    decided: str
    by: int | None = None
    review_at: float = 5.0
    reject_at: float = 10.0
    weight: float = 5.0
    #: the part of the total from categories no warning context speaks of (None: all of it)
    uncontested: float | None = None
    #: (reason index, NOTES keys) for the reasons whose points need a word
    notes: tuple[tuple[int, tuple[str, ...]], ...] = ()

    def alone(self, score: float) -> str:
        """The verdict the total alone would give."""
        unc = score if self.uncontested is None else self.uncontested
        if score >= self.reject_at and unc >= self.reject_at:
            return "reject"
        return "review" if score >= self.review_at else "allow"

    def to_dict(self, v: "Verdict") -> dict:
        reasons = v.reasons
        score = round(float(v.score), 4)
        points = _settled(self.points[:len(reasons)], score)
        notes = dict(self.notes) if self.notes else {}
        weight = self.weight
        wtext = None
        rows = []
        for i, (h, pts) in enumerate(zip(reasons, points)):
            if h.detector == "classifier":
                if wtext is None:
                    wtext = _num(weight)
                row: dict[str, Any] = {"reason": i, "rule": h.rule, "category": h.category,
                                       "base": round(weight * h.score, 4), "points": pts,
                                       "formula": f"{wtext} × {_num(h.score)}"}
            else:
                row = {"reason": i, "rule": h.rule, "category": h.category, "base": round(float(h.score), 4),
                       "points": pts}
            if notes:
                n = notes.get(i)
                if n:
                    row["notes"] = list(n)
            rows.append(row)
        decision: dict[str, Any] = {"verdict": v.verdict, "by": self.decided}
        forcing = reasons[self.by] if self.by is not None and self.by < len(reasons) else None
        if forcing is not None:
            decision.update(reason=self.by, rule=forcing.rule, action=forcing.action)
            if forcing.threshold is not None:
                decision["threshold"] = dict(forcing.threshold)
        if self.uncontested is not None and round(self.uncontested, 4) != score:
            decision["uncontested"] = round(self.uncontested, 4)
        decision["score_alone"] = self.alone(score)
        decision["text"] = self._sentence(v, forcing, notes.get(self.by, ()) if forcing else ())
        return {"score": score, "thresholds": {"review": self.review_at, "reject": self.reject_at},
                "classifier_weight": self.weight, "contributions": rows, "decision": decision}

    def _sentence(self, v: "Verdict", h: Hit | None, notes) -> str:
        total, review, reject = _num(v.score), _num(self.review_at), _num(self.reject_at)
        d = self.decided
        if d == "rule_reject" and h is not None:
            alone = self.alone(v.score)
            return (f"reject: {h.rule} {_why(h, notes)}, which forces reject whatever the total "
                    f"(total {total}: alone it would {alone})")
        if d == "rule_allow" and h is not None:
            return f"allow: {h.rule} has action allow, which forces allow (total {total})"
        if d == "score_reject":
            return f"reject: total {total} >= reject threshold {reject}"
        if d == "context_review":
            unc = _num(self.uncontested if self.uncontested is not None else v.score)
            return (f"review: total {total} >= reject threshold {reject}, but only {unc} of it comes from "
                    f"categories without warning context; a warning never rejects on its total alone")
        if d == "score_review":
            return f"review: total {total} >= review threshold {review} (reject at {reject})"
        if d == "rule_review" and h is not None:
            why = _why(h, notes)
            why += " forces review instead" if why.endswith(", so it") else ", which forces at least review"
            return f"review: {h.rule} {why} (total {total} < review threshold {review})"
        return f"{v.verdict}: total {total} < review threshold {review} and no reason forces a verdict"

    @classmethod
    def from_dict(cls, d: dict) -> "Explanation":
        rows = d.get("contributions") or ()
        th = d.get("thresholds") or {}
        dec = d.get("decision") or {}
        return cls(
            points=tuple(float(r.get("points", 0.0)) for r in rows),
            decided=str(dec.get("by", "")),
            by=dec.get("reason"),
            review_at=float(th.get("review", 5.0)),
            reject_at=float(th.get("reject", 10.0)),
            weight=float(d.get("classifier_weight", 5.0)),
            uncontested=float(dec["uncontested"]) if dec.get("uncontested") is not None else None,
            notes=tuple((int(r["reason"]), tuple(r["notes"])) for r in rows if r.get("notes")),
        )


def _num(x: float) -> str:
    """A score for a sentence: 10, 4.85, 0.9731 (at most four significant decimals)."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _why(h: Hit, notes) -> str:
    """Why a reason forces what it forces, in a few words."""
    if "override" in notes:
        how = f"has action {h.action} (set by overrides in policy.yaml)"
    else:
        how = _why_action(h)
    if "demoted" in notes:
        how += " (demoted one step by warning context)"
    return how


def _why_action(h: Hit) -> str:
    th = dict(h.threshold) if h.threshold is not None else None
    if h.detector == "classifier" and th is not None:
        p = _num(h.score)
        lang = f" ({th['lang']} thresholds)" if th.get("lang") else ""
        # the fitted decision (policy.yaml prohibited_head.fitted) or else the aggregate head
        judge = ""
        if th.get("prohibited") is not None:
            only = "only " if th.get("confirm") is not None or th.get("confirm_review") is not None else ""
            judge = (f"the fitted decision (any prohibited category {_num(th['prohibited'])} weighed with the "
                     f"other signals) has {only}{_num(th['decision'])}" if th.get("decision") is not None else
                     f"the aggregate head (any prohibited category) has {only}{_num(th['prohibited'])}")
        if th.get("confirm_review") is not None and judge:  # never forcing: held back from review
            return f"has probability {p}, but {judge} < the {_num(th['confirm_review'])} a forced review needs, so it only scores"
        if th.get("confirm") is not None and th.get("prohibited") is not None:
            reached = f"its reject threshold {_num(th['reject'])}{lang}" if th.get("reject") is not None \
                and h.score >= th["reject"] else f"its reject_with_channel threshold{lang}"
            return f"has probability {p} >= {reached}, but {judge} < its confirm threshold {_num(th['confirm'])}, so it"
        if th.get("prohibited") is not None:
            reached = (f"the most likely prohibited category's minimum {_num(th['min_category'])}, and "
                       f"{judge} >= its reject threshold {_num(th['prohibited_reject'])}{lang}")
        elif th.get("reject") is not None and h.score >= th["reject"]:
            reached = f"its reject threshold {_num(th['reject'])}{lang}"
        elif th.get("channel"):
            reached = (f"its reject_with_channel threshold {_num(th.get('reject_with_channel') or 0)}{lang} "
                       f"with a way to act ({th['channel']})")
        else:
            reached = None
        if h.action == "reject" and reached:
            if th.get("reject_in_context") is not None and h.score >= th["reject_in_context"]:
                return (f"has probability {p} >= {reached}, and >= its reject_in_context threshold "
                        f"{_num(th['reject_in_context'])}{lang}, at which warning context does not demote it")
            if th.get("short_reject") is not None:
                return (f"has probability {p} >= {reached}, and >= its short_reject threshold "
                        f"{_num(th['short_reject'])}{lang}, at which a message of only {th.get('units')} of the "
                        f"{th['min_content_reject']} content units may be rejected")
            return f"has probability {p} >= {reached}"
        if "min_content_reject" in th and reached:
            return (f"has probability {p} >= {reached}, but the message has only {th.get('units')} of the "
                    f"{th['min_content_reject']} content units the classifier needs to reject alone, so it")
        if h.action == "review" and th.get("review") is not None and h.score >= th["review"]:
            return f"has probability {p} >= its review threshold {_num(th['review'])}{lang}"
    return f"has action {h.action}"


def _settled(points: tuple[float, ...], score: float) -> list[float]:
    """The points rounded like the score (4 decimals), the rounding residue (if any) moved onto
    the largest one, so that they add up to the score as printed."""
    out = [round(p, 4) + 0.0 for p in points]  # + 0.0: no -0.0
    if out and round(sum(out), 4) != score:
        i = max(range(len(out)), key=lambda j: abs(out[j]))
        out[i] = round(out[i] + score - sum(out), 4) + 0.0
    return out


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
    #: how the score and the verdict were made (Policy.decide); derived, so not compared
    explanation: Explanation | None = field(default=None, compare=False)

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    @property
    def why(self) -> str:
        """The decision in one sentence ("allow: total 3 < review threshold 5 and no reason forces
        a verdict"), the explanation's ``decision.text``; "" for a verdict without one."""
        ex = self.explanation
        if ex is None:
            return ""
        by = ex.by if ex.by is not None and ex.by < len(self.reasons) else None
        return ex._sentence(self, self.reasons[by] if by is not None else None,
                            dict(ex.notes).get(by, ()) if by is not None else ())

    def to_dict(self, explain: bool = True) -> dict:
        """The Verdict JSON; ``explain=False`` leaves the explanation out (and does not build it)."""
        d = {
            "verdict": self.verdict,
            "categories": list(self.categories),
            "score": round(float(self.score), 4),
            "reasons": [h.to_dict() for h in self.reasons],
            "ruleset_version": self.ruleset_version,
            "model_version": self.model_version,
            "forced_by": self.forced_by,
            "subcategories": list(self.subcategories),
        }
        if explain and self.explanation is not None:
            d["explanation"] = self.explanation.to_dict(self)
        return d

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
            explanation=Explanation.from_dict(ex) if (ex := d.get("explanation")) else None,
        )


def hits_by_rule(hits: Iterable[Hit]) -> dict[str, Hit]:
    out: dict[str, Hit] = {}
    for h in hits:
        out.setdefault(h.rule, h)
    return out
