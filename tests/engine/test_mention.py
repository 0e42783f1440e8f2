"""Use and mention (app/engine/mention.py): a warning that quotes what it warns about."""
from __future__ import annotations

from app.engine.mention import NOTE, mark_mentions, quoted_spans
from app.engine.types import Hit


def kw(rule, cat, score, span, action=None):
    return Hit(rule, cat, "keyword", score, action, "x", span, "d")


TEXT = "警方提醒：警惕“裸聊敲诈”，不要转账。"
PORN = kw("KW_PORN_CONTENT", "pornography", 0, (8, 10), "reject")
NOTICE = Hit("KW_CTX_NOTICE_WARNING", None, "keyword", -6, "context", "警方提醒", (0, 4))


def test_quoted_spans_take_paired_marks_and_leave_apostrophes_alone():
    assert quoted_spans("警惕“裸聊敲诈”和「刷单」") == [(2, 8), (9, 13)]
    assert quoted_spans("it's Bob's car") == []
    assert quoted_spans("the comment 'kill yourself' was removed") == [(12, 27)]


def test_a_quoted_hit_in_a_warning_scores_and_forces_nothing():
    (h, ctx) = mark_mentions([PORN, NOTICE], TEXT)
    assert h.score == 0 and h.action is None and h.description.endswith(NOTE)
    assert ctx == NOTICE


def test_quotes_without_warning_context_change_nothing():
    assert mark_mentions([PORN], TEXT) == [PORN]


def test_a_category_context_covers_its_own_category_only():
    fraud_ctx = kw("KW_FRAUD_CTX_WARNING", "fraud", -10, (0, 2))
    assert mark_mentions([PORN, fraud_ctx], TEXT)[0] == PORN
    porn_ctx = kw("KW_PORN_CTX_NOTICE", "pornography", -8, (0, 2))
    assert mark_mentions([PORN, porn_ctx], TEXT)[0].action is None


def test_unquoted_hits_and_account_lists_keep_their_force():
    outside = kw("KW_PORN_CONTENT", "pornography", 0, (14, 16), "reject")
    block = Hit("KW_ACCOUNT_BLOCK", "pornography", "keyword", 10, "reject", "裸聊", (8, 10))
    hits = mark_mentions([outside, block, NOTICE], TEXT)
    assert hits[0] == outside and hits[1] == block


def test_the_shipped_engine_allows_a_police_notice_that_quotes_the_scam(shipped):
    v = shipped.check("【公安局】警惕“裸聊敲诈”：陌生人诱导您视频后以散播视频相要挟，不要转账，请立即报警。")
    assert v.verdict == "allow"
    assert any(NOTE in h.description for h in v.reasons)
    # the same words as an offer, unquoted, are still refused
    assert shipped.check("真人裸聊一对一视频，加qq 12345678").verdict == "reject"
