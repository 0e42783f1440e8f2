"""Policy: warning context demotes the hits of its category; the classifier is bounded on texts
with little content (issue 12: legitimate traffic is not rejected on artefacts)."""
from __future__ import annotations

import pytest

from app.engine.policy import ClassifierThresholds, Policy
from app.engine.types import Hit


def kw(rule, cat, score, action=None):
    return Hit(rule, cat, "keyword", score, action, "x", (0, 1), "desc")


def clf(label, p, action):
    return Hit(f"CLF_{label.upper()}", label, "classifier", p, action, description=f"classifier: {label}")


CTX = kw("KW_CULT_CTX_ANTI_CULT", "cult_superstition", -8)


def test_forced_keyword_in_warning_context_goes_to_review_not_reject():
    named = kw("KW_CULT_NAMED_GROUP", "cult_superstition", 0, "reject")
    assert Policy().decide([named]).verdict == "reject"
    v = Policy().decide([named, CTX])
    assert v.verdict == "review" and v.forced_by is None
    demoted = v.reasons[0]
    assert demoted.action == "review"
    assert "demoted from reject" in demoted.description and "KW_CULT_CTX_ANTI_CULT" in demoted.description


def test_context_demotes_only_its_own_category():
    gambling = kw("KW_GAMBLING_CASINO_BRAND", "gambling", 0, "reject")
    v = Policy().decide([gambling, CTX])
    assert v.verdict == "reject" and v.forced_by == "KW_GAMBLING_CASINO_BRAND"


def test_classifier_review_is_dropped_and_reject_becomes_review_in_context():
    ctx = kw("KW_FRAUD_CTX_WARNING", "fraud", -8)
    p = Policy(classifier_weight=5)
    v = p.decide([clf("fraud", 0.6, "review"), ctx])
    assert v.verdict == "allow" and v.reasons[0].action is None
    v = p.decide([clf("fraud", 0.99, "reject"), ctx])
    assert v.verdict == "review" and v.reasons[0].action == "review"


def test_account_block_lists_and_uncategorised_hits_are_never_demoted():
    ctx = kw("KW_FRAUD_CTX_WARNING", "fraud", -8)
    block = Hit("KW_ACCOUNT_BLOCK", "fraud", "account", 10, "reject", "x", (0, 1))
    assert Policy().decide([block, ctx]).verdict == "reject"
    suspended = Hit("ACCT_SUSPENDED", None, "account", 0, "reject")
    assert Policy().decide([suspended, ctx]).verdict == "reject"


def test_a_disabled_context_rule_demotes_nothing():
    named = kw("KW_CULT_NAMED_GROUP", "cult_superstition", 0, "reject")
    p = Policy(disabled=frozenset({"KW_CULT_CTX_ANTI_CULT"}))
    assert p.decide([named, CTX]).verdict == "reject"


def _bounded_policy(min_content=5):
    return Policy(classifier_weight=5, min_content=min_content,
                  classifier_default=ClassifierThresholds(0.5, 0.8, 0.95))


def test_no_classifier_hit_on_a_text_without_content():
    p = _bounded_policy()
    assert p.classifier_hits(("gambling", "pornography"), [0.99, 0.99], content=0) == []


def test_classifier_is_scaled_down_below_min_content_and_says_so():
    p = _bounded_policy()
    hits = p.classifier_hits(("gambling",), [0.99], content=2)
    assert len(hits) == 0  # 0.99 * 2/5 = 0.396 < report 0.5
    (h,) = p.classifier_hits(("gambling",), [0.99], content=4)
    assert h.score == pytest.approx(0.99 * 4 / 5, abs=1e-4) and h.action is None  # 0.792 < review 0.8
    assert "4 of 5 content units" in h.description
    (full,) = p.classifier_hits(("gambling",), [0.99], content=5)
    assert full.score == pytest.approx(0.99) and full.action == "reject"
    (unbounded,) = p.classifier_hits(("gambling",), [0.99])
    assert unbounded.action == "reject"


@pytest.mark.parametrize("value", [-1, 101, 2.5, "5", True])
def test_min_content_must_be_a_small_whole_number(value):
    with pytest.raises(ValueError, match="min_content"):
        Policy.from_config({"classifier": {"min_content": value}}, None, ())


def test_min_content_is_read_from_the_policy_file():
    p, _ = Policy.from_config({"classifier": {"min_content": 7}}, None, ())
    assert p.min_content == 7


def test_language_thresholds_apply_to_messages_of_that_language():
    from app.engine.features import Content

    p, _ = Policy.from_config({"classifier": {
        "categories": {"abuse": {"report": 0.4, "review": 0.4, "reject": 0.5}},
        "languages": {"en": {"categories": {"abuse": {"review": 0.9, "reject": None}}}}}}, None, ())
    (zh,) = p.classifier_hits(("abuse",), [0.95], content=Content(cjk=12, latin=1))
    assert zh.action == "reject"
    (en,) = p.classifier_hits(("abuse",), [0.95], content=Content(cjk=0, latin=9))
    assert en.action == "review"  # never rejects in English; the report threshold is inherited
    (low,) = p.classifier_hits(("abuse",), [0.6], content=Content(cjk=0, latin=9))
    assert low.action is None


@pytest.mark.parametrize("bad", [{"fr": {"categories": {}}}, {"en": []}, {"en": {"cats": {}}},
                                 {"en": {"categories": {"abuse": {"review": 2}}}}])
def test_bad_language_sections_are_refused(bad):
    with pytest.raises(ValueError, match="classifier.languages"):
        Policy.from_config({"classifier": {"languages": bad}}, None, ())
