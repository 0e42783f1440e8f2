"""The fitted decision (app/engine/decision.py) and the policy that uses it (prohibited_head.fitted)."""
from __future__ import annotations

import math

import pytest

from app.engine.decision import FittedDecision, feature_values, logit
from app.engine.features import Content
from app.engine.policy import Policy
from app.engine.types import Hit

LABELS = ["hate", "abuse", "marketing", "prohibited"]
PROHIBITED = ("hate", "abuse")
CHANNEL = frozenset({"PAT_URL"})


def _hit(rule, category, score, action=None):
    return Hit(rule=rule, category=category, detector="keyword", score=score, action=action)


def _values(probs, factor=1.0, lang="zh", units=20, evidence=()):
    return feature_values(LABELS, probs, factor, probs[-1] * factor, PROHIBITED, lang, units, evidence, CHANNEL, 9)


def test_features_of_a_message():
    v = _values([0.9, 0.2, 0.99, 0.8])
    assert v["hate"] == pytest.approx(logit(0.9)) and v["abuse"] == pytest.approx(logit(0.2))
    assert "marketing" not in v  # informational categories are no feature
    assert v["top"] == pytest.approx(logit(0.9)) and v["prohibited"] == pytest.approx(logit(0.8))
    assert v["units"] == 0.5 and "short" not in v and "en" not in v
    # English: the language flag and the two log-odds again
    v = _values([0.9, 0.2, 0.0, 0.8], lang="en", units=80)
    assert v["en"] == 1.0 and v["en_prohibited"] == v["prohibited"] and v["en_top"] == v["top"]
    assert v["units"] == 1.0  # at most 1
    # a fragment, bounded probabilities: everything times the factor
    v = _values([0.9, 0.2, 0.0, 0.8], factor=0.5, units=4)
    assert v["short"] == 1.0 and v["hate"] == pytest.approx(logit(0.45))
    assert v["prohibited"] == pytest.approx(logit(0.4))
    # 0 and 1 are clipped, never infinite
    v = _values([1.0, 0.0, 0.0, 1.0])
    assert all(math.isfinite(x) for x in v.values())


def test_evidence_features():
    ev = [_hit("KW_HATE_SLUR", "hate", 6), _hit("PAT_URL", None, 1)]
    v = _values([0.1, 0.1, 0.0, 0.1], evidence=ev)
    assert v["keyword"] == 1.0 and v["channel"] == 1.0 and "context" not in v
    # a warning context (its own action, or a negative score) is no keyword evidence
    ev = [_hit("KW_CTX_NOTICE", None, 0, "context"), _hit("KW_HATE_CTX_NOTICE", "hate", -6)]
    v = _values([0.1, 0.1, 0.0, 0.1], evidence=ev)
    assert v["context"] == 1.0 and "keyword" not in v
    # marketing keywords are not prohibited evidence
    v = _values([0.1, 0.1, 0.0, 0.1], evidence=[_hit("KW_MARKETING_PROMO", "marketing", 1)])
    assert "keyword" not in v


def test_the_score_is_a_logistic_of_the_weighted_features():
    d = FittedDecision(bias=-2.0, weights=(("prohibited", 1.0), ("keyword", 3.0), ("nope", 5.0)))
    assert d.score({"prohibited": 0.0}) == pytest.approx(1 / (1 + math.exp(2)))
    assert d.score({"prohibited": 1.0, "keyword": 1.0}) == pytest.approx(1 / (1 + math.exp(-2)))
    # extreme sums neither overflow nor leave [0, 1]
    big = FittedDecision(bias=0.0, weights=(("prohibited", 1e6),))
    assert big.score({"prohibited": 9.2}) == 1.0 and big.score({"prohibited": -9.2}) == 0.0


def _policy(fitted=None, **head):
    doc = {"informational": ["marketing"],
           "classifier": {"min_content_reject": 9,
                          "categories": {"hate": {"report": 0.5, "review": 0.95, "reject": 0.995},
                                         "abuse": {"report": 0.4, "review": 0.4, "reject": 0.7}},
                          "prohibited_head": dict({"reject": 0.8, "min_category": 0.0, "confirm": 0.2}, **head)}}
    if fitted is not None:
        doc["classifier"]["prohibited_head"]["fitted"] = fitted
    policy, _ = Policy.from_config(doc, {"hate": None, "abuse": None, "marketing": None})
    return policy


