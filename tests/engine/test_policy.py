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
