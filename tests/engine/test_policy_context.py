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


@pytest.mark.parametrize("key", ["min_content", "min_content_reject"])
@pytest.mark.parametrize("value", [-1, 101, 2.5, "5", True])
def test_min_content_must_be_a_small_whole_number(key, value):
    with pytest.raises(ValueError, match=key):
        Policy.from_config({"classifier": {key: value}}, None, ())


def test_min_content_is_read_from_the_policy_file():
    p, _ = Policy.from_config({"classifier": {"min_content": 7, "min_content_reject": 9}}, None, ())
    assert (p.min_content, p.min_content_reject) == (7, 9)


def test_classifier_alone_does_not_reject_a_fragment_below_min_content_reject():
    p = Policy(classifier_weight=5, min_content_reject=9, classifier_default=ClassifierThresholds(0.5, 0.8, 0.95))
    (short,) = p.classifier_hits(("gambling",), [0.99], content=8)
    assert short.action == "review" and "8 of 9 content units" in short.description
    assert p.decide([short]).verdict == "review"
    (long_,) = p.classifier_hits(("gambling",), [0.99], content=9)
    assert long_.action == "reject" and p.decide([long_]).verdict == "reject"
    # keyword evidence still rejects a short message: the bound is on the classifier alone
    assert p.decide([short, kw("KW_GAMBLING_CASINO_BRAND", "gambling", 0, "reject")]).verdict == "reject"


def test_a_language_can_have_its_own_min_content_reject():
    """Eight English words ("the j3ws r behind every war, do ur research") are a whole insult;
    eight Chinese characters are a fragment: each language's bound is its own, both for a
    category head's reject and for the aggregate head's."""
    from types import SimpleNamespace

    p, _ = Policy.from_config({"classifier": {
        "min_content_reject": 9, "languages": {"en": {"min_content_reject": 6}},
        "categories": {"hate": {"report": 0.5, "review": 0.8, "reject": 0.9}},
        "prohibited_head": {"reject": 0.9, "min_category": 0.4}}}, None, ())
    assert p.min_content_reject_for("en") == 6 and p.min_content_reject_for("zh") == 9
    assert p.min_content_reject_for(None) == 9
    en, zh = SimpleNamespace(lang="en", units=7), SimpleNamespace(lang="zh", units=7)
    (h,) = p.classifier_hits(("hate",), [0.95], content=en)
    assert h.action == "reject"
    (h,) = p.classifier_hits(("hate",), [0.95], content=zh)
    assert h.action == "review" and "7 of 9 content units" in h.description
    # the aggregate head's reject (hate itself below its own reject) follows the same bound
    labels = ("hate", "prohibited")
    (h,) = p.classifier_hits(labels, [0.6, 0.95], content=en)
    assert h.action == "reject"
    (h,) = p.classifier_hits(labels, [0.6, 0.95], content=SimpleNamespace(lang="en", units=5))
    assert h.action == "review" and dict(h.threshold)["min_content_reject"] == 6


@pytest.mark.parametrize("value", [-1, 101, 2.5, "5", True])
def test_a_languages_min_content_reject_must_be_a_small_whole_number(value):
    with pytest.raises(ValueError, match="languages.en.min_content_reject"):
        Policy.from_config({"classifier": {"languages": {"en": {"min_content_reject": value}}}}, None, ())


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


# --- notice context (rules/context.yaml): wording of warnings, reports and moderation notices
# that speaks of every category

NOTICE = Hit("KW_CTX_NOTICE_WARNING", None, "keyword", -6, "context", "均属违法", (0, 4), "notice")


def test_notice_context_demotes_forced_hits_of_every_category_to_review():
    gambling = kw("KW_GAMBLING_CASINO_BRAND", "gambling", 0, "reject")
    porn = kw("KW_PORN_CONTENT", "pornography", 0, "reject")
    v = Policy().decide([gambling, porn, NOTICE])
    assert v.verdict == "review" and v.forced_by is None
    assert [h.action for h in v.reasons[:2]] == ["review", "review"]
    assert all("warning context KW_CTX_NOTICE_WARNING" in h.description for h in v.reasons[:2])
    assert v.reasons[2].rule == "KW_CTX_NOTICE_WARNING"  # listed as evidence


