"""The dashboard and the feedback page with Flask's test client."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.services import checks
from app.store.models import CustomTerm
from app.store.records import TrainingExample

from .conftest import GAMBLING, csrf_of, item

NOW = datetime.now(UTC).replace(minute=10, second=0, microsecond=0)


def _seed(db):
    items = [item(NOW - timedelta(hours=h), "ACME" if h % 2 else "BETA", v, c, r)
             for h, (v, c, r) in enumerate([("allow", [], []), ("reject", ["gambling"], ["KW_GAMBLING_CASINO"]),
                                            ("review", ["fraud"], ["CLF_FRAUD"]), ("allow", [], [])] * 5)]
    checks.store(db, items, "full", "test-secret")
    return items


def test_pages_need_a_reviewer(app):
    c = app.test_client()
    for path in ("/dashboard", "/review/feedback"):
        r = c.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_dashboard_shows_the_figures(web, db, tenant, beta):
    items = _seed(db)
    r = web.get("/dashboard")
    assert r.status_code == 200
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    page = r.text
    assert 'style="' not in page and "<script>" not in page  # the CSP allows neither
    assert re.search(r'id="kpi-checks">20<', page)
    assert re.search(r'id="kpi-reject">5<', page) and "25.0%" in page
    assert 'id="volume-chart"' in page and page.count('class="v-reject"') >= 5
    assert 'data-name="gambling"' in page and 'data-name="KW_GAMBLING_CASINO"' in page
    assert 'data-name="ACME"' in page and 'data-name="BETA"' in page
    one = web.get("/dashboard", query_string={"account": "ACME", "range": "24h"}).text
    acme = sum(1 for i in items if i.account_id == "ACME" and i.at >= NOW - timedelta(hours=24))
    assert re.search(rf'id="kpi-checks">{acme}<', one) and 'id="by-account"' not in one
    hourly = web.get("/dashboard", query_string={"range": "24h", "bucket": "hour"}).text
    assert hourly.count('<g class="bar">') in (24, 25)


def test_dashboard_bad_input_is_a_page_not_a_crash(web, db):
    for q in ({"from": "yesterday"}, {"from": "2026-01-01", "to": "2026-09-01"}, {"from": "2026-03-02", "to": "2026-03-01"},
              {"from": "2026-01-01", "to": "2026-02-01", "bucket": "hour"}):
        r = web.get("/dashboard", query_string=q)
        assert r.status_code == 422 and 'id="dash-error"' in r.text, q
    r = web.get("/dashboard", query_string={"range": "forever", "source": "x", "bucket": "y"})
    assert r.status_code == 200


def test_feedback_page_accepts_with_a_term_and_an_example(web, tenant, db):
    fb = tenant.post("/v1/feedback", {"text": GAMBLING, "expected": "allow", "note": "hotel casino"}).json
    page = web.get("/review/feedback").text
    assert f'id="feedback-{fb["id"]}"' in page and "hotel casino" in page
    assert 'name="allow_term" value="' in page  # a suggestion from the keyword that decided it
    token = csrf_of(page)
    # without the CSRF token: refused
    r = web.post(f"/review/feedback/{fb['id']}/decision", data={"decision": "accept"})
    assert r.status_code == 400
    r = web.post(f"/review/feedback/{fb['id']}/decision", data={
        "csrf_token": token, "decision": "accept", "action": ["account_allow_term", "training_example"],
        "allow_term": "澳门百家乐", "note": "ok for them"})
    assert r.status_code == 302
    page = web.get(r.headers["Location"]).text
    assert f"Accepted feedback #{fb['id']}" in page
    with db.session() as s:
        assert s.scalar(sa.select(CustomTerm.term).where(CustomTerm.kind == "allow")) == "澳门百家乐"
        assert s.scalar(sa.select(TrainingExample.ref)) == f"feedback:{fb['id']}"
    done = web.get("/review/feedback", query_string={"status": "accepted"}).text
    assert f'id="feedback-{fb["id"]}"' in done and "training example #" in done
    # deciding it again: a message, not a crash
    r = web.post(f"/review/feedback/{fb['id']}/decision", data={"csrf_token": token, "decision": "dismiss"})
    assert r.status_code == 302
    assert "already accepted" in web.get("/review/feedback").text
    assert web.post("/review/feedback/999999/decision", data={"csrf_token": token,
                                                              "decision": "dismiss"}).status_code == 404


def test_feedback_page_refuses_what_does_not_fit(web, tenant, db):
    fb = tenant.post("/v1/feedback", {"text": "你好", "expected": "reject"}).json
    token = csrf_of(web.get("/review/feedback").text)
    r = web.post(f"/review/feedback/{fb['id']}/decision", data={
        "csrf_token": token, "decision": "accept", "action": ["account_block_term"], "block_term": ""})
    assert r.status_code == 302
    assert "name the term" in web.get("/review/feedback").text
    r = web.post(f"/review/feedback/{fb['id']}/decision", data={"csrf_token": token, "decision": "dismiss"})
    assert "Dismissed feedback" in web.get(r.headers["Location"]).text


def test_pages_render_in_the_default_language(app, web_user, db, tenant):
    """No language chosen: the pages' default (Chinese); both pages render, forms included."""
    from .conftest import PASSWORD

    _seed(db)
    tenant.post("/v1/feedback", {"text": GAMBLING, "expected": "allow"})
    c = app.test_client()
    token = csrf_of(c.get("/login").text)
    assert c.post("/login", data={"username": web_user, "password": PASSWORD, "csrf_token": token}).status_code == 302
    for path in ("/dashboard", "/dashboard?range=24h&bucket=hour", "/review/feedback", "/review/feedback?status=accepted"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert 'lang="zh-Hans"' in r.text


@pytest.mark.parametrize("hour", [0, 12, 23])
def test_the_day_ranges_are_the_last_n_utc_days_today_included(hour):
    """At any hour (23:xx UTC too, when the current hour ends at midnight) "last 7 days" is 7 bars."""
    from app.web.dashboard import default_range

    now = datetime(2026, 12, 4, hour, 40, tzinfo=UTC)
    for rng, days in (("7d", 7), ("30d", 30)):
        start, end, bucket = default_range(now, rng, None)
        assert bucket == "day" and start == datetime(2026, 12, 4, tzinfo=UTC) - timedelta(days=days - 1)
        assert end == now.replace(minute=0) + timedelta(hours=1)
    start, end, bucket = default_range(now, "24h", None)
    assert bucket == "hour" and end - start == timedelta(hours=24) and start < now < end
