"""The explanation on the review pages names the aggregate head when it decided a reason
(rules/policy.yaml classifier.prohibited_head): rejecting with the most likely category, or
holding a category's reject back to review."""
from __future__ import annotations

import pytest

from app.engine.policy import Policy


def _policy():
    policy, _ = Policy.from_config({
        "informational": ["marketing"],
        "classifier": {"categories": {"abuse": {"report": 0.4, "review": 0.4, "reject": 0.7}},
                       "prohibited_head": {"reject": 0.85, "min_category": 0.5, "confirm": 0.3}},
    }, {"abuse": None, "hate": None, "marketing": None})
    return policy


def _render(app, verdict) -> str:
    with app.test_request_context("/?lang=en"):
        macro = app.jinja_env.get_template("_explain.html").module.explain
        return str(macro(verdict.to_dict()))


@pytest.mark.parametrize("probs, verdict, sentence", [
    # sure it is prohibited, split between categories: rejects with the most likely one
    ([0.55, 0.3, 0.0, 0.9], "reject",
     "any prohibited category 0.9, rejecting from 0.85 with the most likely category (at least 0.5)"),
    # a category head sure of a message the aggregate head does not find prohibited: review
    ([0.8, 0.0, 0.0, 0.1], "review", "any prohibited category only 0.1, below the 0.3 a reject needs: review"),
])
def test_the_page_says_what_the_aggregate_head_did(app, probs, verdict, sentence):
    p = _policy()
    v = p.decide(p.classifier_hits(["abuse", "hate", "marketing", "prohibited"], probs, content=20))
    assert v.verdict == verdict
    assert sentence in _render(app, v)


def test_the_page_says_what_the_fitted_decision_did(app):
    """With prohibited_head.fitted the page names the fitted decision's score beside the aggregate
    head's probability: a reject it made, a reject it held back, a review it held back."""
    policy, _ = Policy.from_config({
        "informational": ["marketing"],
        "classifier": {"categories": {"abuse": {"report": 0.4, "review": 0.4, "reject": 0.7}},
                       "prohibited_head": {"reject": 0.8, "min_category": 0.0, "confirm": 0.3, "confirm_review": 0.2,
                                           "fitted": {"bias": 0.0, "weights": {"prohibited": 1.0}}}},
    }, {"abuse": None, "hate": None, "marketing": None})
    labels = ["abuse", "hate", "marketing", "prohibited"]
    # decision = p_any here (weight 1 on its log-odds, no bias)
    v = policy.decide(policy.classifier_hits(labels, [0.35, 0.3, 0.0, 0.9], content=20))
    assert v.verdict == "reject"
    assert "fitted decision 0.9 (any prohibited category 0.9), rejecting from 0.8" in _render(app, v)
    v = policy.decide(policy.classifier_hits(labels, [0.8, 0.0, 0.0, 0.25], content=20))
    assert v.verdict == "review"
    assert "fitted decision only 0.25 (any prohibited category 0.25), below the 0.3 a reject needs" in _render(app, v)
    # abuse 0.5 would force review; the decision at 0.1 < 0.2 leaves it a score
    hits = policy.classifier_hits(labels, [0.5, 0.0, 0.0, 0.1], content=20)
    assert [h.action for h in hits] == [None]
    v = policy.decide(hits)
    assert v.verdict == "allow"
    assert "fitted decision only 0.1, below the 0.2 a forced review needs: score only" in _render(app, v)