def test_notice_context_offsets_each_category_and_adds_nothing_to_the_total():
    # news of a drug bust: 6 points of contraband, offset by the notice -> allowed
    drug = kw("KW_CONTRABAND_DRUG_NAMES", "contraband", 6)
    assert Policy().decide([drug]).verdict == "review"
    v = Policy().decide([drug, NOTICE])
    assert v.verdict == "allow" and v.score == 0 and v.categories == ()
    # the offset is per category, not once for the message, and never below zero
    v = Policy().decide([drug, kw("KW_GAMBLING_GENERIC", "gambling", 4), NOTICE])
    assert v.score == 0


def test_notice_context_never_clears_a_classifier_review():
    v = Policy(classifier_weight=5).decide([clf("fraud", 0.7, "review"), NOTICE])
    assert v.verdict == "review" and v.reasons[0].action == "review"
    v = Policy(classifier_weight=5).decide([clf("fraud", 0.99, "reject"), NOTICE])
    assert v.verdict == "review"


def test_notice_context_never_demotes_account_lists_or_uncategorised_hits():
    block = Hit("KW_ACCOUNT_BLOCK", "fraud", "account", 10, "reject", "x", (0, 1))
    assert Policy().decide([block, NOTICE]).verdict == "reject"
    short_link = Hit("PAT_SHORT_LINK", None, "pattern", 12, None, "t.cn/x", (0, 6))
    assert Policy().decide([short_link, NOTICE]).verdict == "reject"


def test_a_category_under_warning_context_does_not_reject_on_its_total_alone():
    # an anti-fraud notice that describes the scam at length: 26 points of fraud, -16 of context
    words = [kw("KW_FRAUD_TASK_BRUSHING", "fraud", 10), kw("KW_FRAUD_LOAN_ADVANCE_FEE", "fraud", 10),
             kw("KW_FRAUD_BRUSHING_WORDS", "fraud", 6)]
    ctx = [kw("KW_FRAUD_CTX_WARNING", "fraud", -8), kw("KW_FRAUD_CTX_AUTHORITY_NOTICE", "fraud", -8)]
    assert Policy().decide(words).verdict == "reject"
    v = Policy().decide(words + ctx)
    assert v.score == 10 and v.verdict == "review"
    # evidence of another category, untouched by the warning, still rejects on the total
    gambling = kw("KW_GAMBLING_GENERIC", "gambling", 10)
    assert Policy().decide(words + ctx + [gambling]).verdict == "reject"


def test_notice_offset_does_not_stack_with_a_categorys_own_context():
    scam = [kw("KW_FRAUD_SAFE_ACCOUNT", "fraud", 10), kw("KW_FRAUD_PAYMENT_REQUEST", "fraud", 4),
            kw("KW_FRAUD_IMPERSONATION_WEAK", "fraud", 3), kw("KW_FRAUD_CTX_WARNING", "fraud", -8)]
    assert Policy().decide(scam).verdict == "review"
    v = Policy().decide(scam + [NOTICE])
    assert v.verdict == "review" and v.score == 9


def _in_context_policy(**fraud):
    policy, _warnings = Policy.from_config({"classifier": {"weight": 5, "min_content_reject": 9, "categories": {"fraud": {
        "report": 0.4, "review": 0.55, "reject": 0.9, **fraud}}}}, {"fraud": None, "gambling": None})
    return policy


@pytest.mark.parametrize("ctx", [kw("KW_FRAUD_CTX_WARNING", "fraud", -8),
                                 Hit("KW_CTX_NOTICE_WARNING", None, "keyword", -6, "context", "x", (0, 1))])
