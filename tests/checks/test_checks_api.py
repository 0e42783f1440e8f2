"""GET /v1/checks and /v1/checks/<id>: filters, tenant isolation, cursor pagination, bad input."""
from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from app.services import checks

from .conftest import item, presend

NOW = datetime.now(UTC).replace(microsecond=0)
SECRET = "test-secret"  # tests/conftest.py settings


@pytest.fixture
def seeded(db, tenant, beta):
    """Records of ACME and BETA over the last two days (and one 40 days old)."""
    items = [
        item(NOW - timedelta(hours=1), "ACME", "allow", message_id="a-1", phone="+8613800000001"),
        item(NOW - timedelta(hours=2), "ACME", "reject", ["gambling"], ["KW_GAMBLING_CASINO"], message_id="a-2",
             phone="+8613800000002"),
        item(NOW - timedelta(hours=3), "ACME", "review", ["fraud"], ["PAT_URL", "CLF_FRAUD"], source="moderate",
             phone=None),
        item(NOW - timedelta(hours=30), "ACME", "reject", ["fraud", "gambling"], ["KW_FRAUD_X", "KW_GAMBLING_CASINO"],
             message_id="a-4", phone="+8613800000001"),
        item(NOW - timedelta(hours=2), "BETA", "reject", ["gambling"], ["KW_GAMBLING_CASINO"], message_id="b-1",
             phone="+8613800000001"),
        item(NOW - timedelta(hours=5), "BETA", "allow", message_id="a-1", phone="+8613800000009"),
        item(NOW - timedelta(days=40), "ACME", "reject", ["gambling"], ["KW_GAMBLING_CASINO"], message_id="old"),
    ]
    ids = checks.store(db, items, "full", SECRET)
    return dict(zip(["a1", "a2", "a3", "a4", "b1", "b2", "old"], ids))


def ids(resp) -> list[int]:
    assert resp.status_code == 200, resp.json
    return [it["id"] for it in resp.json["items"]]


def two_days():
    return {"from": (NOW - timedelta(days=2)).isoformat(), "to": (NOW + timedelta(minutes=1)).isoformat()}


def test_tenant_sees_only_its_own_checks(tenant, beta, seeded):
    assert ids(tenant.get("/v1/checks", query=two_days())) == [seeded[k] for k in ("a1", "a2", "a3", "a4")]
    assert ids(beta.get("/v1/checks", query=two_days())) == [seeded["b1"], seeded["b2"]]
    # naming another account, or reading another account's check: 404 (as if it did not exist)
    r = tenant.get("/v1/checks", query={"account": "BETA"})
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    r = tenant.get(f"/v1/checks/{seeded['b1']}")
    assert r.status_code == 404 and r.json["status"] == 404
    assert tenant.get(f"/v1/checks/{seeded['a2']}").status_code == 200
    # a tenant naming its own account is fine
    assert ids(tenant.get("/v1/checks", query={**two_days(), "account": "ACME"}))[0] == seeded["a1"]


def test_reviewers_see_every_account_and_may_name_one(reviewer, seeded, admin):
    assert len(ids(reviewer.get("/v1/checks", query=two_days()))) == 6
    assert ids(admin.get("/v1/checks", query={**two_days(), "account": "BETA"})) == [seeded["b1"], seeded["b2"]]
    assert ids(reviewer.get("/v1/checks", query={**two_days(), "account": "NOPE"})) == []


@pytest.mark.parametrize("query,expect", [
    ({"verdict": "reject"}, ["a2", "a4"]),
    ({"verdict": "review"}, ["a3"]),
    ({"category": "gambling"}, ["a2", "a4"]),
    ({"category": "fraud"}, ["a3", "a4"]),
    ({"rule": "KW_GAMBLING_CASINO"}, ["a2", "a4"]),
    ({"rule": "PAT_URL"}, ["a3"]),
    ({"message_id": "a-1"}, ["a1"]),
    ({"phone": "+8613800000001"}, ["a1", "a4"]),
    ({"phone": "13800000001"}, ["a1", "a4"]),  # national form, same number
    ({"source": "moderate"}, ["a3"]),
    ({"source": "presend", "verdict": "reject", "category": "gambling"}, ["a2", "a4"]),
    ({"category": "gambling", "rule": "KW_FRAUD_X"}, ["a4"]),
    ({"category": "politics"}, []),
    ({"phone": "+8613800000001", "category": "gambling"}, ["a4"]),
    ({"message_id": "a-2", "rule": "KW_GAMBLING_CASINO"}, ["a2"]),
    ({"rule": "CLF_FRAUD", "verdict": "reject"}, []),
])
def test_filters(tenant, seeded, query, expect):
    assert ids(tenant.get("/v1/checks", query={**two_days(), **query})) == [seeded[k] for k in expect]


