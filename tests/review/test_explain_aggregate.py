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