def test_a_sure_classifier_reject_stands_in_warning_context_from_reject_in_context(ctx):
    """A scam script that borrows the warning's words ("this is the anti-fraud centre, do not tell
    anyone") is still refused when the head is sure of it; below the line, or without the setting,
    the warning context sends the message to a person."""
    policy = _in_context_policy(reject_in_context=0.98)
    sure = policy.classifier_hits(["fraud"], [0.99], content=40)
    v = policy.decide(sure + [ctx])
    assert v.verdict == "reject" and v.forced_by == "CLF_FRAUD"
    assert dict(v.reasons[0].threshold)["reject_in_context"] == 0.98
    assert "demoted" not in v.reasons[0].description
    unsure = policy.classifier_hits(["fraud"], [0.95], content=40)
    v = policy.decide(unsure + [ctx])
    assert v.verdict == "review" and "demoted from reject" in v.reasons[0].description
    unset = _in_context_policy().classifier_hits(["fraud"], [0.99], content=40)
    assert _in_context_policy().decide(unset + [ctx]).verdict == "review"


def test_reject_in_context_never_lifts_a_review_or_a_keyword_rule():
    policy = _in_context_policy(reject_in_context=0.9)
    ctx = kw("KW_FRAUD_CTX_WARNING", "fraud", -8)
    # a fragment too short to reject on stays review, and a warning still drops that review
    short = policy.classifier_hits(["fraud"], [0.99], content=6)
    assert short[0].action == "review"
    assert policy.decide(short + [ctx]).verdict != "reject"
    # a forced keyword rule in a warning goes to a person whatever the classifier's setting
    named = Hit("KW_FRAUD_SAFE_ACCOUNT", "fraud", "keyword", 10, "reject", "x", (0, 1))
    assert policy.decide([named, ctx]).verdict == "review"


@pytest.mark.parametrize("fraud", [{"reject_in_context": 0.8}, {"reject_in_context": 1.2},
                                   {"reject_in_context": "sure"}])
def test_reject_in_context_validation(fraud):
    with pytest.raises(ValueError, match="reject_in_context"):
        _in_context_policy(**fraud)


def test_a_sure_head_rejects_a_short_message_from_short_reject():
    """Under min_content_reject units the classifier alone sends to review, unless a category
    head reaches the language's short_reject; the aggregate head never rejects short this way."""
    from types import SimpleNamespace

    p, _ = Policy.from_config({"classifier": {
        "min_content_reject": 9, "languages": {"en": {"short_reject": 0.99}},
        "categories": {"abuse": {"report": 0.4, "review": 0.4, "reject": 0.9}},
        "prohibited_head": {"reject": 0.9, "min_category": 0.0}}}, None, ())
    en, zh = SimpleNamespace(lang="en", units=8), SimpleNamespace(lang="zh", units=8)
    (h,) = p.classifier_hits(("abuse",), [0.995], content=en)
    assert h.action == "reject" and "only 8 of 9 content units, but >= 0.99" in h.description
    assert dict(h.threshold)["short_reject"] == 0.99
    v = p.decide([h])
    assert v.verdict == "reject" and "short_reject threshold 0.99" in v.to_dict()["explanation"]["decision"]["text"]
    (h,) = p.classifier_hits(("abuse",), [0.98], content=en)
    assert h.action == "review" and "short_reject" not in dict(h.threshold)
    (h,) = p.classifier_hits(("abuse",), [0.995], content=zh)          # no short_reject for zh
    assert h.action == "review"
    (h,) = p.classifier_hits(("abuse", "prohibited"), [0.5, 0.999], content=en)  # the aggregate head's
    assert h.action == "review"


@pytest.mark.parametrize("doc", [{"short_reject": 1.5}, {"short_reject": "high"},
                                 {"languages": {"en": {"short_reject": -0.1}}}])
def test_short_reject_validation(doc):
    with pytest.raises(ValueError, match="short_reject"):
        Policy.from_config({"classifier": doc}, None, ())
