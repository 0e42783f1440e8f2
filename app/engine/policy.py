"""rules/policy.yaml -> Policy: hits become allow / review / reject.

How a verdict is decided (rules/README.md explains it for operators):

1. Per-rule overrides (``overrides: {RULE_ID: {score, action}}``) and ``disabled`` rule ids are
   applied to every hit first, so an operator can tune a rule without editing a lexicon.
2. Each hit contributes: keyword/pattern/template/account hits their ``score``, classifier
   hits ``classifier.weight * probability``. A rule counts once per message even if it fired
   several times (every firing is a reason).
3. Contributions are summed per category; a category's sum is floored at 0, so a negative
   (context) score offsets only its own category: an anti-fraud warning's wording lowers the
   fraud score, it never whitewashes gambling. The total is the sum of the positive category
   sums plus the contributions of hits without a category (patterns, TPL_, ACCT_).
   Hits in an informational category (``informational`` plus every category whose
   ``default_action`` in categories.yaml is ``allow``, i.e. marketing) add nothing to the total
   and force nothing: the category is listed, the verdict is untouched.
4. The verdict: a hit with action ``reject`` forces reject (``forced_by`` names the first);
   else a caller's hit with action ``allow`` forces allow; else total >= ``thresholds.reject``
   rejects; else total >= ``thresholds.review`` or any hit with action ``review`` gives review;
   else allow.
5. ``categories`` lists the categories with a positive sum or a forcing hit (reject/review
   action), largest sum first (informational ones last); ``subcategories`` the scenarios
   (``fraud.impersonation_authority``) named by the scoring or forcing hits of those categories.
6. ``Verdict.explanation`` (types.Explanation) records, as the steps above run, what each reason
   adds to the total (its points: weight x probability for the classifier, 0 for a repeat of a
   rule or an informational category, a negative score cut where its category is floored at 0, a
   notice context's offset on the context reason that set it), so the points add up to the
   score; which step decided the verdict (``rule_reject``, ``rule_allow``, ``score_reject``,
   ``context_review``, ``score_review``, ``rule_review``, ``below_review``) and the reason that
   forced it; and the thresholds compared (a classifier hit carries its own in
   ``Hit.threshold``). It costs a list append per hit; the JSON is made only by ``to_dict``.

Warning context: a hit with a negative score in a category (a context rule: 谨防诈骗, 反邪教,
"never share this code") marks the message as warning or reporting about that category. Then
every other hit of that category is demoted one step: a ``reject`` action becomes ``review``
(a forced keyword rule in a warning goes to a person, not to the bin) and a classifier hit's
``review`` action is dropped (its score still counts, offset by the context score). Account
block lists (``KW_ACCOUNT_*``) and hits without a category are never demoted. A demoted hit says
so in its description. A category under warning context never rejects on its score total
alone: when the total reaches ``thresholds.reject`` only with the scores of such categories, the
verdict is review.

Notice context (rules/context.yaml, hits with action ``context``): wording that warns against,
reports on or moderates prohibited content of any kind (警方提醒, 均属违法行为, 感谢您的举报,
"has been removed"). It demotes the ``reject`` hits of every category to ``review`` (never a
classifier's review: only a category's own context clears that) and its score (the most negative
one present) offsets the positive sum of each category that has no context rule of its own (the
two never stack). It adds nothing to the total. Quoted words inside a warning are mentions, not
uses: app/engine/mention.py makes them score and force nothing before the policy sees them.

Classifier section: for each label, a probability p below ``report`` makes no hit; p >=
``report`` makes a ``CLF_<LABEL>`` hit with score p (contribution ``weight * p``); p >= ``review``
gives the hit action review (and the explaining words); p >= ``reject`` action reject. The
thresholds come from ``classifier.default`` overridden per category in
``classifier.categories``; ``reject: null`` means the classifier never forces reject there.
``classifier.min_content`` bounds the classifier on texts with little to go on: a message with
``u`` content units (CJK characters + Latin words, links and numbers not counted:
``features.content_units``) below ``min_content`` has every probability multiplied by
``u / min_content`` before the thresholds (a bare link or phone number: 0, no classifier hit).
``classifier.min_content_reject``: the classifier alone never rejects a message with fewer content
units than this (a fragment of a few words is too little to refuse a message on); such a hit
forces review instead and says so.
``classifier.languages.<en|zh>.min_content_reject`` replaces ``min_content_reject`` for messages
of that language (an English word carries more than a Chinese character; the fitted decision's
``short`` feature keeps the global value it was fitted with).
``classifier.short_reject`` (null by default; per language under ``languages.<en|zh>``): a
category head at this probability or more rejects a message under ``min_content_reject`` units
all the same (a short English insult is whole; the hit says so). The aggregate head's reject is
never lifted this way.
``classifier.languages.<en|zh>.categories`` override a category's thresholds for messages of
that language (``Content.lang``: Latin words outnumber CJK characters -> en).
A category's ``reject_with_channel`` (null by default) is the probability from which the
classifier rejects when the message also gives its reader a way to act: a hit of one of the
pattern rules listed in ``classifier.channel_rules`` (a link, a phone number, a WeChat id).
A category's ``reject_in_context`` (null by default, not below ``reject``) is the probability
from which the classifier's reject of that category stands in a message with warning or notice
context: a scam script that borrows an anti-fraud warning's words is still refused when the head
is that sure of it (below it, the context demotes the reject to review as above).
``classifier.prohibited_head`` (``{reject, min_category, exclude, confirm}``, per language under
``classifier.languages.<lang>.prohibited_head``): a model that carries the aggregate head
(``app.engine.classifier.AGGREGATE_LABEL``: any prohibited category against none, trained on all of them
pooled) gives its probability with the others. When it reaches ``reject`` and no classifier hit
rejects already, the most likely prohibited category, if its own probability is at least
``min_category``, rejects (review below ``min_content_reject`` units): a message that is clearly
prohibited but spread over two neighbouring categories (abuse and hate, rumour and politics) is
not let through because neither head alone is sure; categories listed in ``exclude`` are never
the one it rejects with. ``confirm``: a category head's own reject (``reject`` or
``reject_with_channel``) needs the aggregate head's probability to be at least this, else the hit
is review: a category head sure of a message the model as a whole does not find prohibited (a news
line on theft scored as hate) sends it to a person. The aggregate label itself never makes a hit.
``prohibited_head.fitted`` (``{bias, weights: {feature: weight}}``, written by ``smsguard
fit-decision``): ``reject`` and ``confirm`` then compare the fitted decision's score
(``app.engine.decision``: the aggregate head, the category heads, language, length and the
keyword, context and channel evidence weighed together) instead of the aggregate head alone.
``confirm_review``: a category head's forced review (not a reject held back by ``confirm``) needs
that score (or the aggregate head's probability) at this value or more, else the hit only scores.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from app.engine.classifier import AGGREGATE_LABEL
from app.engine.decision import BASE_FEATURES, FittedDecision, feature_values
from app.engine.types import Explanation, Hit, Verdict

__all__ = ["Policy", "ClassifierThresholds", "AggregateThresholds"]

_SKIP_LABELS = ("normal", "none", "ok", "")


@dataclass(frozen=True)
class ClassifierThresholds:
    report: float = 0.5
    review: float | None = 0.8
    reject: float | None = 0.97
    #: p at which the classifier rejects when the message also offers a way to act on it (a
    #: hit of ``Policy.channel_rules``: a link, a phone number, a WeChat id); None: never
    reject_with_channel: float | None = None
    #: p from which the classifier's reject of this category stands in a message with warning or
    #: notice context (which otherwise demotes it to review); None: context always demotes it
    reject_in_context: float | None = None


@dataclass(frozen=True)
class AggregateThresholds:
    """``classifier.prohibited_head``: the aggregate head rejects from ``reject`` (None: never)
    with the most likely prohibited category, when that category's probability >= ``min_category``
    and it is not one of ``exclude``; a category head's own reject needs the aggregate head at
    ``confirm`` or more (None: no such check), else it is review."""
    reject: float | None = None
    min_category: float = 0.4
    exclude: frozenset[str] = frozenset()
    confirm: float | None = None
    #: a category head's forced review needs at least this (None: no such check), else it only scores
    confirm_review: float | None = None
    #: when set, ``reject`` and ``confirm`` compare this score instead of the aggregate head's
    fitted: FittedDecision | None = None


@dataclass(frozen=True)
class Policy:
    review_at: float = 5.0
    reject_at: float = 10.0
    overrides: dict[str, dict] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    informational: frozenset[str] = frozenset({"marketing"})
    classifier_weight: float = 5.0
    classifier_default: ClassifierThresholds = ClassifierThresholds()
    classifier_categories: dict[str, ClassifierThresholds] = field(default_factory=dict)
    classifier_enabled: bool = True
    min_content: int = 0
    min_content_reject: int = 0
    #: per message language, its own ``min_content_reject`` (English words carry more than characters)
    min_content_reject_languages: dict[str, int] = field(default_factory=dict)
    #: a category head at this probability or more rejects a message under ``min_content_reject``
    #: units all the same (None: never); per language in ``short_reject_languages``
    short_reject: float | None = None
    short_reject_languages: dict[str, float | None] = field(default_factory=dict)
    #: per message language ("en", "zh": features.Content.lang), category -> thresholds
    classifier_languages: dict[str, dict[str, ClassifierThresholds]] = field(default_factory=dict)
    #: pattern rules that give the reader a way to act (classifier ``reject_with_channel``)
    channel_rules: frozenset[str] = frozenset()
    #: the aggregate head's thresholds, and per message language
    classifier_aggregate: AggregateThresholds = AggregateThresholds()
    classifier_aggregate_languages: dict[str, AggregateThresholds] = field(default_factory=dict)
    #: (labels, language) -> the category heads ``classifier_hits`` reads, with their thresholds
    #: (filled on first use; a policy is never changed after it is made)
    _heads: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------------------ load
    @classmethod
    def from_config(cls, doc: Any, categories: dict | None = None,
                    known_rules: Iterable[str] = ()) -> tuple["Policy", list[str]]:
        """Parse rules/policy.yaml. Returns (policy, warnings); raises ValueError."""
        warnings: list[str] = []
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ValueError("expected a mapping")
        # presend: and enforcement: belong to the pre-send and enforcement services, which validate them
        _keys(doc, {"thresholds", "overrides", "disabled", "informational", "classifier",
                    "presend", "enforcement"}, "")
        th = doc.get("thresholds") or {}
        if not isinstance(th, dict):
            raise ValueError("thresholds: expected a mapping with review and reject")
        _keys(th, {"review", "reject"}, "thresholds")
        review_at = _num(th.get("review", 5.0), "thresholds.review")
        reject_at = _num(th.get("reject", 10.0), "thresholds.reject")
        if not review_at < reject_at:
            raise ValueError("thresholds: review must be lower than reject")
        known = set(known_rules)
        ov = doc.get("overrides") or {}
        if not isinstance(ov, dict):
            raise ValueError("overrides: expected a mapping RULE_ID -> {score, action}")
        overrides: dict[str, dict] = {}
        for rid, o in ov.items():
            where = f"overrides.{rid}"
            if not isinstance(o, dict) or not o:
                raise ValueError(f"{where}: expected a mapping with score and/or action")
            _keys(o, {"score", "action"}, where)
            out: dict[str, Any] = {}
            if "score" in o:
                out["score"] = _num(o["score"], f"{where}.score")
            if "action" in o:
                if o["action"] not in ("reject", "review", "score"):
                    raise ValueError(f"{where}.action: must be reject, review or score")
                out["action"] = None if o["action"] == "score" else o["action"]
            if str(rid).startswith(("KW_", "PAT_")) and known and rid not in known and not str(rid).startswith("KW_ACCOUNT_"):
                warnings.append(f"{where}: no such rule (override ignored until it exists)")
            overrides[str(rid)] = out
        disabled = doc.get("disabled") or []
        if not isinstance(disabled, list) or not all(isinstance(x, str) for x in disabled):
            raise ValueError("disabled: expected a list of rule ids")
        for rid in disabled:
            if rid.startswith(("KW_", "PAT_")) and known and rid not in known:
                warnings.append(f"disabled: {rid}: no such rule")
        info = doc.get("informational")
        if info is None:
            info = []
        if not isinstance(info, list) or not all(isinstance(x, str) for x in info):
            raise ValueError("informational: expected a list of category ids")
        informational = set(info)
        if categories:
            bad = [c for c in informational if c not in categories]
            if bad:
                raise ValueError(f"informational: unknown categories {bad}")
            informational |= {c for c, cat in categories.items() if getattr(cat, "default_action", None) == "allow"}
        elif not info:
            informational = {"marketing"}
        clf = doc.get("classifier") or {}
        if not isinstance(clf, dict):
            raise ValueError("classifier: expected a mapping")
        _keys(clf, {"enabled", "weight", "default", "categories", "min_content", "min_content_reject", "short_reject",
                    "languages", "channel_rules", "prohibited_head"}, "classifier")
        aggregate = _aggregate(clf.get("prohibited_head"), AggregateThresholds(), "classifier.prohibited_head",
                               categories)
        channel_rules = clf.get("channel_rules") or []
        if not isinstance(channel_rules, list) or not all(isinstance(r, str) and r.startswith("PAT_")
                                                          for r in channel_rules):
            raise ValueError("classifier.channel_rules: expected a list of pattern rule ids (PAT_...)")
        weight = _num(clf.get("weight", 5.0), "classifier.weight")
        min_content = _units(clf.get("min_content", 0), "classifier.min_content")
        min_content_reject = _units(clf.get("min_content_reject", 0), "classifier.min_content_reject")
        short_reject = _prob(clf.get("short_reject"), "classifier.short_reject")
        enabled = clf.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError("classifier.enabled: must be true or false")
        default = _thresholds(clf.get("default") or {}, ClassifierThresholds(), "classifier.default")
        per: dict[str, ClassifierThresholds] = {}
        cats = clf.get("categories") or {}
        if not isinstance(cats, dict):
            raise ValueError("classifier.categories: expected a mapping category -> thresholds")
        for c, t in cats.items():
            if categories and c not in categories:
                raise ValueError(f"classifier.categories.{c}: not a category of categories.yaml")
            per[str(c)] = _thresholds(t or {}, default, f"classifier.categories.{c}")
        langs = clf.get("languages") or {}
        if not isinstance(langs, dict):
            raise ValueError("classifier.languages: expected a mapping language -> {categories: ...}")
        per_lang: dict[str, dict[str, ClassifierThresholds]] = {}
        mcr_lang: dict[str, int] = {}
        short_lang: dict[str, float | None] = {}
        aggregate_lang: dict[str, AggregateThresholds] = {}
        for lang, spec in langs.items():
            where = f"classifier.languages.{lang}"
            if lang not in ("en", "zh"):
                raise ValueError(f"{where}: language must be en or zh")
            if not isinstance(spec, dict):
                raise ValueError(f"{where}: expected a mapping with categories")
            _keys(spec, {"categories", "prohibited_head", "min_content_reject", "short_reject"}, where)
            if "min_content_reject" in spec:
                mcr_lang[lang] = _units(spec["min_content_reject"], f"{where}.min_content_reject")
            if "short_reject" in spec:
                short_lang[lang] = _prob(spec["short_reject"], f"{where}.short_reject")
            if "prohibited_head" in spec:
                aggregate_lang[lang] = _aggregate(spec["prohibited_head"], aggregate, f"{where}.prohibited_head",
                                                  categories)
            lc = spec.get("categories") or {}
            if not isinstance(lc, dict):
                raise ValueError(f"{where}.categories: expected a mapping category -> thresholds")
            per_lang[lang] = {}
            for c, t in lc.items():
                if categories and c not in categories:
                    raise ValueError(f"{where}.categories.{c}: not a category of categories.yaml")
                per_lang[lang][str(c)] = _thresholds(t or {}, per.get(str(c), default), f"{where}.categories.{c}")
        return cls(
            classifier_languages=per_lang,
            review_at=review_at, reject_at=reject_at, overrides=overrides,
            disabled=frozenset(disabled), informational=frozenset(informational),
            classifier_weight=weight, classifier_default=default,
            classifier_categories=per, classifier_enabled=enabled, min_content=min_content,
            min_content_reject=min_content_reject, min_content_reject_languages=mcr_lang,
            short_reject=short_reject, short_reject_languages=short_lang,
            channel_rules=frozenset(channel_rules),
            classifier_aggregate=aggregate, classifier_aggregate_languages=aggregate_lang,
        ), warnings

    # ------------------------------------------------------------------------ classifier
    def _heads_for(self, labels: Sequence[str], lang: str | None) -> tuple:
        """(index, label, thresholds, whether the language has its own line for it) of each
        category head among ``labels`` (not a skipped label, not the aggregate head)."""
        key = (tuple(labels), lang)
        heads = self._heads.get(key)
        if heads is None:
            own = self.classifier_languages.get(lang, ()) if lang is not None else ()
            heads = self._heads[key] = tuple(
                (i, label, self.thresholds_for(label, lang), label in own) for i, label in enumerate(labels)
                if label not in _SKIP_LABELS and label != AGGREGATE_LABEL)
        return heads

    def thresholds_for(self, category: str, lang: str | None = None) -> ClassifierThresholds:
        if lang is not None and self.classifier_languages:
            t = self.classifier_languages.get(lang, {}).get(category)
            if t is not None:
                return t
        return self.classifier_categories.get(category, self.classifier_default)

    def classifier_hits(self, labels: Sequence[str], probs: Sequence[float],
                        explain: Callable[[str], list[str]] | None = None,
                        content=None, evidence: Iterable[Hit] = ()) -> list[Hit]:
        """CLF_<LABEL> hits from one message's probabilities (see module doc); ``content``: the
        message's ``features.Content`` (its units bound the classifier, its language picks the
        ``languages`` thresholds), or a plain number of units, or None (not bounded);
        ``evidence``: the message's keyword and pattern hits (a ``channel_rules`` hit among them
        lets ``reject_with_channel`` apply)."""
        if not self.classifier_enabled:
            return []
        if hasattr(probs, "tolist"):  # a numpy row: Python floats are cheaper to compare and multiply
            probs = probs.tolist()
        hits: list[Hit] = []
        note = ""
        lang = getattr(content, "lang", None)
        units = getattr(content, "units", content)
        channel = None  # the first channel rule among the evidence, looked up on demand
        factor = self.content_factor(units)
        if factor <= 0.0:
            return hits
        if factor < 1.0:
            note = f" (bounded x{factor:.2f}: {units} of {self.min_content} content units)"
        # the aggregate head's probability (a model that has one: its last label)
        p_any = float(probs[len(labels) - 1]) * factor if labels and labels[-1] == AGGREGATE_LABEL else None
        if p_any is not None and not math.isfinite(p_any):
            p_any = None
        agg = self.aggregate_for(lang) if p_any is not None else None  # models without the head: no lookup
        decision = None  # the fitted decision's score, when the policy has one
        if agg is not None and agg.fitted is not None:
            decision = agg.fitted.score(self.decision_features(labels, probs, lang, units, evidence, factor))
        judged = p_any if decision is None else decision  # what confirm, confirm_review and reject compare
        for i, label, t, own_lang in self._heads_for(labels, lang):
            p = probs[i] * factor
            if not p >= t.report or not math.isfinite(p):  # below report (or NaN), or infinite
                continue
            p = float(p)
            action = None
            words = None
            if t.review is not None and p >= t.review:
                action = "review"
                if explain is not None:
                    try:
                        words = tuple(explain(label))
                    except Exception:  # an explanation is a courtesy, never a failure
                        words = None
            desc = f"classifier: {label}{note}"
            # the thresholds compared (the Verdict's explanation shows them)
            th: list[tuple[str, Any]] = [("report", t.report), ("review", t.review), ("reject", t.reject)]
            if t.reject_with_channel is not None:
                th.append(("reject_with_channel", t.reject_with_channel))
            if t.reject_in_context is not None:
                th.append(("reject_in_context", t.reject_in_context))
            if own_lang:
                th.append(("lang", lang))
            rejects = t.reject is not None and p >= t.reject
            if not rejects and t.reject_with_channel is not None and p >= t.reject_with_channel:
                if channel is None:
                    channel = next((h.rule for h in evidence if h.rule in self.channel_rules), "")
                if channel:
                    rejects = True
                    desc += f" (with a way to act: {channel})"
                    th.append(("channel", channel))
            if action == "review" and not rejects and agg is not None and agg.confirm_review is not None \
                    and judged < agg.confirm_review:
                action = None
                desc += (f" (score only, no review: {'fitted decision' if decision is not None else 'any prohibited category'}"
                         f" {judged:.2f} < {agg.confirm_review})")
                th += _judged(decision, p_any) + [("confirm_review", agg.confirm_review)]
            if rejects and agg is not None and agg.confirm is not None and judged < agg.confirm:
                rejects = False
                action = "review"
                if decision is None:
                    desc += f" (review, not reject: any prohibited category {p_any:.2f} < {agg.confirm})"
                else:
                    desc += (f" (review, not reject: fitted decision {decision:.2f} < {agg.confirm};"
                             f" any prohibited category {p_any:.2f})")
                th += _judged(decision, p_any) + [("confirm", agg.confirm)]
            if rejects:
                action = "reject"
                mcr = self.min_content_reject_for(lang)
                if units is not None and units < mcr:  # a fragment: review, unless the head is that sure
                    th += [("units", int(units)), ("min_content_reject", mcr)]
                    short = self.short_reject_for(lang)
                    if short is not None and p >= short:
                        desc += f" (only {units} of {mcr} content units, but >= {short})"
                        th.append(("short_reject", short))
                    else:
                        action = "review"
                        desc += f" (review, not reject: {units} of {mcr} content units)"
            hits.append(Hit(
                rule=f"CLF_{label.upper()}", category=label, detector="classifier",
                score=round(p, 4), action=action, description=desc, words=words, threshold=tuple(th),
            ))
        if agg is not None:
            self._aggregate_reject(hits, labels, probs, factor, p_any, agg, lang, units, explain, decision, judged)
        return hits

    def min_content_reject_for(self, lang: str | None) -> int:
        """The content units the classifier needs to reject alone in a message of language ``lang``."""
        return _for_lang(self.min_content_reject_languages, lang, self.min_content_reject)

    def short_reject_for(self, lang: str | None) -> float | None:
        """The probability from which a category head rejects a message under ``min_content_reject``."""
        return _for_lang(self.short_reject_languages, lang, self.short_reject)

    def content_factor(self, units: int | None) -> float:
        """What a message's probabilities are multiplied by: units / ``min_content`` below it, else 1."""
        if units is not None and units < self.min_content:
            return units / self.min_content
        return 1.0

    def decision_features(self, labels: Sequence[str], probs: Sequence[float], lang: str | None,
                          units: int | None, evidence: Iterable[Hit], factor: float | None = None) -> dict[str, float]:
        """The fitted decision's features of one message (``decision.feature_values`` with this
        policy's bound, channel rules, fragment size and informational categories): what the
        engine scores and what ``smsguard fit-decision`` fits on. The model must have the
        aggregate head (its last label)."""
        f = self.content_factor(units) if factor is None else factor
        return feature_values(labels, probs, f, float(probs[len(labels) - 1]) * f,
                              _prohibited_labels(tuple(labels), self.informational), lang, units, evidence,
                              self.channel_rules, self.min_content_reject)

    def replay(self, labels: Sequence[str], probs: Sequence[float] | None, content, evidence: Sequence[Hit]) -> Verdict:
        """The Verdict of one message from its keyword and pattern ``evidence`` and its class
        probabilities (None: no model): what ``Moderator.check_batch`` decides, without the
        classifier's word explanations. Evaluation, comparisons and fitting re-decide stored
        evidence under other policies with it."""
        hits = list(evidence)
        if probs is not None:
            hits += self.classifier_hits(labels, probs, content=content, evidence=evidence)
        return self.decide(hits)

    def aggregate_for(self, lang: str | None) -> AggregateThresholds:
        """The ``prohibited_head`` settings for a message of language ``lang``."""
        return _for_lang(self.classifier_aggregate_languages, lang, self.classifier_aggregate)

    def _aggregate_reject(self, hits: list[Hit], labels: Sequence[str], probs: Sequence[float], factor: float,
                          p_any: float, agg: AggregateThresholds, lang: str | None, units, explain,
                          decision: float | None, judged: float) -> None:
        """``classifier.prohibited_head``: the most likely prohibited category's hit rejects (made
        or replaced in ``hits``) when ``judged`` (the aggregate head, or the fitted ``decision``
        when there is one) reaches its reject threshold and no classifier hit rejects yet."""
        if agg.reject is None or judged < agg.reject or any(h.action == "reject" for h in hits):
            return
        best, best_p = None, -1.0
        for label, p in zip(labels, probs):
            if label in _SKIP_LABELS or label == AGGREGATE_LABEL or label in self.informational:
                continue
            p = float(p) * factor
            if math.isfinite(p) and p > best_p:
                best, best_p = label, p
        if best is None or best_p < agg.min_category or best in agg.exclude:
            return
        at = next((i for i, h in enumerate(hits) if h.category == best), None)
        old = hits[at] if at is not None else None
        t = self.thresholds_for(best, lang)
        th = [kv for kv in (old.threshold or ()) if kv[0] not in ("prohibited", "confirm", "confirm_review", "decision")] \
            if old is not None else [("report", t.report), ("review", t.review), ("reject", t.reject)]
        th += _judged(decision, p_any) + [("prohibited_reject", agg.reject), ("min_category", agg.min_category)]
        if lang is not None and not any(k == "lang" for k, _ in th) and lang in self.classifier_aggregate_languages:
            th.append(("lang", lang))
        desc = (old.description if old is not None else f"classifier: {best}") + (
            f" (any prohibited category {p_any:.2f} >= {agg.reject}: the most likely is {best})" if decision is None
            else f" (fitted decision {decision:.2f} >= {agg.reject}, any prohibited category {p_any:.2f}:"
                 f" the most likely is {best})")
        action = "reject"
        mcr = self.min_content_reject_for(lang)
        if units is not None and units < mcr:
            action = "review"
            desc += f" (review, not reject: {units} of {mcr} content units)"
            th += [("units", int(units)), ("min_content_reject", mcr)]
        words = old.words if old is not None else None
        if words is None and explain is not None:
            try:
                words = tuple(explain(best))
            except Exception:  # an explanation is a courtesy, never a failure
                words = None
        hit = Hit(rule=f"CLF_{best.upper()}", category=best, detector="classifier", score=round(best_p, 4),
                  action=action, description=desc, words=words, threshold=tuple(th))
        if old is not None:
            hits[at] = hit
        else:
            hits.append(hit)

    # ---------------------------------------------------------------------------- decide
    def apply(self, hit: Hit) -> Hit | None:
        """The hit after overrides; None when its rule is disabled."""
        if hit.rule in self.disabled:
            return None
        o = self.overrides.get(hit.rule)
        if o:
            return hit.with_(**o)
        return hit

    def contribution(self, hit: Hit) -> float:
        if hit.category in self.informational:
            return 0.0
        if hit.detector == "classifier":
            return self.classifier_weight * hit.score
        return hit.score

    def decide(self, hits: Iterable[Hit], ruleset_version: str | None = None,
               model_version: str | None = None) -> Verdict:
        reasons: list[Hit] = []
        points: list[float] = []  # per reason: its contribution (settled per category below)
        notes: dict[int, list[str]] | None = None  # per reason: why its points differ from its score
        loose = 0.0  # contributions of hits without a category (patterns, TPL_, ACCT_)
        counted: set[str] = set()
        net: dict[str, float] = {}  # category -> sum of its contributions (negatives included)
        forced: dict[str, None] = {}  # categories of forcing hits (ordered set)
        force_reject = force_allow = None
        by_reject = by_allow = by_review = None  # the index of the reason that forced it
        want_review = False
        overrides = self.overrides
        disabled = self.disabled
        info = self.informational
        weight = self.classifier_weight
        hits = list(hits)
        context = None  # category (or ANY: a context.yaml rule) -> the context rule that demotes hits
        any_offset = 0.0  # the most negative score of a context.yaml hit: offsets every category
        offset_rule = None  # the context rule whose score that is (the explanation credits it)
        for h in hits:
            if h.rule in disabled:
                continue
            if h.action == "context":
                if context is None:
                    context = {}
                context.setdefault(_ANY, h.rule)
                if h.score < any_offset:
                    any_offset, offset_rule = h.score, h.rule
            elif h.score < 0 and h.category is not None:
                if context is None:
                    context = {}
                context.setdefault(h.category, h.rule)
        for h in hits:
            rule = h.rule
            if disabled and rule in disabled:
                continue
            note = None
            if overrides:
                o = overrides.get(rule)
                if o:
                    h = h._replace(**o)
                    note = ["override"]
            if h.action == "context":
                reasons.append(h)  # evidence only: its effect is the demotion and the offset below
                points.append(0.0)
                if notes is None:
                    notes = {}
                notes[len(reasons) - 1] = (note or []) + ["context"]
                continue
            if context is not None and h.action in ("reject", "review") and h.score >= 0:
                d = _demoted(h, context)
                if d is not h:
                    h = d
                    note = (note or []) + ["demoted"]
            reasons.append(h)
            cat = h.category
            # an account's own block / review list forces whatever category its term was filed under
            informational = cat in info and not rule.startswith("KW_ACCOUNT_")
            if rule in counted:
                c = 0.0
                note = (note or []) + ["repeat"]
            else:
                counted.add(rule)
                c = weight * h.score if h.detector == "classifier" else h.score
            points.append(c)
            if note is not None:
                if notes is None:
                    notes = {}
                notes[len(reasons) - 1] = note
            if cat is None:
                loose += c
            else:
                net[cat] = net.get(cat, 0.0) + c
            action = h.action
            if action is not None:
                if action == "allow":
                    if force_allow is None:
                        force_allow, by_allow = rule, len(reasons) - 1
                elif not informational:
                    if action == "reject":
                        if force_reject is None:
                            force_reject, by_reject = rule, len(reasons) - 1
                    elif action == "review":
                        if not want_review:
                            want_review, by_review = True, len(reasons) - 1
                    if cat is not None:
                        forced[cat] = None
        total = loose
        uncontested = loose  # the part of the total from categories no warning context speaks of
        cats: list[tuple[float, int, str]] = []
        settle = None  # (category, how) whose hits' points need settling: informational, floor, offset
        for i, (cat, v) in enumerate(net.items()):
            if cat in info:
                if v > 0:
                    cats.append((0.0, i, cat))
                if settle is None:
                    settle = []
                settle.append((cat, "informational", 0.0))
                continue
            if v > 0 and any_offset and cat not in context:  # offsets never stack with a category's own
                w = max(0.0, v + any_offset)
                if settle is None:
                    settle = []
                settle.append((cat, "offset", w - v))
                v = w
                if v == 0.0 and cat not in forced:
                    continue
            if v > 0:
                total += v
                if context is None or (cat not in context and _ANY not in context):
                    uncontested += v
                cats.append((-v, i, cat))
            else:
                if v < 0:
                    if settle is None:
                        settle = []
                    settle.append((cat, "floor", 0.0))
                if cat in forced:
                    cats.append((0.0, i, cat))
        if settle is not None:
            notes = _settle(reasons, points, notes or {}, settle, offset_rule)
        forced_by = by = None
        if force_reject is not None:
            verdict, forced_by, by, decided = "reject", force_reject, by_reject, "rule_reject"
        elif force_allow is not None:
            verdict, forced_by, by, decided = "allow", force_allow, by_allow, "rule_allow"
        elif total >= self.reject_at and uncontested >= self.reject_at:
            verdict, decided = "reject", "score_reject"
        elif total >= self.review_at:
            verdict, decided = "review", ("context_review" if total >= self.reject_at else "score_review")
        elif want_review:
            verdict, by, decided = "review", by_review, "rule_review"
        else:
            verdict, decided = "allow", "below_review"
        cats.sort()
        categories = tuple(c for _v, _i, c in cats)
        subs: tuple[str, ...] = ()
        if categories:
            found = {h.subcategory: None for h in reasons
                     if h.subcategory is not None and h.category in categories
                     and (h.score > 0 or h.action in ("reject", "review"))}
            if found:  # in the order of the categories, then of the reasons
                subs = tuple(sc for c in categories for sc in found if sc.startswith(c + "."))
        explanation = Explanation(tuple(points), decided, by, self.review_at, self.reject_at, weight,
                                  None if uncontested == total else uncontested,
                                  tuple([(i, tuple(n)) for i, n in notes.items()]) if notes else ())
        return Verdict(verdict, categories, round(total, 4), tuple(reasons),
                       ruleset_version, model_version, forced_by, subs, explanation)


