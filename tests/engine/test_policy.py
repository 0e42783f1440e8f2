"""Policy: thresholds, forcing, overrides, informational categories, classifier hits."""
from __future__ import annotations

import pytest

from app.engine.policy import ClassifierThresholds, Policy
from app.engine.types import Hit, Verdict


def kw(rule, cat, score, action=None):
    return Hit(rule, cat, "keyword", score, action, "x", (0, 1), "")


def test_thresholds():
    p = Policy(review_at=5, reject_at=10)
    assert p.decide([]).verdict == "allow"
    assert p.decide([kw("KW_A", "fraud", 4.9)]).verdict == "allow"
    assert p.decide([kw("KW_A", "fraud", 5)]).verdict == "review"
    v = p.decide([kw("KW_A", "fraud", 5), kw("KW_B", "fraud", 5)])
    assert v.verdict == "reject" and v.score == 10 and v.forced_by is None


def test_reject_action_forces_and_says_so():
    v = Policy().decide([kw("KW_A", "fraud", 1), kw("KW_X", "gambling", 0, "reject")])
    assert v.verdict == "reject" and v.forced_by == "KW_X"
    assert v.categories == ("fraud", "gambling")
    assert [h.rule for h in v.reasons] == ["KW_A", "KW_X"]


def test_review_action_forces_at_least_review():
    v = Policy().decide([kw("KW_R", "rumor", 0, "review")])
    assert v.verdict == "review" and v.categories == ("rumor",)


def test_extra_hit_force_allow_and_reject_precedence():
    p = Policy()
    allow = Hit("TPL_APPROVED", None, "template", 0, "allow")
    assert p.decide([kw("KW_A", "fraud", 20), allow]).verdict == "allow"
    suspended = Hit("ACCT_SUSPENDED", None, "account", 0, "reject", description="account suspended")
    v = p.decide([allow, suspended])
    assert v.verdict == "reject" and v.forced_by == "ACCT_SUSPENDED" and v.categories == ()


def test_rule_counts_once():
    v = Policy().decide([kw("PAT_X", None, 3), kw("PAT_X", None, 3)])
    assert v.score == 3 and len(v.reasons) == 2


def test_negative_score_offsets_own_category_only():
    p = Policy()
    v = p.decide([kw("KW_FRAUD", "fraud", 6), kw("KW_FRAUD_CTX", "fraud", -8)])
    assert v.verdict == "allow" and v.categories == () and v.score == 0
    v = p.decide([kw("KW_GAMBLING", "gambling", 6), kw("KW_FRAUD_CTX", "fraud", -8)])
    assert v.verdict == "review" and v.categories == ("gambling",) and v.score == 6


def test_categories_order_by_contribution():
    v = Policy().decide([kw("KW_A", "fraud", 2), kw("KW_B", "gambling", 4)])
    assert v.categories == ("gambling", "fraud")


def test_marketing_is_informational():
    p = Policy()
    v = p.decide([kw("KW_M", "marketing", 30, "reject")])
    assert v.verdict == "allow" and v.categories == ("marketing",) and v.score == 0 and v.forced_by is None


def test_overrides_and_disabled():
    p = Policy(overrides={"KW_A": {"score": 1.0, "action": None}}, disabled=frozenset({"KW_B"}))
    v = p.decide([kw("KW_A", "fraud", 10, "reject"), kw("KW_B", "fraud", 10, "reject")])
    assert v.verdict == "allow" and v.score == 1
    assert [(h.rule, h.score, h.action) for h in v.reasons] == [("KW_A", 1.0, None)]


def test_from_config_validation():
    p, warnings = Policy.from_config({"thresholds": {"review": 4, "reject": 8},
                                      "overrides": {"KW_NOPE": {"score": 1}}}, None, {"KW_A"})
    assert p.review_at == 4 and p.reject_at == 8 and warnings
    for bad in ({"thresholds": {"review": 10, "reject": 5}}, {"thresholds": {"revue": 1}},
                {"overrides": {"KW_A": {"action": "explode"}}}, {"classifier": {"default": {"review": 2}}},
                {"classifier": {"default": {"review": 0.9, "reject": 0.5}}}, {"disabled": "KW_A"}, [1]):
        with pytest.raises(ValueError):
            Policy.from_config(bad, None, ())


