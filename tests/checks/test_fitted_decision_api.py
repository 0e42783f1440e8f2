"""The shipped engine (rules and model) through the API: what the fitted second-level decision
(rules/policy.yaml classifier.prohibited_head.fitted) tells the caller."""
from __future__ import annotations


def test_the_api_gives_the_fitted_decisions_figures(app, tenant):
    """The shipped policy decides with the fitted decision (rules/policy.yaml
    prohibited_head.fitted): a reason it decided carries its score beside the aggregate head's
    probability, and the schema documents both keys."""
    # a slur against a region's people: the hate head alone is not sure, the decision is; 8 content
    # units are a fragment, so the decision's reject becomes review
    r = tenant.post("/v1/moderate", {"text": "Southerners are all inbred hicks, never hire one"})
    assert r.status_code == 200, r.get_json()
    (hate,) = [x for x in r.get_json()["reasons"] if x["rule"] == "CLF_HATE"]
    th = hate["threshold"]
    assert th["decision"] >= th["prohibited_reject"] and 0 <= th["prohibited"] <= 1
    assert th["units"] == 8 and hate["action"] == "review"
    assert "fitted decision" in hate["description"]
    props = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]["ClassifierThreshold"]["properties"]
    assert {"decision", "confirm_review", "prohibited", "confirm"} <= set(props)
