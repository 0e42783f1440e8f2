"""The shipped engine (rules and model) through the API: a police-impersonation script that
borrows the anti-fraud centre's own warning words is refused, and the reason says why the warning
context did not demote it (rules/policy.yaml fraud ``reject_in_context``)."""
from __future__ import annotations

SCRIPT = ("您好，这里是市公安局反诈中心，您的身份证涉嫌一起洗钱案，案件编号GA2026-0318，请下载会议软件配合"
          "视频笔录，并将名下资金转入安全账户核查，谨防泄密，不要告诉家人。")


def test_a_scam_script_in_warning_words_is_rejected_and_says_why(app, tenant):
    r = tenant.post("/v1/moderate", {"text": SCRIPT})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["verdict"] == "reject" and body["forced_by"] == "CLF_FRAUD"
    # the warning wording is there and is shown as such
    assert any(x["rule"] == "KW_FRAUD_CTX_WARNING" and x["score"] < 0 for x in body["reasons"])
    (fraud,) = [x for x in body["reasons"] if x["rule"] == "CLF_FRAUD"]
    assert fraud["action"] == "reject" and "demoted" not in fraud["description"]
    assert fraud["score"] >= fraud["threshold"]["reject_in_context"]
    assert "does not demote" in body["explanation"]["decision"]["text"]
    assert "fraud.impersonation_authority" in body["subcategories"]
    props = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]["ClassifierThreshold"]["properties"]
    assert "reject_in_context" in props


def test_the_same_words_as_a_real_notice_are_not_rejected(app, tenant):
    notice = ("【市公安局反诈中心】公安机关不会通过电话、视频办案，不存在安全账户，凡是要求下载会议软件、"
              "转账核查资金的都是诈骗，请谨防上当。")
    r = tenant.post("/v1/moderate", {"text": notice})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["verdict"] != "reject", r.get_json()
