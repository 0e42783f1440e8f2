"""The review queue as a workbench (issue 15, item 1): verdict, score and category columns, risk
and age orders, filters, search, pagination, identical texts grouped, bulk decisions."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.store.models import Event, ReviewDecision, Template

from .conftest import csrf_of
from .workbench_helpers import row_ids, seed, sel_values, sign_in


@pytest.fixture
def rita(app, db):
    return sign_in(app, db, "rita")


@pytest.fixture
def bob(app, db):
    return sign_in(app, db, "bob")


def _flashes(page: str) -> str:
    return html.unescape(" ".join(re.findall(r'<li class="flash [a-z]+" role="status">(.*?)</li>', page, re.S)))


def _status(db, tid: int) -> str:
    with db.session() as s:
        return s.get(Template, tid).status


def test_rows_show_the_engine_verdict_score_and_categories(rita, db):
    tid = seed(db, content="澳门百家乐，首充送88", outcome="review", categories=("gambling",), score=6.5)
    page = rita.get("/review/").text
    row = page.split(f"template #{tid}</a>", 1)[1].split("</tr>", 1)[0]
    assert 'class="verdict verdict-review flagged"' in row
    assert '<td class="num">6.5</td>' in row
    assert "cat-gambling" in row and "KW_TEST" in row
    assert 'href="/accounts/"' in page  # the way to the accounts pages (the nav)


def test_risk_order_puts_what_the_engine_rejects_first_then_score_then_age(rita, db):
    allow_old = seed(db, content="普通通知一", outcome="allow", score=0, age=timedelta(days=3))
    review_lint = seed(db, content="普通通知二", outcome="review", score=5, age=timedelta(days=2))
    flagged_low = seed(db, content="可疑内容一", outcome="review", categories=("fraud",), score=5, age=timedelta(days=1))
    flagged_high = seed(db, content="可疑内容二", outcome="review", categories=("fraud",), score=8)
    reject = seed(db, content="禁止内容", outcome="reject", categories=("gambling",), score=12)
    marketing = seed(db, content="营销通知", outcome="review", categories=("marketing",), score=5,
                     age=timedelta(hours=1))
    order = row_ids(rita.get("/review/").text)
    assert order == [f"template #{i}" for i in (reject, flagged_high, flagged_low, review_lint, marketing, allow_old)]
    # oldest first on demand; an unknown sort is the default, never an error
    assert row_ids(rita.get("/review/?sort=age").text) == [
        f"template #{i}" for i in (allow_old, review_lint, flagged_low, marketing, flagged_high, reject)]
    r = rita.get("/review/?sort=bogus")
    assert r.status_code == 200 and row_ids(r.text) == order


def test_filters_by_verdict_category_account_and_type(rita, db, tenant):
    a = seed(db, account="ACME", content="一号", outcome="review", categories=("fraud",))
    b = seed(db, account="OTHER", content="二号", outcome="allow", score=0)
    c = seed(db, account="OTHER", content="三号", outcome="review", categories=("gambling", "marketing"))
    assert row_ids(rita.get("/review/?verdict=allow").text) == [f"template #{b}"]
    assert set(row_ids(rita.get("/review/?verdict=review").text)) == {f"template #{a}", f"template #{c}"}
    assert row_ids(rita.get("/review/?category=gambling").text) == [f"template #{c}"]
    assert row_ids(rita.get("/review/?account=OTHER&verdict=review").text) == [f"template #{c}"]
    assert row_ids(rita.get("/review/?type=signature").text) == []
    page = rita.get("/review/").text
    # the menus count the whole queue
    assert re.search(r'value="review"\s*>review \(2\)', page) and re.search(r'value="allow"\s*>allow \(1\)', page)
    assert "gambling (1)" in page and "fraud (1)" in page
    # unknown values are dropped, not errors
    assert len(row_ids(rita.get("/review/?verdict=maybe&category=Bad%20Cat").text)) == 3


def test_search_finds_a_substring_in_sql_and_bounds_the_input(rita, db):
    hit = seed(db, content="您的快递已到 Hub 站，取件码 50%折扣")
    miss = seed(db, content="会议改到周三下午")
    assert row_ids(rita.get("/review/", query_string={"q": "快递"}).text) == [f"template #{hit}"]
    assert row_ids(rita.get("/review/", query_string={"q": "hub"}).text) == [f"template #{hit}"]  # any case
    # LIKE wildcards are plain characters in a search
    assert row_ids(rita.get("/review/", query_string={"q": "50%"}).text) == [f"template #{hit}"]
    assert row_ids(rita.get("/review/", query_string={"q": "%"}).text) == [f"template #{hit}"]
    assert row_ids(rita.get("/review/", query_string={"q": "_"}).text) == []
    # the signature name counts as text too
    assert f"template #{miss}" in row_ids(rita.get("/review/", query_string={"q": "签名"}).text)
    r = rita.get("/review/", query_string={"q": "x" * 10_000})
    assert r.status_code == 400 and "at most 200 characters" in r.text
    r = rita.get("/review/", query_string={"q": "快\x00递"})
    assert r.status_code == 200 and row_ids(r.text) == [f"template #{hit}"]


def test_pagination_is_server_side_and_bad_pages_fall_back(rita, db):
    ids = [seed(db, content=f"第{i}条通知内容", score=float(i % 7), age=timedelta(minutes=i)) for i in range(121)]
    first = rita.get("/review/").text
    assert "121 pending items" in first and "Page 1 of 3" in first
    seen = []
    for n in (1, 2, 3):
        rows = row_ids(rita.get(f"/review/?page={n}").text)
        assert len(rows) == (50 if n < 3 else 21)
        seen += rows
    assert sorted(seen) == sorted(f"template #{i}" for i in ids)  # every item once, none twice
    assert row_ids(rita.get("/review/?page=99").text) == row_ids(rita.get("/review/?page=3").text)
    for bad in ("-1", "abc", "0", "1e9", "99999999999999999999", "", "²", "٣"):
        r = rita.get(f"/review/?page={bad}")
        assert r.status_code == 200 and row_ids(r.text) == row_ids(first)
    # filters and sort survive paging
    page2 = rita.get("/review/?page=2&sort=age").text
    assert 'href="/review/?sort=age&amp;page=3"' in page2 or 'href="/review/?page=3&amp;sort=age"' in page2


def test_identical_texts_are_one_row_with_a_count_and_the_accounts(rita, db):
    text = "【验证】您的验证码是1234，请勿告诉他人"
    g = [seed(db, account=a, content=text, outcome="review", categories=("fraud",), score=6)
         for a in ("ACME", "BETA", "GAMMA")]
    single = seed(db, account="ACME", content="另一条通知")
    page = rita.get("/review/").text
    assert row_ids(page) == [f"template #{g[0]}", f"template #{single}"]
    row = page.split(f"template #{g[0]}</a>", 1)[1].split("</tr>", 1)[0]
    assert "×3" in row and all(a in row for a in ("ACME", "BETA", "GAMMA"))
    assert "4 pending items" in page and "in 2 rows" in page
    # the group opens its first item, which lists the others
    item = rita.get(f"/review/template/{g[0]}").text
    assert "2 other pending submissions of this text" in item
    # a filter narrows the group too
    assert "×3" not in rita.get("/review/?account=BETA").text


def test_bulk_reject_of_a_group_decides_every_item_with_its_own_decision_and_event(rita, db):
    text = "恭喜中奖，点击领取"
    g = [seed(db, account=a, content=text, outcome="review", categories=("fraud",), score=7) for a in ("A1", "A2", "A3")]
    keep = seed(db, content="保留的通知")
    page = rita.get("/review/").text
    values = sel_values(page)
    r = rita.post("/review/bulk", data={"csrf_token": csrf_of(page), "decision": "reject", "reason": "诈骗内容",
                                        "sel": [values[f"template #{g[0]}"]]})
    assert r.status_code == 302
    assert "Rejected 3 items." in _flashes(rita.get(r.headers["Location"]).text)
    assert [_status(db, i) for i in g] == ["rejected"] * 3 and _status(db, keep) == "pending"
    with db.session() as s:
        for i in g:
            d = s.scalars(sa.select(ReviewDecision).where(ReviewDecision.subject_type == "template",
                                                          ReviewDecision.subject_id == i)).all()[-1]
            assert (d.decision, d.actor, d.reason) == ("reject", "user:rita", "诈骗内容")
            assert s.scalar(sa.select(sa.func.count()).select_from(Event).where(
                Event.kind == "template.rejected", Event.subject == f"template:{i}")) == 1


def test_bulk_reject_needs_a_reason(rita, db):
    tid = seed(db)
    page = rita.get("/review/").text
    r = rita.post("/review/bulk", data={"csrf_token": csrf_of(page), "decision": "reject", "reason": "  ",
                                        "sel": list(sel_values(page).values())})
    assert "needs a reason" in _flashes(rita.get(r.headers["Location"]).text)
    assert _status(db, tid) == "pending"


def test_bulk_approve_with_a_flagged_item_needs_the_second_confirmation(rita, db):
    clean = seed(db, content="您的订单已发货", outcome="allow", score=0)
    lint = seed(db, content="本周会员日", outcome="review", categories=("marketing",), score=5)
    flagged = seed(db, content="高额回报，稳赚不赔", outcome="review", categories=("fraud",), score=7)
    page = rita.get("/review/").text
    assert re.search(r'data-flagged="1"[^>]*>\s*<td class="sel-col"><input type="checkbox" name="sel" value="template:'
                     + str(flagged), page)
    sel = list(sel_values(page).values())
    token = csrf_of(page)
    r = rita.post("/review/bulk", data={"csrf_token": token, "decision": "approve", "sel": sel})
    msg = _flashes(rita.get(r.headers["Location"]).text)
    assert "1 of the selected items were flagged" in msg and "fraud" in msg and "Nothing was decided" in msg
    assert {_status(db, i) for i in (clean, lint, flagged)} == {"pending"}
    # informational categories (marketing) alone do not need it
    r = rita.post("/review/bulk", data={"csrf_token": token, "decision": "approve",
                                        "sel": [sel_values(page)[f"template #{i}"] for i in (clean, lint)]})
    assert "Approved 2 items." in _flashes(rita.get(r.headers["Location"]).text)
    r = rita.post("/review/bulk", data={"csrf_token": token, "decision": "approve", "confirm_flagged": "1",
                                        "sel": [sel_values(page)[f"template #{flagged}"]]})
    assert "Approved 1 item." in _flashes(rita.get(r.headers["Location"]).text)
    assert _status(db, flagged) == "approved"


def test_bulk_skips_items_decided_meanwhile_or_claimed_by_someone_else(rita, bob, db, reviewer):
    a, b, c = (seed(db, content=f"通知{i}", outcome="allow", score=0, age=timedelta(minutes=i)) for i in range(3))
    page = rita.get("/review/").text
    sel = list(sel_values(page).values())
    assert reviewer.post(f"/v1/templates/{a}/decision", {"decision": "approve"}).status_code == 200
    assert bob.get(f"/review/template/{b}").status_code == 200  # bob claims b
    r = rita.post("/review/bulk", data={"csrf_token": csrf_of(page), "decision": "reject", "reason": "不合规",
                                        "sel": sel})
    msg = _flashes(rita.get(r.headers["Location"]).text)
    assert "Rejected 1 item." in msg
    assert f"template #{a}: template {a} is already approved" in msg
    assert f"template #{b}: template {b} is claimed by bob until" in msg
    assert (_status(db, a), _status(db, b), _status(db, c)) == ("approved", "pending", "rejected")


def test_bulk_bad_input_is_a_clear_4xx(rita, db):
    seed(db)
    page = rita.get("/review/").text
    token = csrf_of(page)
    for bad in ("template:abc:1:1", "template:²:2:1", "template:1:99999999999:1", "template:5:1:1", "x:1:1:1",
                "template:1:1"):
        assert rita.post("/review/bulk", data={"csrf_token": token, "decision": "approve",
                                               "sel": [bad]}).status_code == 400, bad
    assert rita.post("/review/bulk", data={"csrf_token": token, "decision": "maybe",
                                           "sel": list(sel_values(page).values())}).status_code == 400
    r = rita.post("/review/bulk", data={"csrf_token": token, "decision": "approve"})
    assert r.status_code == 302 and "Select the rows" in _flashes(rita.get(r.headers["Location"]).text)
    assert rita.post("/review/bulk", data={"decision": "approve", "sel": list(sel_values(page).values())}
                     ).status_code == 400  # no CSRF token


def test_the_queue_needs_a_reviewer(app):
    r = app.test_client().post("/review/bulk", data={"decision": "approve"})
    assert r.status_code in (302, 400)  # to the sign-in page (or refused for the missing CSRF token)


def test_signatures_group_by_name_and_their_page_shows_the_context(rita, tenant, make_client):
    other = make_client("tenant", "BETA")
    a = tenant.post("/v1/signatures", {"name": "云知声科技"}).json
    b = other.post("/v1/signatures", {"name": "云知声科技"}).json
    assert a["status"] == b["status"] == "pending"
    page = rita.get("/review/?type=signature").text
    assert row_ids(page) == [f"signature #{a['id']}"] and "×2" in page
    item = rita.get(f"/review/signature/{a['id']}").text
    assert "1 other pending submission of this text" in item and f"#{b['id']}" in item
    assert 'id="account-context"' in item and 'href="/accounts/ACME"' in item
    assert "You hold this signature" in item
