"""The shipped engine (rules + model) on the kinds of legitimate traffic that issue 12 saw
rejected: notices with amounts and masked cards, bare links and numbers, English personal
messages, warnings that name what they warn against. Written for this test, not from a corpus."""
from __future__ import annotations

import pytest

from app.config import DEFAULT_MODEL_NAME, PROJECT_ROOT
from app.engine.moderator import Moderator

MODEL_DIR = PROJECT_ROOT / "models" / DEFAULT_MODEL_NAME
pytestmark = pytest.mark.skipif(not (MODEL_DIR / "metadata.json").exists(), reason="no shipped model")


@pytest.fixture(scope="module")
def engine():
    m = Moderator.from_paths(PROJECT_ROOT / "rules", MODEL_DIR, watch=False)
    yield m
    m.close()


@pytest.mark.parametrize("text", [
    "https://m.tb.cn/h.5xYq2Lk",
    "www.10086.cn",
    "13912345678",
    "+44 7700 900 456",
    "t.cn/A6xyz12 13800138000",
])
def test_a_bare_link_or_number_gets_no_classifier_hit(engine, text):
    v = engine.check(text)
    assert not [h for h in v.reasons if h.detector == "classifier"]
    assert v.verdict == "allow"


@pytest.mark.parametrize("text", [
    "【建设银行】您尾号6618的储蓄卡12月3日14:22消费支出人民币2,368.00元，余额15,420.77元。",
    "【招商银行】您账户0923于11月30日收到工资入账8,650.00元，当前余额12,107.35元。",
    "【中国银行】温馨提示：本行不会以任何理由向您收取解冻费、保证金，请勿向陌生账户转账。",
    "Your A/c XX4821 is debited for Rs 1,250.00 on 03-12-26 towards UPI/Swiggy. Not you? Call 1800 258 6161",
    "Royal Mail: your parcel is out for delivery today, track it at royalmail.com/track. Security code 4417",
])
def test_transaction_notices_are_not_rejected(engine, text):
    assert engine.check(text).verdict != "reject"


@pytest.mark.parametrize("text", [
    "Are you still coming up to Essex on Saturday? Mum's doing a roast",
    "can I borrow the car tomorrow, mine's in the garage",
    "周六晚上一起吃饭吗？我订了楼下那家湘菜馆",
])
def test_personal_messages_are_allowed(engine, text):
    assert engine.check(text).verdict == "allow"


def test_an_anti_cult_notice_naming_the_group_goes_to_review_not_reject(engine):
    v = engine.check("【平安社区】反邪教宣传：凡散发法轮大法好传单的均属违法，发现请拨打110举报，远离邪教。")
    assert v.verdict == "review"
    demoted = [h for h in v.reasons if "demoted from reject" in h.description]
    assert demoted and all(h.action == "review" for h in demoted)
    # quoting the slogan it warns about makes it a mention: nothing forced, nothing scored
    v = engine.check("【平安社区】反邪教宣传：凡散发“法轮大法好”传单的均属违法，发现请拨打110举报，远离邪教。")
    assert v.verdict == "allow"
    assert any("mentioned, not used" in h.description for h in v.reasons)


def test_the_same_group_named_in_propaganda_is_still_rejected(engine):
    assert engine.check("法轮大法好，真善忍好，三退保平安").verdict == "reject"


@pytest.mark.parametrize("text", [
    # police, regulator and platform notices that name what they warn about (rules/context.yaml)
    "【城东派出所】警方提醒：网上“高额返水”的赌球平台均属违法，请勿参与，被骗请立即报警。",
    "【某某视频】您举报的评论含有“去死吧”等辱骂内容，已被删除，感谢您的举报。",
    "City Council: street dealers selling cocaine near the station were arrested last week. Report any drug dealing on 101.",
    "We reviewed your report. The comment calling you a 'worthless bitch' broke our community guidelines and has been removed.",
    "Riverside Police anti-scam tip: a text saying 'Hi Dad, this is my new number' that asks for money is a scam. Call the old number first.",
    "News: court jails man who ran an illegal online casino from a rented flat; six others face trial.",
    "Northside bookshop: new in, a memoir by a retired bomb-disposal officer. Signed copies while stock lasts.",
    "Harbour Bank: 'Hi Mum, new number' scams are on the rise. If a new number asks for money, ring the old one first.",
    # a hospital about a prescribed opioid (contraband's own medical context)
    "【市一医院】您的盐酸羟考酮缓释片处方已开具，请于本周五前凭身份证到门诊二楼麻醉药品专用窗口取药。",
])
def test_notices_that_name_what_they_warn_about_are_not_rejected(engine, text):
    v = engine.check(text)
    assert v.verdict != "reject", [(h.rule, h.action) for h in v.reasons]
    assert v.forced_by is None


@pytest.mark.parametrize("text", [
    # a warning word does not launder a scam: it still reaches a reviewer or the bin
    "澳门百家乐真人荷官在线，首充送88%，谨防假冒，认准官网 www.amdc888.vip",
    "警方提醒：您名下银行卡涉嫌洗钱，请立即将资金转入安全账户配合调查。",
])
def test_a_scam_that_borrows_warning_words_is_still_flagged(engine, text):
    assert engine.check(text).verdict != "allow"