def test_classifier_hits():
    p = Policy(classifier_weight=5, classifier_default=ClassifierThresholds(0.5, 0.8, 0.95),
               classifier_categories={"marketing": ClassifierThresholds(0.5, 0.7, None)})
    hits = p.classifier_hits(("gambling", "fraud", "marketing", "normal"), [0.97, 0.6, 0.99, 0.99],
                             explain=lambda label: [f"{label}!"])
    by = {h.rule: h for h in hits}
    assert set(by) == {"CLF_GAMBLING", "CLF_FRAUD", "CLF_MARKETING"}
    assert by["CLF_GAMBLING"].action == "reject" and by["CLF_GAMBLING"].words == ("gambling!",)
    assert by["CLF_FRAUD"].action is None and by["CLF_FRAUD"].words is None and by["CLF_FRAUD"].score == 0.6
    assert by["CLF_MARKETING"].action == "review" and by["CLF_GAMBLING"].detector == "classifier"
    v = p.decide(hits)
    assert v.verdict == "reject" and v.forced_by == "CLF_GAMBLING"
    assert v.score == pytest.approx(5 * 0.97 + 5 * 0.6)
    assert v.categories == ("gambling", "fraud", "marketing")


def test_verdict_json_roundtrip():
    v = Policy().decide([kw("KW_A", "fraud", 6)], "rv1", "mv1")
    d = v.to_dict()
    assert set(d) == {"verdict", "categories", "score", "reasons", "ruleset_version", "model_version", "forced_by",
                      "subcategories", "explanation"}
    assert d["reasons"][0] == {"rule": "KW_A", "category": "fraud", "detector": "keyword", "score": 6.0,
                               "evidence": "x", "span": [0, 1]}
    assert Verdict.from_dict(d) == v
    assert Verdict.from_dict(d).to_dict() == d  # the explanation survives a round trip through JSON
    # a composite hit with a scenario keeps both through JSON
    comp = Hit("KW_B", "fraud", "keyword", 10, "reject", "民警…安全账户", (0, 9), "d",
               subcategory="fraud.impersonation_authority", parts=(("who", "民警", (0, 2)), ("demand", "安全账户", (5, 9))))
    v = Policy().decide([comp])
    d = v.to_dict()
    assert d["subcategories"] == ["fraud.impersonation_authority"]
    assert d["reasons"][0]["parts"] == [{"group": "who", "evidence": "民警", "span": [0, 2]},
                                        {"group": "demand", "evidence": "安全账户", "span": [5, 9]}]
    assert Verdict.from_dict(d) == v


def _en(units=20):
    from types import SimpleNamespace

    return SimpleNamespace(lang="en", units=units)


def test_classifier_rejects_with_a_channel_only():
    """English fraud at p >= reject_with_channel rejects when the message carries a way to act
    (a channel rule: a link, a phone number); the same probability without one stays review."""
    policy, _ = Policy.from_config({
        "classifier": {
            "channel_rules": ["PAT_URL", "PAT_PHONE_INTL"],
            "min_content_reject": 9,
            "categories": {"fraud": {"report": 0.4, "review": 0.5, "reject": 0.8}},
            "languages": {"en": {"categories": {"fraud": {"review": 0.9, "reject": None,
                                                          "reject_with_channel": 0.95}}}},
        }}, {"fraud": None})
    link = Hit("PAT_URL", None, "pattern", 1, None, "x.top/a", (0, 7), "link")
    money = Hit("PAT_MONEY", None, "pattern", 0, None, "$5", (0, 2), "money")

    def action(p, evidence, units=20):
        (h,) = policy.classifier_hits(["fraud"], [p], content=_en(units), evidence=evidence)
        return h.action, h.description

    assert action(0.97, [link])[0] == "reject" and "PAT_URL" in action(0.97, [link])[1]
    assert action(0.97, [money])[0] == "review"          # an amount is no way to act
    assert action(0.97, [])[0] == "review"
    assert action(0.93, [link])[0] == "review"           # below reject_with_channel
    assert action(0.97, [link], units=5)[0] == "review"  # a fragment: never rejected by the classifier
    # Chinese keeps its own reject threshold, with or without a channel
    (zh,) = policy.classifier_hits(["fraud"], [0.85], content=20, evidence=[])
    assert zh.action == "reject"
    # ... and a fraud warning context still takes the reject one step down
    ctx = kw("KW_FRAUD_CTX_WARNING_EN", "fraud", -8)
    (h,) = policy.classifier_hits(["fraud"], [0.97], content=_en(), evidence=[link])
    assert policy.decide([link, ctx, h]).verdict == "review"


