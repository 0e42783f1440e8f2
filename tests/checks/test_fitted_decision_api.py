"""The shipped engine (rules and model) through the API: what the fitted second-level decision
(rules/policy.yaml classifier.prohibited_head.fitted) tells the caller."""
from __future__ import annotations


def test_the_api_gives_the_fitted_decisions_figures(app, tenant):
    """The shipped policy decides with the fitted decision (rules/policy.yaml
    prohibited_head.fitted): a reason it decided carries its score beside the aggregate head's
    probability, and the schema documents both keys."""
    # deaf people told to stay out of sight and their shops shunned: the hate head alone (review
    # from 0.95, reject from 0.98) is not sure enough, the decision is
    r = tenant.post("/v1/moderate", {"text": "聋哑人别出来丢人现眼，开什么店，谁进去谁倒霉"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "CLF_HATE"
    (hate,) = [x for x in body["reasons"] if x["rule"] == "CLF_HATE"]
    th = hate["threshold"]
    assert hate["score"] < th["reject"] and th["decision"] >= th["prohibited_reject"]
    assert 0 <= th["prohibited"] <= 1 and "fitted decision" in hate["description"]
    assert "the fitted decision" in body["explanation"]["decision"]["text"]
    props = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]["ClassifierThreshold"]["properties"]
    assert {"decision", "confirm_review", "prohibited", "confirm"} <= set(props)