# weighs the aggregate head and keyword evidence: a keyword hit tips a borderline message over
FITTED = {"bias": -1.0, "weights": {"prohibited": 1.0, "keyword": 4.0, "en": -3.0}}


def test_the_fitted_decision_rejects_where_the_aggregate_head_alone_would_not():
    policy = _policy(FITTED)
    kw = _hit("KW_HATE_SLUR", "hate", 3)
    # p_any 0.6: logit 0.41 - 1 + 4 = 3.41 -> 0.97 >= 0.8: the most likely category rejects
    hits = policy.classifier_hits(LABELS, [0.55, 0.3, 0.0, 0.6], content=20, evidence=[kw])
    (hate,) = [h for h in hits if h.category == "hate"]
    assert hate.action == "reject" and "fitted decision 0.97 >= 0.8, any prohibited category 0.60" in hate.description
    th = dict(hate.threshold)
    assert th["decision"] == pytest.approx(0.968, abs=1e-3) and th["prohibited"] == 0.6
    v = policy.decide([kw] + hits)
    assert v.verdict == "reject"
    assert "the fitted decision (any prohibited category 0.6 weighed with the other signals) has 0.9679" in v.why
    # the same probabilities without the keyword: 0.35 < 0.8, nothing forced
    hits = policy.classifier_hits(LABELS, [0.55, 0.3, 0.0, 0.6], content=20, evidence=[])
    assert all(h.action != "reject" for h in hits)
    # the hand rule it replaces would have rejected on p_any 0.85 alone; the fitted one for
    # English (weight -3) does not
    hits = policy.classifier_hits(LABELS, [0.55, 0.3, 0.0, 0.85], content=Content(0, 20), evidence=[])
    assert all(h.action != "reject" for h in hits)
    assert any(h.action == "reject" for h in _policy().classifier_hits(LABELS, [0.55, 0.3, 0.0, 0.85], content=20))


def test_the_fitted_decision_confirms_a_category_heads_reject():
    policy = _policy(FITTED)
    # abuse 0.9 >= its reject 0.7, aggregate 0.3: decision logit(0.3) - 1 = -1.85 -> 0.14 < confirm 0.2
    (h,) = policy.classifier_hits(LABELS, [0.0, 0.9, 0.0, 0.3], content=20, evidence=[])
    assert h.action == "review" and "fitted decision 0.14 < 0.2; any prohibited category 0.30" in h.description
    th = dict(h.threshold)
    assert th["decision"] == pytest.approx(0.136, abs=1e-3) and th["confirm"] == 0.2
    assert "but the fitted decision (any prohibited category 0.3 weighed with the other signals) has only 0.1362 " \
           "< its confirm threshold 0.2" in policy.decide([h]).why
    # with keyword evidence the decision confirms it
    kw = _hit("KW_ABUSE_INSULT", "abuse", 3)
    (h,) = policy.classifier_hits(LABELS, [0.0, 0.9, 0.0, 0.3], content=20, evidence=[kw])
    assert h.action == "reject"


def test_languages_inherit_the_fitted_decision_and_may_set_their_own_lines():
    policy, _ = Policy.from_config({"classifier": {
        "prohibited_head": {"reject": 0.8, "min_category": 0.0, "fitted": FITTED},
        "languages": {"en": {"prohibited_head": {"reject": 0.01}}}}}, {"hate": None, "abuse": None})
    assert policy.aggregate_for("en").fitted == policy.aggregate_for("zh").fitted is not None
    # English: bias -1, en -3 -> low score, but the English line is 0.01
    hits = policy.classifier_hits(LABELS[:2] + ["prohibited"], [0.55, 0.3, 0.6], content=Content(0, 20))
    assert hits[0].action == "reject" and hits[0].category == "hate"