def test_time_range_and_its_default(tenant, seeded):
    # default: the last 24 hours
    assert ids(tenant.get("/v1/checks")) == [seeded[k] for k in ("a1", "a2", "a3")]
    q = {"from": (NOW - timedelta(hours=2, minutes=30)).isoformat(), "to": (NOW - timedelta(minutes=90)).isoformat()}
    assert ids(tenant.get("/v1/checks", query=q)) == [seeded["a2"]]
    # no zone = UTC
    naive = {"from": (NOW - timedelta(hours=2, minutes=30)).replace(tzinfo=None).isoformat(),
             "to": (NOW - timedelta(minutes=90)).replace(tzinfo=None).isoformat()}
    assert ids(tenant.get("/v1/checks", query=naive)) == [seeded["a2"]]
    old = {"from": (NOW - timedelta(days=41)).isoformat(), "to": (NOW - timedelta(days=39)).isoformat()}
    assert ids(tenant.get("/v1/checks", query=old)) == [seeded["old"]]


@pytest.mark.parametrize("query,field", [
    ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),   # over 31 days
    ({"from": "yesterday"}, "query.from"),
    ({"verdict": "maybe"}, "query.verdict"),
    ({"rule": "not a rule"}, "query.rule"),
    ({"category": "nonsense"}, "category"),
    ({"phone": "12"}, "query.phone"),
    ({"phone": "+86 1 2 3"}, "phone"),
    ({"limit": "0"}, "query.limit"),
    ({"limit": "501"}, "query.limit"),
    ({"limit": "x"}, "query.limit"),
    ({"source": "audit"}, "query.source"),
    ({"colour": "blue"}, "query.colour"),
])
def test_bad_queries_are_422_problems(tenant, seeded, query, field):
    r = tenant.get("/v1/checks", query=query)
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json"
    assert field in r.json["errors"], r.json


def test_cursor_pages_have_no_duplicates_and_no_gaps(db, reviewer):
    # 57 records, many sharing the same time: order by (at, id) must still be total
    base = NOW - timedelta(hours=1)
    items = [item(base - timedelta(seconds=i // 4), "ACME" if i % 3 else "BETA", ["allow", "reject"][i % 2],
                  message_id=f"p-{i}") for i in range(57)]
    all_ids = checks.store(db, items, "full", SECRET)
    expected = [i for _, i in sorted(zip(items, all_ids), key=lambda p: (p[0].at, p[1]), reverse=True)]
    seen, cursor, pages = [], None, 0
    while True:
        q = {"limit": 10, "from": (NOW - timedelta(hours=3)).isoformat(), "to": NOW.isoformat()}
        if cursor:
            q["cursor"] = cursor
        r = reviewer.get("/v1/checks", query=q)
        page = ids(r)
        seen += page
        pages += 1
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        # a record arriving meanwhile (newer than the first page) never shifts the later pages
        checks.store(db, [item(NOW - timedelta(minutes=1), message_id=f"late-{pages}")], "full", SECRET)
    assert pages == 6
    assert seen == expected and len(set(seen)) == 57


def test_cursor_with_filters(tenant, seeded):
    q = {**two_days(), "limit": 1, "verdict": "reject"}
    r = tenant.get("/v1/checks", query=q)
    assert ids(r) == [seeded["a2"]]
    r2 = tenant.get("/v1/checks", query={**q, "cursor": r.json["next_cursor"]})
    assert ids(r2) == [seeded["a4"]] and r2.json["next_cursor"] is None


def test_cursor_through_a_category_across_accounts(db, reviewer, tenant):
    base = NOW - timedelta(hours=2)
    items = [item(base - timedelta(seconds=i // 3), ("ACME", "BETA", None)[i % 3], "reject",
                  ["gambling"] if i % 2 else ["fraud"], ["KW_X"], message_id=f"g-{i}") for i in range(40)]
    all_ids = checks.store(db, items, "full", SECRET)
    want = [i for it, i in sorted(zip(items, all_ids), key=lambda p: (p[0].at, p[1]), reverse=True)
            if "gambling" in it.verdict["categories"]]
    for client, acct, expect in ((reviewer, None, want),
                                 (tenant, "ACME", [i for it, i in zip(items, all_ids) if it.account_id == "ACME"
                                                   and "gambling" in it.verdict["categories"]])):
        seen, cursor = [], None
        while True:
            q = {"limit": 4, "category": "gambling", "from": (NOW - timedelta(hours=3)).isoformat(),
                 "to": NOW.isoformat(), **({"cursor": cursor} if cursor else {})}
            r = client.get("/v1/checks", query=q)
            seen += ids(r)
            cursor = r.json["next_cursor"]
            if not cursor:
                break
        assert seen == [i for i in want if i in set(expect)], acct


def test_tampered_or_foreign_cursors_are_400(tenant, seeded):
    q = {**two_days(), "limit": 1}
    cur = tenant.get("/v1/checks", query=q).json["next_cursor"]
    raw = base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4))
    forged = raw.replace(str(seeded["a1"]).encode(), str(seeded["a1"] + 1000).encode())
    bad = [
        cur[:-2] + ("AA" if not cur.endswith("AA") else "BB"),
        base64.urlsafe_b64encode(forged).decode().rstrip("="),
        "not-a-cursor",
        "%%%",
        "A" * 399,
    ]
    for c in bad:
        r = tenant.get("/v1/checks", query={**q, "cursor": c})
        assert r.status_code == 400, (c, r.json)
        assert r.mimetype == "application/problem+json" and "cursor" in r.json["errors"]
    # a real cursor with other filters: 400 too
    r = tenant.get("/v1/checks", query={**q, "verdict": "reject", "cursor": cur})
    assert r.status_code == 400