def _judged(decision: float | None, p_any: float) -> list[tuple[str, float]]:
    """A reason's threshold entries for what the prohibited_head compared: the fitted decision's
    score (when the policy has one) and the aggregate head's probability."""
    out = [("decision", round(decision, 4))] if decision is not None else []
    out.append(("prohibited", round(p_any, 4)))
    return out


@functools.lru_cache(maxsize=16)
def _prohibited_labels(labels: tuple[str, ...], informational: frozenset[str]) -> frozenset[str]:
    return frozenset(lab for lab in labels
                     if lab not in _SKIP_LABELS and lab != AGGREGATE_LABEL and lab not in informational)


def _settle(reasons: list[Hit], points: list[float], notes: dict[int, list[str]],
            settle: list[tuple[str, str, float]], offset_rule: str | None = None) -> dict[int, list[str]]:
    """Move the category-level steps of ``decide`` onto the reasons' points (in place), so that
    the points add up to the total: an informational category's reasons get 0; a category whose
    sum is negative is floored at 0 by its negative reasons (in order) counting only as far as its
    positive ones go; a notice context's offset is the points of the context reason whose score
    set it (``offset_rule``: the most negative one, the first of equals). Returns the notes."""
    offset_at = None
    for cat, how, amount in settle:
        idx = [i for i, h in enumerate(reasons) if h.category == cat and h.action != "context"]
        if how == "informational":
            for i in idx:
                if points[i]:
                    points[i] = 0.0
                    notes.setdefault(i, []).append("informational")
        elif how == "floor":
            room = sum(points[i] for i in idx if points[i] > 0)
            for i in idx:
                if points[i] < 0:
                    take = max(points[i], -room)
                    if take != points[i]:
                        points[i] = take
                        notes.setdefault(i, []).append("floor")
                    room += take
        else:  # offset
            if offset_at is None:
                offset_at = next(i for i, h in enumerate(reasons) if h.rule == offset_rule)
                notes.setdefault(offset_at, []).append("offset")
            points[offset_at] += amount
    return notes


