"""End to end in Debian's Chromium (Playwright, sync API): a reviewer signs in, opens the queue,
sees the highlighted span of a seeded gambling template, rejects it with a reason; the signed
API then reports it rejected with that reason. Screenshots: test-artifacts/review-queue.png (the
item page with the highlight, as a reviewer sees it) and review-queue-list.png (the queue).
Chinese text needs a CJK font in the system (fonts-wqy-zenhei or fonts-noto-cjk), else it shows
as boxes in the screenshot; the test does not depend on it."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT, Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
CONTENT = "${name}您好，百家乐新玩法上线，拒收请回复R"
PASSWORD = "correct horse battery"
REASON = "赌博推广：百家乐 (gambling promotion)"

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path, moderator):
    """The app over a migrated temp SQLite database, served by a real server in a thread."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.services import keys, review, users
    from app.store import migrate

    url = f"sqlite:///{tmp_path / 'browser.db'}"
    migrate.upgrade(url)
    settings = Settings(instance_dir=tmp_path / "instance", database_url=url, model_dir=None,
                        watch_rules=False, secret_key="browser-test-secret").resolved()
    app = create_app(settings, moderator=moderator)
    db = app.extensions["smsguard.db"]
    with db.session() as s:
        tenant = keys.create(s, "ACME", "tenant", actor="test")
        users.create(s, "rita", PASSWORD, "reviewer", actor="test")
        sig = review.submit_signature(s, moderator, "ACME", "阿克米科技", actor="test")
    with db.session() as s:
        review.decide(s, "signature", sig.id, "approve", "", "test", "admin")
    with db.session() as s:
        # seeded through the review service: the content engine really flags it
        tpl = review.submit_template(s, moderator, "ACME", sig.id, "promotional", CONTENT, {"name": "name"},
                                     actor="test")
        tpl_id, status, verdict = tpl.id, tpl.status, tpl.verdict
    assert status == "pending" and "gambling" in verdict["categories"], verdict
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}", "tenant": tenant, "template_id": tpl_id}
    finally:
        server.shutdown()
        thread.join(5)
        db.dispose()


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 820}, locale="zh-CN")
        pg = context.new_page()
        pg.set_default_timeout(15000)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        yield pg
        context.close()
        browser.close()
        assert not errors, errors  # no script errors, no CSP violations


def test_reviewer_rejects_a_gambling_template(live, page):
    from playwright.sync_api import expect

    from app.client import Client

    base, tid = live["base"], live["template_id"]
    page.goto(f"{base}/review/")
    expect(page).to_have_url(f"{base}/login?next=/review/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/review/")

    # the queue: the template is there with its category and rule
    row = page.locator("tr[data-href]", has_text=f"template #{tid}")
    expect(row).to_be_visible()
    expect(row).to_contain_text("gambling")
    expect(row).to_contain_text("KW_GAMBLING_CASINO_GAME")
    expect(page.locator(".tab.active .count")).to_have_text("1")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-queue-list.png"), full_page=True)
    # keyboard: Enter opens the selected row
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/review/template/{tid}")

    # the highlighted span, its rule and category on hover
    mark = page.locator("#content mark", has_text="百家乐")
    expect(mark).to_be_visible()
    assert "KW_GAMBLING_CASINO_GAME · gambling" in mark.get_attribute("title")
    reason_item = page.locator(".reasons li", has_text="KW_GAMBLING_CASINO_GAME")
    expect(reason_item).to_contain_text("百家乐")
    mark.hover()
    expect(reason_item).to_have_class("reason sev-strong hot")

    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

    # r focuses the reason, Enter rejects
    page.keyboard.press("r")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type(REASON)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/review/")  # nothing else pending: back to the queue
    expect(page.locator(".flash.ok").first).to_contain_text(f"Rejected template #{tid}")
    expect(page.locator(".empty")).to_contain_text("Nothing waiting")

    # the signed API reports it rejected with that reason
    t = live["tenant"]
    api = Client(base, t.public_key, t.private_key)
    body = api.get(f"/v1/templates/{tid}")
    assert body["status"] == "rejected"
    assert body["reason"] == REASON
    assert body["decisions"][-1]["decision"] == "reject" and body["decisions"][-1]["reason"] == REASON