@pytest.mark.parametrize("doc", [
    {"classifier": {"channel_rules": "PAT_URL"}},
    {"classifier": {"channel_rules": ["KW_X"]}},
    {"classifier": {"categories": {"fraud": {"review": 0.9, "reject_with_channel": 0.5}}}},
    {"classifier": {"categories": {"fraud": {"reject_with_channel": 1.5}}}},
])
def test_reject_with_channel_validation(doc):
    with pytest.raises(ValueError):
        Policy.from_config(doc, {"fraud": None})


def _aggregate_policy():
    policy, _ = Policy.from_config({
        "informational": ["marketing"],
        "classifier": {
            "min_content_reject": 9,
            "categories": {"hate": {"report": 0.5, "review": 0.95, "reject": 0.995},
                           "abuse": {"report": 0.4, "review": 0.4, "reject": 0.7}},
            "prohibited_head": {"reject": 0.9, "min_category": 0.4},
            "languages": {"en": {"prohibited_head": {"reject": 0.99}}},
        }}, {"hate": None, "abuse": None, "marketing": None})
    return policy


LABELS3 = ["hate", "abuse", "marketing", "prohibited"]


def test_aggregate_head_rejects_with_the_most_likely_category():
    """A message the aggregate head is sure is prohibited, split between two neighbouring
    categories that are each unsure, rejects with the more likely one and says why."""
    policy = _aggregate_policy()
    hits = policy.classifier_hits(LABELS3, [0.62, 0.45, 0.1, 0.93], content=20)
    assert [(h.category, h.action) for h in hits] == [("hate", "reject"), ("abuse", "review")]
    hate = hits[0]
    assert hate.score == 0.62 and "any prohibited category 0.93 >= 0.9" in hate.description
    th = dict(hate.threshold)
    assert th["prohibited"] == 0.93 and th["prohibited_reject"] == 0.9 and th["min_category"] == 0.4
    v = policy.decide(hits)
    assert v.verdict == "reject" and v.forced_by == "CLF_HATE"
    assert "aggregate head (any prohibited category) has 0.93 >= its reject threshold 0.9" in v.why
    # the aggregate label is never a category of its own
    assert "prohibited" not in v.categories


def test_aggregate_head_below_its_thresholds_changes_nothing():
    policy = _aggregate_policy()
    # below the aggregate's reject threshold: the category heads decide alone
    hits = policy.classifier_hits(LABELS3, [0.62, 0.45, 0.1, 0.89], content=20)
    assert [(h.category, h.action) for h in hits] == [("hate", None), ("abuse", "review")]
    # sure it is prohibited, but no category reaches min_category: nothing is forced
    hits = policy.classifier_hits(LABELS3, [0.3, 0.39, 0.1, 0.97], content=20)
    assert hits == []
    # a category head that rejects already is left as it is (no second reject reason)
    hits = policy.classifier_hits(LABELS3, [0.2, 0.8, 0.1, 0.99], content=20)
    assert [(h.category, h.action, "any prohibited" in h.description) for h in hits] == [("abuse", "reject", False)]
    # marketing is informational: never the category an aggregate reject names
    hits = policy.classifier_hits(LABELS3, [0.1, 0.2, 0.95, 0.95], content=20)
    assert all(h.action != "reject" for h in hits)
    # a model without the aggregate head: the policy setting has nothing to act on
    hits = policy.classifier_hits(LABELS3[:3], [0.62, 0.45, 0.1], content=20)
    assert [(h.category, h.action) for h in hits] == [("hate", None), ("abuse", "review")]


def test_aggregate_head_makes_the_hit_below_report_and_respects_fragments_and_language():
    policy = _aggregate_policy()
    # hate at 0.45 is below its report threshold: the aggregate reject makes the hit
    hits = policy.classifier_hits(LABELS3, [0.45, 0.2, 0.0, 0.95], content=20)
    assert [(h.category, h.action, h.score) for h in hits] == [("hate", "reject", 0.45)]
    # a fragment too short to reject on goes to review instead
    (h,) = policy.classifier_hits(LABELS3, [0.45, 0.2, 0.0, 0.95], content=6)
    assert h.action == "review" and "content units" in h.description
    # English has its own, higher line
    assert all(h.action != "reject" for h in policy.classifier_hits(LABELS3, [0.62, 0.45, 0.1, 0.95], content=_en()))
    hits = policy.classifier_hits(LABELS3, [0.62, 0.45, 0.1, 0.995], content=_en())
    assert hits[0].action == "reject" and dict(hits[0].threshold)["lang"] == "en"


