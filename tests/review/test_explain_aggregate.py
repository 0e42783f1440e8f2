"""The explanation on the review pages names the aggregate head when it decided a reason
(rules/policy.yaml classifier.prohibited_head): rejecting with the most likely category, or
holding a category's reject back to review."""
from __future__ import annotations

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


def test_the_page_says_the_aggregate_head_rejected(app):
    p = _policy()
    v = p.decide(p.classifier_hits(["abuse", "hate", "marketing", "prohibited"], [0.55, 0.3, 0.0, 0.9], content=20))
    assert v.verdict == "reject"
    html = _render(app, v)
    assert "any prohibited category 0.9, rejecting from 0.85 with the most likely category (at least 0.5)" in html


def test_the_page_says_the_aggregate_head_held_a_reject_back(app):
    p = _policy()
    v = p.decide(p.classifier_hits(["abuse", "hate", "marketing", "prohibited"], [0.8, 0.0, 0.0, 0.1], content=20))
    assert v.verdict == "review"
    html = _render(app, v)
    assert "any prohibited category only 0.1, below the 0.3 a reject needs: review" in html