_ANY = "*"  # key of ``context`` for a context.yaml rule: it speaks of every category


def _demoted(h: Hit, context: dict[str, str]) -> Hit:
    """``h`` one step down when a context rule of its category, or of context.yaml, fired (see
    the module doc)."""
    if h.category is None or h.rule.startswith("KW_ACCOUNT_") or h.detector not in ("keyword", "pattern", "classifier"):
        return h
    by = context.get(h.category)
    if h.action == "reject":
        if h.detector == "classifier" and h.threshold:
            stands = next((v for k, v in h.threshold if k == "reject_in_context"), None)
            if stands is not None and h.score >= stands:
                return h  # the head is sure enough that the warning wording is the scam's own
        action = "review"
        by = by or context.get(_ANY)
    elif h.detector == "classifier":
        action = None  # only its own category's context: a generic notice word never clears a review
    else:
        return h
    if by is None:
        return h
    return h._replace(action=action, description=f"{h.description} (demoted from {h.action}: warning context {by})")


def _for_lang(per_lang: dict, lang: str | None, default):
    """A setting for a message of language ``lang``: its ``languages.<lang>`` value when set (a
    language may set null explicitly), else the global one."""
    return per_lang[lang] if lang is not None and lang in per_lang else default


def _units(v: Any, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
        raise ValueError(f"{name}: must be a whole number from 0 to 100")
    return v


def _num(v: Any, name: str) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise ValueError(f"{name}: must be a number")
    return float(v)


def _prob(v: Any, name: str) -> float | None:
    if v is None:
        return None
    p = _num(v, name)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: must be a probability between 0 and 1 (or null)")
    return p


def _keys(d: dict, allowed: set[str], where: str) -> None:
    unknown = set(map(str, d)) - allowed
    if unknown:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")


def _aggregate(d: Any, base: AggregateThresholds, where: str, categories: dict | None) -> AggregateThresholds:
    if d is None:
        return base
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping with reject, min_category, exclude and/or confirm")
    _keys(d, {"reject", "min_category", "exclude", "confirm", "confirm_review", "fitted"}, where)
    reject = _prob(d["reject"], f"{where}.reject") if "reject" in d else base.reject
    min_category = _prob(d["min_category"], f"{where}.min_category") if "min_category" in d else base.min_category
    if min_category is None:
        raise ValueError(f"{where}.min_category: must be a probability")
    confirm = _prob(d["confirm"], f"{where}.confirm") if "confirm" in d else base.confirm
    confirm_review = (_prob(d["confirm_review"], f"{where}.confirm_review") if "confirm_review" in d
                      else base.confirm_review)
    exclude = base.exclude
    if "exclude" in d:
        ex = d["exclude"] if d["exclude"] is not None else []
        if not isinstance(ex, list) or not all(isinstance(c, str) for c in ex):
            raise ValueError(f"{where}.exclude: expected a list of category ids")
        if categories:
            bad = [c for c in ex if c not in categories]
            if bad:
                raise ValueError(f"{where}.exclude: unknown categories {bad}")
        exclude = frozenset(ex)
    fitted = _fitted(d["fitted"], f"{where}.fitted", categories) if "fitted" in d else base.fitted
    # a review must not need more than a reject: confirm_review <= confirm <= reject
    for lo, lo_name, hi, hi_name in ((confirm, "confirm", reject, "reject"),
                                     (confirm_review, "confirm_review", confirm, "confirm"),
                                     (confirm_review, "confirm_review", reject, "reject")):
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{where}: {lo_name} {lo} is above {hi_name} {hi} (a review or a held-back reject "
                             f"would need more than a reject)")
    return AggregateThresholds(reject=reject, min_category=min_category, exclude=exclude, confirm=confirm,
                               confirm_review=confirm_review, fitted=fitted)


def _fitted(d: Any, where: str, categories: dict | None) -> FittedDecision | None:
    """``prohibited_head.fitted``: ``{bias, weights: {feature: weight}}`` (null: none)."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping with bias and weights")
    _keys(d, {"bias", "weights"}, where)
    if "bias" not in d or not isinstance(d.get("weights"), dict) or not d["weights"]:
        raise ValueError(f"{where}: needs bias and a non-empty weights mapping feature -> number")
    bias = _num(d["bias"], f"{where}.bias")
    weights = []
    for name, w in d["weights"].items():
        name = str(name)
        if name not in BASE_FEATURES and categories and name not in categories:
            raise ValueError(f"{where}.weights.{name}: not a feature (one of {', '.join(BASE_FEATURES)} "
                             f"or a category id)")
        weights.append((name, _num(w, f"{where}.weights.{name}")))
    return FittedDecision(bias=bias, weights=tuple(weights))


def _thresholds(d: Any, base: ClassifierThresholds, where: str) -> ClassifierThresholds:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping with report, review, reject")
    _keys(d, {"report", "review", "reject", "reject_with_channel", "reject_in_context"}, where)
    report = _prob(d["report"], f"{where}.report") if "report" in d else base.report
    if report is None:
        raise ValueError(f"{where}.report: must be a probability")
    review = _prob(d["review"], f"{where}.review") if "review" in d else base.review
    reject = _prob(d["reject"], f"{where}.reject") if "reject" in d else base.reject
    if review is not None and review < report:
        raise ValueError(f"{where}: review must not be lower than report")
    if reject is not None and review is not None and reject < review:
        raise ValueError(f"{where}: reject must not be lower than review")
    with_channel = (_prob(d["reject_with_channel"], f"{where}.reject_with_channel") if "reject_with_channel" in d
                    else base.reject_with_channel)
    if with_channel is not None and review is not None and with_channel < review:
        raise ValueError(f"{where}: reject_with_channel must not be lower than review")
    in_context = (_prob(d["reject_in_context"], f"{where}.reject_in_context") if "reject_in_context" in d
                  else base.reject_in_context)
    if in_context is not None and reject is not None and in_context < reject:
        raise ValueError(f"{where}: reject_in_context must not be lower than reject")
    return ClassifierThresholds(report, review, reject, with_channel, in_context)
