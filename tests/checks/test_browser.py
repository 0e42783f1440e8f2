"""End to end in Debian's Chromium (Playwright): a reviewer opens the dashboard (figures from
checks made through the real API and a few days of seeded history), then decides a tenant's
feedback in the review queue: accepted with an allow term and a training example, then on to the
next feedback item, dismissed. Screenshots: test-artifacts/dashboard.png, feedback-queue.png (the
queue's feedback tab), feedback-pending.png (the item's page, its form filled) and feedback.png
(the accepted item on the feedback page)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import PROJECT_ROOT
from tests.conftest import browser_app, sign_in

from .conftest import GAMBLING, PASSWORD, item, make_template

ARTIFACTS = PROJECT_ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path, moderator, serve):
    from app.client import Client
    from app.services import checks, keys, users

    app = browser_app(tmp_path, moderator)
    settings = app.config["SMSGUARD"]
    db = app.extensions["smsguard.db"]
    tpl = make_template(db, "ACME")
    make_template(db, "BETA")
    with db.session() as s:
        acme = keys.create(s, "ACME", "tenant", actor="test")
        beta = keys.create(s, "BETA", "tenant", actor="test")
        users.create(s, "rita", PASSWORD, "reviewer", actor="test")
    # a week of history, hour by hour (the record of checks as the writer would have left it)
    now = datetime.now(UTC)
    hist = []
    for h in range(7 * 24):
        at = now - timedelta(hours=h + 1)
        base = 6 + (h * 7) % 11 + (8 if 9 <= (at.hour + 8) % 24 <= 20 else 0)
        for k in range(base):
            acct = "ACME" if k % 3 else "BETA"
            if k % 13 == 5:
                hist.append(item(at, acct, "reject", ["gambling"], ["KW_GAMBLING_CASINO_GAME"]))
            elif k % 17 == 7:
                hist.append(item(at, acct, "review", ["fraud"], ["CLF_FRAUD"]))
            elif k % 29 == 3:
                hist.append(item(at, acct, "reject", ["fraud", "contraband"], ["KW_FRAUD_FAKE_INVOICE"]))
            else:
                hist.append(item(at, acct, "allow"))
    checks.store(db, hist, "full", settings.secret_key)
    base = serve(app)
    try:
        # live traffic through the signed API: recorded by the background writer
        a = Client(base, acme.public_key, acme.private_key)
        b = Client(base, beta.public_key, beta.private_key)
        for i in range(12):
            a.post("/v1/messages/check", {"template_id": tpl, "phone": f"+86138{i:08d}", "params": {"code": "4829"},
                                          "message_id": f"live-{i}"})
        a.post("/v1/moderate", {"text": GAMBLING})
        b.post("/v1/moderate", {"text": "加微信领取内部价，代开发票"})
        fb = a.post("/v1/feedback", {"text": GAMBLING, "expected": "allow",
                                     "note": "酒店娱乐场的正规推广 (our hotel's licensed casino)"})
        missed = a.post("/v1/feedback", {"text": "周末来玩两把，上分找我 vx kk8899", "expected": "reject",
                                         "category": "gambling", "note": "a customer's agent sent this"})
        assert app.extensions["smsguard.checks"].flush(10)
        yield {"base": base, "feedback": fb, "missed": missed, "app": app, "acme": a}
    finally:
        app.extensions["smsguard.checks"].close()
        db.dispose()



def test_dashboard_and_a_feedback_item_decided(live, page):
    from playwright.sync_api import expect

    from app.web.i18n import COOKIE

    base, fb, missed = live["base"], live["feedback"], live["missed"]
    # this reviewer reads the pages in English (they are Chinese by default): the switcher's cookie
    page.context.add_cookies([{"name": COOKIE, "value": "en", "url": base}])
    sign_in(page, base, "rita", PASSWORD, at="/dashboard")

    expect(page.locator("#volume-chart")).to_be_visible()
    checks_total = int(page.locator("#kpi-checks").inner_text().replace(",", ""))
    assert checks_total > 1000
    expect(page.locator("#by-category tr[data-name=gambling]")).to_be_visible()
    expect(page.locator("#by-account tr[data-name=ACME]")).to_be_visible()
    expect(page.locator("#volume-chart g.bar")).to_have_count(7)  # the last 7 UTC days, today included
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # one account, the last 24 hours by the hour
    page.select_option("#f-range", "24h")
    page.fill("input[name=account]", "ACME")
    page.click("#dash-filters button[type=submit]")
    expect(page.locator("h1")).to_contain_text("ACME")
    assert page.locator("#volume-chart g.bar").count() == 24
    expect(page.locator("#by-account")).to_have_count(0)

    # the review queue's feedback tab: both items, "should have been stopped" first
    page.click("#nav-queue")
    page.click(".tabs a[href$='type=feedback']")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"feedback #{missed['id']}")
    expect(rows.nth(1)).to_contain_text(f"feedback #{fb['id']}")
    expect(rows.nth(1).locator("input[name=sel]")).to_have_count(0)  # decided one by one
    page.screenshot(path=str(ARTIFACTS / "feedback-queue.png"), full_page=True)

    # the tenant's item: the suggested allow term, accept with a training example
    rows.nth(1).locator("a[href*='/review/feedback/']").first.click()
    expect(page.locator("#claim-banner")).to_contain_text("You hold this feedback")
    item_ = page.locator(f"#feedback-{fb['id']}")
    expect(item_).to_contain_text("hotel's licensed casino")
    expect(item_.locator("mark").first).to_be_visible()
    item_.locator("input[value=account_allow_term]").check()
    term = item_.locator("input[name=allow_term]")
    assert term.input_value()  # suggested from the keyword that decided the verdict
    term.fill("澳门百家乐")
    item_.locator("input[value=training_example]").check()
    item_.locator("input[name=note]").fill("licensed venue: allowed for ACME")
    page.screenshot(path=str(ARTIFACTS / "feedback-pending.png"), full_page=True)
    item_.locator("button[value=accept]").click()
    # on to the next free item in the queue's order: the other feedback, dismissed
    expect(page.locator(".flash.ok").first).to_contain_text(f"Accepted feedback #{fb['id']}")
    other = page.locator(f"#feedback-{missed['id']}")
    expect(other).to_contain_text("a customer's agent sent this")
    other.locator("button[value=dismiss]").click()
    expect(page.locator(".flash.ok").first).to_contain_text(f"Dismissed feedback #{missed['id']}")
    expect(page.locator("p.empty")).to_be_visible()  # the queue is empty

    page.click("#nav-feedback")
    page.click(".tabs a:has-text('Accepted')")
    done = page.locator(f"#feedback-{fb['id']}")
    expect(done).to_contain_text("澳门百家乐")
    expect(done).to_contain_text("training example #")
    page.screenshot(path=str(ARTIFACTS / "feedback.png"), full_page=True)

    # the signed API agrees
    got = live["acme"].get(f"/v1/feedback/{fb['id']}")
    assert got["status"] == "accepted" and {a["action"] for a in got["actions"]} == {"account_allow_term",
                                                                                     "training_example"}