def test_detail_has_the_full_verdict(tenant, acme_template, flush):
    # the pre-send answer is short (no explanation) unless asked; the record always has it
    answer = presend(tenant, acme_template, message_id="m-d")
    explained = presend(tenant, acme_template, phone="+8613800138001", message_id="m-e", explain=True)
    assert "explanation" not in answer and explained["explanation"]["decision"]
    flush()
    [it] = tenant.get("/v1/checks", query={"message_id": "m-d"}).json["items"]
    d = tenant.get(f"/v1/checks/{it['id']}").json
    for k in ("verdict", "categories", "score", "reasons", "ruleset_version", "model_version", "forced_by"):
        assert d["result"][k] == answer[k]
    assert d["result"]["explanation"] == explained["explanation"]
    assert d["message_id"] == "m-d" and d["template_id"] == acme_template and d["complaints"] == []
    assert d["feedback"] == []


@pytest.mark.parametrize("explain", ["yes", 1, None, [True]])
def test_explain_must_be_a_boolean(tenant, acme_template, explain):
    body = {"template_id": acme_template, "phone": "+8613800138000", "params": {"code": "482915"},
            "explain": explain}
    r = tenant.post("/v1/messages/check", body)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert "explain" in r.json["errors"]


@pytest.mark.parametrize("path", ["/v1/checks/0", "/v1/checks/99999999", "/v1/checks/9223372036854775807",
                                  "/v1/checks/9223372036854775808", "/v1/checks/-1", "/v1/checks/abc"])
def test_unknown_ids_are_404(tenant, path):
    r = tenant.get(path)
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_roles(make_client, seeded):
    platform = make_client("platform")
    assert platform.get("/v1/checks").status_code == 403
    assert platform.get(f"/v1/checks/{seeded['a1']}").status_code == 403


def test_openapi_documents_the_routes(app):
    spec = app.test_client().get("/openapi.json").json
    for path in ("/v1/checks", "/v1/checks/{check_id}", "/v1/stats", "/v1/feedback", "/v1/feedback/{feedback_id}",
                 "/v1/feedback/{feedback_id}/decision"):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/v1/checks"]["get"]["parameters"]}
    assert {"from", "to", "account", "verdict", "category", "rule", "message_id", "phone", "cursor", "limit"} <= params


@pytest.mark.parametrize("query", [{"message_id": "a\x00b"}, {"phone": "+86\x00138"}, {"category": "\x00"},
                                   {"account": "A\x00"}, {"rule": "AB\x00"}, {"cursor": "\x00"}])
def test_nul_characters_are_422_not_500(reviewer, query):
    r = reviewer.get("/v1/checks", query=query)
    assert r.status_code in (400, 422) and r.mimetype == "application/problem+json"


@pytest.mark.parametrize("query", [{"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T05:00:00Z"},
                                   {"to": "0001-01-01T00:00:00"},
                                   {"from": "9999-12-31T23:00:00Z", "to": "9999-12-31T23:59:59Z"}])
def test_far_dates_are_no_500(reviewer, query):
    for path in ("/v1/checks", "/v1/stats"):
        r = reviewer.get(path, query=query)
        assert r.status_code == 422 and ("from" in r.json["errors"] or "to" in r.json["errors"]), r.json


def test_a_text_with_a_nul_is_recorded(tenant, db, flush):
    assert tenant.post("/v1/moderate", {"text": "百家乐\x00上线"}).status_code == 200
    flush()
    [it] = tenant.get("/v1/checks").json["items"]
    assert it["text"] == "百家乐\ufffd上线"
    assert tenant.post("/v1/feedback", {"text": "a\x00b", "expected": "allow"}).status_code == 422