def test_aggregate_head_reject_is_demoted_by_warning_context():
    """An anti-discrimination notice the aggregate head scores high still goes to a person, not
    to the bin, when its own category's warning context is present."""
    policy = _aggregate_policy()
    hits = policy.classifier_hits(LABELS3, [0.62, 0.45, 0.1, 0.95], content=20)
    ctx = kw("KW_HATE_CTX_NOTICE", "hate", -6)
    assert policy.decide(hits + [ctx]).verdict == "review"


@pytest.mark.parametrize("doc", [
    {"classifier": {"prohibited_head": 0.9}},
    {"classifier": {"prohibited_head": {"reject": 1.5}}},
    {"classifier": {"prohibited_head": {"reject": 0.9, "min_category": None}}},
    {"classifier": {"prohibited_head": {"rejects": 0.9}}},
    {"classifier": {"languages": {"en": {"prohibited_head": {"reject": "high"}}}}},
])
def test_aggregate_head_validation(doc):
    with pytest.raises(ValueError):
        Policy.from_config(doc, {"fraud": None})


def test_a_category_reject_needs_the_aggregate_head_to_confirm_it():
    """``confirm``: a category head sure of a message that the aggregate head does not find
    prohibited sends it to review, and says why; without the aggregate head nothing changes."""
    policy, _ = Policy.from_config({
        "informational": ["marketing"],
        "classifier": {
            "categories": {"fraud": {"report": 0.4, "review": 0.5, "reject": 0.9}},
            "prohibited_head": {"reject": 0.85, "min_category": 0.6, "confirm": 0.3, "exclude": ["hate"]},
            "languages": {"en": {"prohibited_head": {"reject": 0.995, "confirm": None}}},
        }}, {"fraud": None, "hate": None, "marketing": None})
    labels = ["fraud", "hate", "marketing", "prohibited"]
    (h,) = policy.classifier_hits(labels, [0.95, 0.0, 0.0, 0.2], content=20)
    assert h.action == "review" and "any prohibited category 0.20 < 0.3" in h.description
    v = policy.decide([h])
    assert v.verdict == "review"
    assert "the aggregate head (any prohibited category) has only 0.2 < its confirm threshold 0.3" in v.why
    (h,) = policy.classifier_hits(labels, [0.95, 0.0, 0.0, 0.31], content=20)
    assert h.action == "reject" and "prohibited" not in dict(h.threshold)
    # English: confirm switched off, the rest inherited
    (h,) = policy.classifier_hits(labels, [0.95, 0.0, 0.0, 0.2], content=_en())
    assert h.action == "reject"
    assert policy.aggregate_for("en").exclude == frozenset({"hate"}) and policy.aggregate_for("en").min_category == 0.6
    # no aggregate head in the model: the category head rejects alone as before
    (h,) = policy.classifier_hits(labels[:3], [0.95, 0.0, 0.0], content=20)
    assert h.action == "reject"
    # an excluded category is never the one the aggregate head rejects with
    hits = policy.classifier_hits(labels, [0.3, 0.7, 0.0, 0.99], content=20)
    assert all(h.action != "reject" for h in hits)
    hits = policy.classifier_hits(labels, [0.7, 0.3, 0.0, 0.99], content=20)
    assert [(h.category, h.action) for h in hits] == [("fraud", "reject")]
    assert "any prohibited category 0.99 >= 0.85" in hits[0].description


@pytest.mark.parametrize("doc", [
    {"classifier": {"prohibited_head": {"exclude": "hate"}}},
    {"classifier": {"prohibited_head": {"exclude": ["nope"]}}},
    {"classifier": {"prohibited_head": {"confirm": 2}}},
])
def test_aggregate_head_exclude_and_confirm_validation(doc):
    with pytest.raises(ValueError):
        Policy.from_config(doc, {"fraud": None, "hate": None})
