"""Moderator: the pipeline, batch, classifier integration (fake), extra hits, status."""
from __future__ import annotations

import threading

from app.engine.keywords import CustomLists
from app.engine.moderator import Moderator, run_selftests
from app.engine.ruleset import RuleSetManager, SelfTestCase
from app.engine.types import Hit


def test_check_verdict_json(moderator):
    v = moderator.check("澳门百家乐上线，加vx abcdef1")
    d = v.to_dict()
    assert d["verdict"] == "reject" and d["categories"] == ["gambling"]
    assert d["ruleset_version"] == moderator.ruleset_version and d["model_version"] is None
    assert d["forced_by"] == "KW_GAMBLING_CASINO"
    assert {r["rule"] for r in d["reasons"]} == {"KW_GAMBLING_CASINO", "PAT_WECHAT_ID"}


def test_allow_for_ordinary_text(moderator):
    v = moderator.check("【某银行】您尾号1234的账户于3月5日消费100.00元。")
    assert v.verdict == "allow" and v.categories == ()


def test_extra_hits_force(moderator):
    suspended = Hit("ACCT_SUSPENDED", None, "account", 0.0, "reject", description="account suspended")
    v = moderator.check("您好，您的快递到了", extra_hits=[suspended])
    assert v.verdict == "reject" and v.forced_by == "ACCT_SUSPENDED"
    lint = Hit("TPL_NO_OPT_OUT", "marketing", "template", 6.0, None, description="no opt-out")
    assert moderator.check("全场五折", extra_hits=[lint]).verdict == "allow"  # marketing is informational


def test_check_batch_matches_check(moderator):
    texts = ["澳门百家乐", "您好", "加威信领取", "六合区防汛", "free p0rn", ""]
    acme = CustomLists(account="ACME", version="1", block=[("您好", None)])
    assert [v.to_dict() for v in moderator.check_batch(texts)] == [moderator.check(t).to_dict() for t in texts]
    batch = moderator.check_batch(texts, account_lists=acme)
    assert batch[1].verdict == "reject" and batch[0].verdict == "reject"


def test_fake_classifier_integration(rules_dir, fake_classifier):
    clf = fake_classifier({"gambling": 0.9, "fraud": 0.55, "marketing": 0.2})
    m = Moderator(RuleSetManager(rules_dir, watch=False), classifier=clf)
    try:
        assert m.model_version == "fake-1"
        v = m.check("今晚 一起玩")
        by = {h.rule: h for h in v.reasons}
        assert set(by) == {"CLF_GAMBLING", "CLF_FRAUD"}
        g = by["CLF_GAMBLING"]
        assert g.detector == "classifier" and g.score == 0.9 and g.action == "review" and g.words == ("gambling-word",)
        assert by["CLF_FRAUD"].words is None and by["CLF_FRAUD"].action is None
        assert v.verdict == "review" and v.categories == ("gambling", "fraud") and v.model_version == "fake-1"
        assert clf.calls == ["今晚一起玩"]  # the classifier sees the normalized text
        batch = m.check_batch(["今晚 一起玩", "百家乐"])
        assert batch[0].to_dict() == v.to_dict() and batch[1].verdict == "reject"
        st = m.status()["model"]
        assert {k: st[k] for k in ("loaded", "version", "dir", "labels", "error")} == {
            "loaded": True, "version": "fake-1", "dir": None, "labels": ["gambling", "fraud", "marketing"], "error": None}
        assert st["switches"] == 0 and st["last_error"] is None and "pointer" not in st  # no promotion watched
    finally:
        m.close()


def test_evidence_batch_is_what_check_batch_decides_on(rules_dir, fake_classifier):
    # evaluation replays this evidence under other thresholds: it must give check_batch's verdicts
    m = Moderator(RuleSetManager(rules_dir, watch=False), classifier=fake_classifier({"gambling": 0.9}))
    try:
        texts = ["今晚 一起玩", "百家乐", "加威信领取", ""]
        policy = m.ruleset.policy
        replay = [policy.decide(hits + policy.classifier_hits(m.labels, probs, content=content)).verdict
                  for _t, hits, probs, content in m.evidence_batch(texts)]
        assert replay == [v.verdict for v in m.check_batch(texts)] == ["review", "reject", "review", "review"]
        assert m.evidence_batch(["百家乐"])[0][0] == "百家乐" and m.labels == ("gambling", "fraud", "marketing")
    finally:
        m.close()


def test_classifier_reject_threshold(rules_dir, fake_classifier):
    m = Moderator(RuleSetManager(rules_dir, watch=False), classifier=fake_classifier({"gambling": 0.99}))
    try:
        v = m.check("hello")
        assert v.verdict == "reject" and v.forced_by == "CLF_GAMBLING"
    finally:
        m.close()


def test_missing_model_optional(rules_dir, tmp_path):
    m = Moderator.from_paths(rules_dir, model_dir=tmp_path / "no-model", watch=False, require_model=False)
    try:
        st = m.status()
        assert st["model"]["loaded"] is False and st["model"]["error"]
        assert m.model_version is None and m.check("百家乐").verdict == "reject"
        assert st["rules"]["version"] == m.ruleset_version and st["rules"]["last_error"] is None
    finally:
        m.close()


def test_threads_share_one_moderator(moderator):
    texts = ["澳门百家乐", "您好", "加威信领取", "free p0rn"] * 50
    expected = [moderator.check(t).to_dict() for t in texts]
    results: list = [None] * 4
    def worker(i):
        results[i] = [moderator.check(t).to_dict() for t in texts]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)


def test_run_selftests(moderator):
    cases = [SelfTestCase("x", "gambling", "must_match", "澳门百家乐", "reject"),
             SelfTestCase("x", "gambling", "must_match", "今天天气", None),
             SelfTestCase("x", "gambling", "must_not_match", "六合区", None)]
    results = run_selftests(moderator, cases)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].message.startswith("FAIL")
