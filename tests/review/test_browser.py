"""End to end in Debian's Chromium (Playwright, sync API).

1. A reviewer (who chose English) signs in, opens the queue, sees the highlighted span of a
   seeded gambling template, rejects it with a reason; the signed API then reports it rejected
   with that reason. Screenshots: test-artifacts/review-queue.png (the item page with the
   highlight) and review-queue-list.png (the queue).
2. The workbench (issue 15, "Done when"): two reviewers in the Chinese interface, a claim, a
   bulk rejection, a withdrawal then a signed pre-send check refused with TPL_WITHDRAWN, the
   switch to English, and the audit report. Screenshots are listed in its docstring.

Chinese text needs a CJK font in the system (fonts-wqy-zenhei or fonts-noto-cjk), else it shows
as boxes in the screenshots; the tests do not depend on it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.web.i18n import COOKIE
from tests.conftest import browser_app, sign_in

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CONTENT = "${name}您好，百家乐新玩法上线，拒收请回复R"
PASSWORD = "correct horse battery"
REASON = "赌博推广：百家乐 (gambling promotion)"

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path, moderator, serve):
    """The app over a migrated temp SQLite database, served by a real server in a thread."""
    from app.services import keys, review, users

    app = browser_app(tmp_path, moderator)
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
    base = serve(app)
    try:
        yield {"base": base, "tenant": tenant, "template_id": tpl_id}
    finally:
        db.dispose()



def test_reviewer_rejects_a_gambling_template(live, page):
    from playwright.sync_api import expect

    from app.client import Client

    base, tid = live["base"], live["template_id"]
    # this reviewer chose English (the pages are Chinese by default): the switcher's cookie
    page.context.add_cookies([{"name": COOKIE, "value": "en", "url": base}])
    sign_in(page, base, "rita", PASSWORD)

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


# --------------------------------------------------------------------------- the workbench (issue 15)

GAMBLING_PROMO = "${name}您好，老虎机周末活动上线，拒收请回复R"
VERIFY = "您的验证码为${code}，5分钟内有效，请勿泄露给他人。"
WITHDRAW_REASON = "签名冒用他人品牌，撤回批准"


@pytest.fixture
def workbench(tmp_path, moderator, serve):
    """Two reviewers (rita, bob), a queue with a group of identical gambling texts from two
    accounts, other pending items, and an approved verification template of ACME."""
    from app.services import keys, review, users

    app = browser_app(tmp_path, moderator, "workbench")
    db = app.extensions["smsguard.db"]
    ids: dict = {}
    with db.session() as s:
        tenant = keys.create(s, "ACME", "tenant", actor="test")
        keys.create(s, "BETA", "tenant", actor="test")
        users.create(s, "rita", PASSWORD, "reviewer", actor="test")
        users.create(s, "bob", PASSWORD, "reviewer", actor="test")
        sigs = {a: review.submit_signature(s, moderator, a, n, actor="test").id
                for a, n in (("ACME", "阿克米科技"), ("BETA", "贝塔商城"))}
    with db.session() as s:
        for sid in sigs.values():
            review.decide(s, "signature", sid, "approve", "", "test", "admin")
    with db.session() as s:
        ids["group"] = [review.submit_template(s, moderator, a, sigs[a], "promotional", GAMBLING_PROMO,
                                               {"name": "name"}, actor="test").id for a in ("ACME", "BETA")]
        ids["single"] = review.submit_template(s, moderator, "ACME", sigs["ACME"], "promotional", CONTENT,
                                               {"name": "name"}, actor="test").id
        ids["plain_sig"] = review.submit_signature(s, moderator, "ACME", "阿克米商城", actor="test").id
        approved = review.submit_template(s, moderator, "ACME", sigs["ACME"], "verification", VERIFY,
                                          {"code": "code"}, actor="test")
        ids["approved"], status = approved.id, approved.status
    assert status == "approved"
    with db.session() as s:  # ACME's complaint record: 2 complaints in 8,000 allowed messages
        from datetime import UTC, datetime

        from app.store.models import Complaint, DailyVolume

        s.add(DailyVolume(account_id="ACME", day=datetime.now(UTC).date(), allowed=8000, rejected=12))
        s.add(Complaint(account_id="ACME", phone="+8613812345678", source="carrier", reason="营销短信骚扰",
                        external_id="c-1001"))
        s.add(Complaint(account_id="ACME", phone="+8613900001111", source="user", reason="未订阅"))
    base = serve(app)
    try:
        yield {"base": base, "tenant": tenant, "ids": ids}
    finally:
        db.dispose()




def _audit_report(tmp_path: Path) -> Path:
    """A small audit run (the shipped rules, no model: fast and stable) and its HTML report."""
    import json

    from app.audit import AuditConfig, run_audit

    texts = (["澳门百家乐上线，首充送88%彩金，官网 www.example-bet.cc", "你等着，我弄死你",
              "澳门百家乐上线，首充送66%彩金，官网 www.example-bet.cc", "出门小心点，不然我弄死你",
              "明天下午三点开会，请准时参加。", "您的验证码为482913，5分钟内有效，请勿告知他人。",
              "【京东】您的订单已发货，预计明日送达，请保持电话畅通。"] * 12)
    log = tmp_path / "sent.jsonl"  # two days, 08:00-19:00
    log.write_text("".join(json.dumps({"id": f"m{i:03d}", "account": f"ACCT{i % 5}",
                                       "sent_at": f"2026-11-{20 + i % 2}T{8 + (i * 5) % 12:02d}:10:00", "text": t},
                                      ensure_ascii=False) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    report = tmp_path / "audit-report.html"
    run_audit(AuditConfig(inputs=[str(log)], out=tmp_path / "findings.jsonl", report=report, workers=0,
                          rules_dir=str(PROJECT_ROOT / "rules"), model_dir="none", progress=False, log=lambda m: None))
    return report


def test_two_reviewers_claim_bulk_reject_and_withdraw(workbench, browser, tmp_path):
    """Issue 15, "Done when". Two reviewers in the Chinese interface (the default): Rita opens an
    item (claims it); Bob sees the claim on the queue and on the item and cannot decide it, j
    skips it; Bob rejects a group of identical gambling texts from two accounts in one bulk
    decision (approving the flagged selection first waits for the confirmation box); Bob reads
    the account's page; Rita switches to English in the header (it stays English from page to
    page), withdraws an approved template, and the signed pre-send check then refuses it with
    TPL_WITHDRAWN; Bob, still in Chinese, sees it withdrawn. Last, the audit report of a small
    run is opened in the browser.

    Screenshots (test-artifacts/):
    - workbench-queue.png: the queue as Bob sees it, in Chinese: engine verdicts, scores,
      categories, the group of two identical texts (×2, both accounts), Rita's claim;
    - workbench-item-claimed.png: the item Rita holds, as Bob sees it: the claim banner, the
      highlighted text, the reasons and the explained score (each hit's contribution, the total,
      what decided it), the account context;
    - workbench-account.png: account ACME: state, complaints, complaint rate (万分之2.5), next
      step, masked phone numbers;
    - workbench-withdrawn.png: the withdrawn template with its history, in English (Rita's choice);
    - audit-report.png: the audit HTML report: cards, the time axis, categories, top accounts and
      rules, samples rejected and sent to review side by side."""
    from playwright.sync_api import expect

    from app.client import Client

    base, ids = workbench["base"], workbench["ids"]
    single, group, approved = ids["single"], ids["group"], ids["approved"]
    rita, bob = browser(), browser()

    # the sign-in page: Chinese, lang right, the switcher offers English
    rita.goto(f"{base}/login")
    expect(rita.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(rita.locator("h1")).to_have_text("登录")
    expect(rita.locator("#lang-switch #lang-en")).to_have_text("English")
    sign_in(rita, base, "rita", PASSWORD)
    sign_in(bob, base, "bob", PASSWORD)
    expect(rita.locator(".flash.ok").first).to_have_text("已登录：rita。")
    expect(rita.locator("h1")).to_have_text("审核队列")
    expect(rita.locator("#nav-accounts")).to_have_text("账户")

    # the queue, riskiest first: the group of two identical texts is one row
    group_row = rita.locator("tr[data-href]", has_text=f"模板 #{group[0]}")
    expect(group_row).to_contain_text("×2")
    expect(group_row).to_contain_text("ACME")
    expect(group_row).to_contain_text("BETA")
    expect(group_row.locator(".verdict")).to_have_text("转人工")
    expect(group_row).to_contain_text("gambling")  # category ids stay ids
    expect(group_row).to_contain_text("推广")
    expect(rita.locator("tr[data-href]", has_text=f"模板 #{group[1]}")).to_have_count(0)

    # Rita opens the single gambling template: she holds it
    rita.goto(f"{base}/review/template/{single}")
    expect(rita.locator("#claim-banner")).to_contain_text("你已认领此模板，至")

    # Bob sees who holds it, on the queue and on the item, and cannot decide it
    bob.goto(f"{base}/review/")
    held = bob.locator("tr[data-href]", has_text=f"模板 #{single}")
    expect(held).to_contain_text("已被 rita 认领，至")
    expect(held).to_have_attribute("data-claimed", "other")
    ARTIFACTS.mkdir(exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "workbench-queue.png"), full_page=True)
    # j/k on the queue never stop on Rita's row
    rows = bob.locator("tr[data-href]")
    for _ in range(rows.count() + 1):
        bob.keyboard.press("j")
        expect(bob.locator("tr.sel")).not_to_have_attribute("data-claimed", "other")
    for _ in range(rows.count() + 1):
        bob.keyboard.press("k")
        expect(bob.locator("tr.sel")).not_to_have_attribute("data-claimed", "other")
    bob.goto(f"{base}/review/template/{single}")
    expect(bob.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(bob.locator("#claim-banner")).to_contain_text("已被 rita 认领，至")
    expect(bob.locator("#approve-form button[type=submit]")).to_be_disabled()
    # the explained score: each hit's contribution, the total, what decided the verdict
    explain = bob.locator("section.explain")
    expect(explain).to_be_visible()
    expect(explain.locator("tfoot")).to_contain_text("总分")
    expect(explain).to_contain_text("KW_GAMBLING_CASINO_GAME")
    expect(explain.locator(".explain-thresholds")).to_contain_text("阈值：")
    expect(bob.locator(".reasons li", has_text="KW_GAMBLING_CASINO_GAME")).to_contain_text("关键词")
    bob.screenshot(path=str(ARTIFACTS / "workbench-item-claimed.png"), full_page=True)
    # j on the item skips nothing here but never lands on an item someone else holds
    bob.keyboard.press("j")
    expect(bob).not_to_have_url(f"{base}/review/template/{single}")

    # Bob: approving the flagged group waits for the confirmation box; he rejects it instead
    bob.goto(f"{base}/review/")
    bob.locator("tr[data-href]", has_text=f"模板 #{group[0]}").locator("input[name=sel]").check()
    expect(bob.locator("#selected-count")).to_have_text("已选 1 行（2 项），其中 1 行被标记")
    bob.click("#bulk-approve")
    expect(bob.locator("#bulk-confirm-label")).to_have_class(re.compile(r"\bneeded\b"))
    expect(bob).to_have_url(f"{base}/review/")  # nothing was sent
    bob.fill("#bulk-reason", "赌博推广，不予通过")
    bob.click("#bulk-reject")
    expect(bob.locator(".flash.ok").first).to_have_text("已驳回 2 项。")
    expect(bob.locator("tr[data-href]", has_text=f"模板 #{group[0]}")).to_have_count(0)

    # Bob reads the account of the item Rita holds: its page, in Chinese
    bob.goto(f"{base}/review/template/{single}")
    bob.click("#account-link")
    expect(bob).to_have_url(f"{base}/accounts/ACME")
    expect(bob.locator("#account-status")).to_have_text("正常")
    expect(bob.locator("#rate")).to_have_text("万分之2.5")
    expect(bob.locator("#allowed-count")).to_have_text("8,000")
    expect(bob.locator("#complaints")).to_contain_text("138****5678")  # masked for a reviewer
    expect(bob.locator("#complaints")).not_to_contain_text("13812345678")
    expect(bob.locator("#complaints")).to_contain_text("运营商")
    expect(bob.locator("#next-step")).to_contain_text("警告")
    bob.screenshot(path=str(ARTIFACTS / "workbench-account.png"), full_page=True)

    # Rita picks English in the header: this page, and the next ones, are in English
    rita.click("#lang-switch #lang-en")
    expect(rita).to_have_url(f"{base}/review/template/{single}")
    expect(rita.locator("html")).to_have_attribute("lang", "en")
    expect(rita.locator("#claim-banner")).to_contain_text("You hold this template until")
    expect(rita.locator("#lang-switch strong")).to_have_text("English")
    rita.goto(f"{base}/review/")
    expect(rita.locator("h1")).to_have_text("Review queue")
    expect(rita.locator("#nav-accounts")).to_have_text("Accounts")

    # Rita withdraws the approved verification template from its page
    rita.goto(f"{base}/review/template/{approved}")
    expect(rita.locator("html")).to_have_attribute("lang", "en")
    rita.click("#withdraw summary")
    rita.fill("#withdraw-reason", WITHDRAW_REASON)
    rita.click("#withdraw-button")  # the confirmation box is required: the browser refuses
    expect(rita).to_have_url(f"{base}/review/template/{approved}")
    expect(rita.locator(".status").first).to_have_text("approved")
    rita.check("#withdraw-confirm")
    rita.click("#withdraw-button")
    expect(rita.locator(".flash.ok").first).to_contain_text(f"Withdrew template #{approved}")
    expect(rita.locator(".flash.ok").first).to_contain_text("TPL_WITHDRAWN")
    expect(rita.locator("h1 .status")).to_have_text("withdrawn")
    expect(rita.locator("#history tr", has_text=WITHDRAW_REASON)).to_contain_text("withdraw")
    rita.screenshot(path=str(ARTIFACTS / "workbench-withdrawn.png"), full_page=True)

    # the signed pre-send check refuses it
    t = workbench["tenant"]
    api = Client(base, t.public_key, t.private_key)
    body = api.post("/v1/messages/check", {"template_id": approved, "phone": "+8613800138000",
                                           "params": {"code": "482915"}})
    assert body["verdict"] == "reject" and body["forced_by"] == "TPL_WITHDRAWN"
    assert any(r["rule"] == "TPL_WITHDRAWN" for r in body["reasons"])
    status = api.get(f"/v1/templates/{approved}")
    assert status["status"] == "withdrawn" and status["decisions"][-1]["decision"] == "withdraw"

    # Bob's choice is his own: still Chinese, he sees it withdrawn
    bob.goto(f"{base}/review/template/{approved}")
    expect(bob.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(bob.locator("h1 .status")).to_have_text("已撤回")
    expect(bob.locator("#history tr", has_text=WITHDRAW_REASON)).to_contain_text("撤回")

    # the audit report of a small run, opened in the browser
    report = _audit_report(tmp_path)
    viewer = browser()
    viewer.goto(report.as_uri())
    expect(viewer.locator("h1")).to_have_text("smsguard audit report")
    expect(viewer.locator("svg text.tick").first).to_be_visible()
    samples = viewer.locator("h3", has_text="gambling")
    expect(samples).to_be_visible()
    expect(viewer.locator("h4.reject").first).to_contain_text("Rejected")
    expect(viewer.locator("h4.review").first).to_contain_text("Sent to review")
    viewer.screenshot(path=str(ARTIFACTS / "audit-report.png"), full_page=True)