@pytest.mark.parametrize("fitted", [
    {"weights": {"prohibited": 1.0}},                  # no bias
    {"bias": 0.0, "weights": {}},                      # no weight
    {"bias": 0.0, "weights": {"prohibted": 1.0}},      # a typo: not a feature, not a category
    {"bias": 0.0, "weights": {"prohibited": "high"}},  # not a number
    {"bias": float("nan"), "weights": {"prohibited": 1.0}},
    {"bias": 0.0, "weights": {"prohibited": 1.0}, "scale": 2},
    [0.0, 1.0],
])
def test_a_broken_fitted_block_is_refused(fitted):
    with pytest.raises(ValueError, match="fitted"):
        _policy(fitted)


def test_confirm_review_leaves_an_unconfirmed_review_a_score():
    """``confirm_review``: a category head's forced review needs the decision (or, without a
    fitted block, the aggregate head) at that value; below it the hit only adds to the total.
    A reject held back by ``confirm`` stays review: the category head was sure."""
    policy = _policy(FITTED, confirm_review=0.1)
    # abuse 0.5 forces review (review 0.4); decision logit(0.05) - 1 -> 0.02 < 0.1: a score only
    (h,) = policy.classifier_hits(LABELS, [0.0, 0.5, 0.0, 0.05], content=20, evidence=[])
    assert h.action is None and "score only, no review: fitted decision 0.02 < 0.1" in h.description
    assert policy.decide([h]).verdict == "allow"
    # keyword evidence lifts the decision: the review stands
    (h,) = policy.classifier_hits(LABELS, [0.0, 0.5, 0.0, 0.05], content=20, evidence=[_hit("KW_ABUSE_INSULT", "abuse", 3)])
    assert h.action == "review"
    # a head sure enough to reject, held back by confirm: review, not a mere score
    (h,) = policy.classifier_hits(LABELS, [0.0, 0.9, 0.0, 0.05], content=20, evidence=[])
    assert h.action == "review"
    # without a fitted block the aggregate head's own probability is compared
    plain = _policy(confirm_review=0.1)
    (h,) = plain.classifier_hits(LABELS, [0.0, 0.5, 0.0, 0.05], content=20)
    assert h.action is None and "any prohibited category 0.05 < 0.1" in h.description
    (h,) = plain.classifier_hits(LABELS, [0.0, 0.5, 0.0, 0.15], content=20)
    assert h.action == "review"
    with pytest.raises(ValueError, match="confirm_review"):
        _policy(confirm_review=1.5)


def test_thresholds_that_contradict_each_other_are_refused():
    """A review must never need more than a reject: confirm_review <= confirm <= reject."""
    with pytest.raises(ValueError, match="confirm_review 0.99 is above confirm 0.2"):
        _policy(FITTED, confirm_review=0.99)
    with pytest.raises(ValueError, match="confirm 0.9 is above reject 0.8"):
        _policy(FITTED, confirm=0.9)
    with pytest.raises(ValueError, match="confirm_review 0.85 is above reject 0.8"):
        _policy(FITTED, confirm=None, confirm_review=0.85)
    # per language, against what it inherits
    with pytest.raises(ValueError, match=r"languages.en.prohibited_head: confirm 0.5 is above reject 0.4"):
        Policy.from_config({"classifier": {"prohibited_head": {"reject": 0.8, "confirm": 0.2},
                                           "languages": {"en": {"prohibited_head": {"reject": 0.4, "confirm": 0.5}}}}})
    assert _policy(FITTED, confirm=0.8, confirm_review=0.8).aggregate_for("zh").confirm == 0.8


def test_a_plain_classifier_reason_explains_itself():
    """Without aggregate settings a classifier reason says what it did, as before the decision."""
    plain, _ = Policy.from_config({"classifier": {"categories": {"abuse": {"review": 0.5, "reject": 0.7}}}},
                                  {"abuse": None})
    v = plain.decide(plain.classifier_hits(["abuse"], [0.9], content=20))
    assert v.verdict == "reject" and "has probability 0.9 >= its reject threshold 0.7" in v.why
