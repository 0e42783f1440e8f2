"""Feedback on verdicts as an item type of the review queue (issue 16, item 2): listed beside
templates and signatures, filtered, claimed on opening, decided on its own page, then on to the
next item; never bulk-decided."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.store.records import Feedback, TrainingExample

from .conftest import GAMBLING, PASSWORD, csrf_of


@pytest.fixture
def second(app, db):
    """A second reviewer, sam, signed in (English pages)."""
    from app.services import users
    from app.web.i18n import COOKIE

    with db.session() as s:
        users.create(s, "sam", PASSWORD, "reviewer", actor="test")
    c = app.test_client()
    c.set_cookie(COOKIE, "en")
    r = c.post("/login", data={"username": "sam", "password": PASSWORD, "csrf_token": csrf_of(c.get("/login").text)})
    assert r.status_code == 302
    return c


def _file(tenant, text: str, expected: str, **extra) -> int:
    r = tenant.post("/v1/feedback", {"text": text, "expected": expected, **extra})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _row(page: str, fid: int) -> str:
    m = re.search(rf'<tr data-href="[^"]*/review/feedback/{fid}[^"]*".*?</tr>', page, re.S)
    assert m, f"feedback #{fid} is not a row of the queue"
    return m.group(0)


def test_feedback_is_listed_in_the_queue_with_what_was_expected(web, tenant):
    missed = _file(tenant, "加我薇信 bc8866 带你上岸回血", "reject", category="gambling", note="a casino ad got through")
    held = _file(tenant, GAMBLING, "allow", note="our hotel's casino floor")
    page = web.get("/review/").text
    assert re.search(r'href="/review/\?type=feedback"[^>]*>\s*Feedback <span class="count">2</span>', page)
    row = _row(page, missed)
    assert f"feedback #{missed}" in row and 'name="sel"' not in row  # decided one by one, never in bulk
    # the engine's verdict then (whatever the model in force said), then what the sender expected
    engine = re.search(r'<span class="verdict verdict-(\w+)">(\w+)</span>\s*<span class="arrow"[^>]*>→</span> '
                       r'<span class="verdict verdict-reject">reject</span>', row)
    assert engine and engine.group(1) in ("allow", "review", "reject")
    assert 'cat-gambling' in row and "ACME" in row
    # "should have been stopped" ranks above "should have gone" (risk order)
    assert page.index(f"/review/feedback/{missed}") < page.index(f"/review/feedback/{held}")
    # the type tab and the filters narrow to feedback
    only = web.get("/review/", query_string={"type": "feedback"}).text
    assert f"/review/feedback/{missed}" in only and f"/review/feedback/{held}" in only
    assert "/review/template/" not in only
    cat = web.get("/review/", query_string={"type": "feedback", "category": "gambling"}).text
    assert f"/review/feedback/{missed}" in cat and f"/review/feedback/{held}" not in cat
    assert f"/review/feedback/{held}" not in web.get("/review/", query_string={"account": "BETA"}).text
    assert f"/review/feedback/{missed}" in web.get("/review/", query_string={"q": "bc8866"}).text


def test_decided_in_the_queue_then_on_to_the_next(web, tenant, db):
    first = _file(tenant, "加我薇信 bc8866 带你上岸回血", "reject", category="gambling")
    nxt = _file(tenant, "加我薇信 qq7788 稳赚不赔", "reject", category="gambling")
    page = web.get(f"/review/feedback/{first}", query_string={"type": "feedback"})
    assert page.status_code == 200
    html = page.text
    assert "You hold this feedback" in html and f'id="fb-decide-{first}"' in html
    assert 'id="next-link"' in html and f"/review/feedback/{nxt}" in html
    r = web.post(f"/review/feedback/{first}/decision?type=feedback", data={
        "csrf_token": csrf_of(html), "back": "queue", "decision": "accept", "action": ["training_example"],
        "note": "a gambling ad"})
    assert r.status_code == 302 and f"/review/feedback/{nxt}" in r.headers["Location"]
    assert "type=feedback" in r.headers["Location"]  # the queue's filters carried on
    assert f"Accepted feedback #{first}" in web.get(r.headers["Location"]).text
    with db.session() as s:
        fb = s.get(Feedback, first)
        assert fb.status == "accepted" and fb.decided_by == "user:rita"
        ex = s.scalars(sa.select(TrainingExample)).one()
        assert ex.labels == ["gambling"] and ex.ref == f"feedback:{first}"
    # the decided item leaves the queue
    assert f"/review/feedback/{first}" not in web.get("/review/").text
    # the last one decided: back to the (empty) queue
    html = web.get(f"/review/feedback/{nxt}").text
    r = web.post(f"/review/feedback/{nxt}/decision", data={"csrf_token": csrf_of(html), "back": "queue",
                                                           "decision": "dismiss"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/review/")


def test_a_claimed_feedback_item_is_not_decided_by_another(web, second, tenant, db, reviewer):
    fid = _file(tenant, "加我薇信 bc8866 带你上岸回血", "reject", category="gambling")
    assert web.get(f"/review/feedback/{fid}").status_code == 200  # rita opens it: her claim
    page = second.get("/review/").text
    assert "claimed by rita" in _row(page, fid)
    theirs = second.get(f"/review/feedback/{fid}").text
    assert "Claimed by rita" in theirs and f'id="fb-decide-{fid}"' not in theirs  # no form to decide it
    r = second.post(f"/review/feedback/{fid}/decision", data={"csrf_token": csrf_of(theirs), "back": "queue",
                                                             "decision": "dismiss"})
    assert r.status_code == 302 and "claimed by rita" in second.get(r.headers["Location"]).text
    # the API honours the claim too: 409, the feedback still pending
    r = reviewer.post(f"/v1/feedback/{fid}/decision", {"decision": "dismiss"})
    assert r.status_code == 409 and r.json["claimed_by"] == "rita"
    with db.session() as s:
        assert s.get(Feedback, fid).status == "pending"
    # rita releases it: now sam decides it
    mine = web.get(f"/review/feedback/{fid}").text
    web.post(f"/review/feedback/{fid}/claim", data={"csrf_token": csrf_of(mine), "action": "release"})
    theirs = second.get(f"/review/feedback/{fid}").text
    r = second.post(f"/review/feedback/{fid}/decision", data={"csrf_token": csrf_of(theirs), "decision": "dismiss"})
    with db.session() as s:
        assert s.get(Feedback, fid).status == "dismissed"


def test_feedback_rows_are_not_bulk_decided(web, tenant, db):
    fid = _file(tenant, "加我薇信 bc8866 带你上岸回血", "reject", category="gambling")
    token = csrf_of(web.get("/review/").text)
    r = web.post("/review/bulk", data={"csrf_token": token, "decision": "reject", "reason": "spam",
                                       "sel": f"feedback:{fid}:{fid}:1"})
    assert r.status_code == 400
    with db.session() as s:
        assert s.get(Feedback, fid).status == "pending"


def test_unknown_feedback_page_is_404(web):
    assert web.get("/review/feedback/999999").status_code == 404


def test_a_template_page_lists_the_accounts_pending_feedback(web, tenant, db):
    """The account context of a template's page names the account's pending feedback and links
    to its own page."""
    from app.store.models import Signature, Template

    fid = _file(tenant, "加我薇信 bc8866 带你上岸回血", "reject", category="gambling")
    with db.session() as s:
        sig = Signature(account_id="ACME", name="阿克米", status="approved")
        s.add(sig)
        s.flush()
        tpl = Template(account_id="ACME", signature_id=sig.id, type="notification", content="您的订单已发货",
                       variables={}, status="pending")
        s.add(tpl)
        s.flush()
        tid = tpl.id
    page = web.get(f"/review/template/{tid}").text
    m = re.search(r'<ul class="ctx-list" id="account-pending">.*?</ul>', page, re.S)
    assert m and f'href="/review/feedback/{fid}"' in m.group(0) and f"feedback #{fid}" in m.group(0)
