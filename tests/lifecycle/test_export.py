"""`smsguard export-training`: the labelled examples made by reviewer decisions (issue 16, item 3)."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.store.db import Database
from app.store.models import Account, ReviewDecision, Signature, Template
from app.store.records import TrainingExample
from app.training import decisions as dec

MAR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
JAN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GAMBLING_TPL = "澳门${site}上线，首充送${amount}，天天返水"


def _item(s, kind, status, verdict_cats, decided, actor="user:ann", at=MAR, **kw):
    """A signature or template with its stored verdict and a decision (``decided``) at ``at``."""
    verdict = {"verdict": "review" if verdict_cats else "allow", "categories": verdict_cats, "score": 1.0,
               "reasons": []}
    if kind == "signature":
        it = Signature(account_id="ACME", name=kw.pop("name"), status=status, verdict=verdict)
    else:
        it = Template(account_id="ACME", signature_id=kw.pop("signature_id"), status=status, verdict=verdict, **kw)
    s.add(it)
    s.flush()
    s.add(ReviewDecision(subject_type=kind, subject_id=it.id, decision="pending", actor="system",
                         verdict=verdict, reason="automatic", created_at=at.replace(hour=8)))
    for d in decided if isinstance(decided, list) else [decided]:
        s.add(ReviewDecision(subject_type=kind, subject_id=it.id, decision=d, actor=actor, verdict=verdict,
                             reason="checked", created_at=at))
    s.flush()
    return it.id


@pytest.fixture
def decided(migrated_url):
    """A database holding decided signatures, templates and training-store rows."""
    db = Database(migrated_url)
    with db.session() as s:
        s.add(Account(id="ACME", name="ACME"))
        s.flush()
        sig = _item(s, "signature", "approved", [], "approve", name="阿克米")
        _item(s, "template", "rejected", ["gambling", "marketing"], "reject", signature_id=sig, type="promotional",
              content=GAMBLING_TPL, variables={"site": "url", "amount": "money"})
        _item(s, "template", "approved", ["marketing"], "approve", signature_id=sig, type="promotional",
              content="双十一全场五折，会员再享好礼，详见官网。拒收请回复R", variables={})
        _item(s, "template", "approved", [], "approve", signature_id=sig, type="verification",
              content="您的验证码是${code}，5分钟内有效，请勿泄露。", variables={"code": "code"})
        # a rejection that names no prohibited category (verdict clean): cannot be labelled
        _item(s, "signature", "rejected", [], "reject", name="测试签名")
        _item(s, "signature", "rejected", ["fraud"], "reject", name="银监会退款中心")
        # approved, then withdrawn by a reviewer: a rejection (its verdict names fraud)
        _item(s, "template", "withdrawn", ["fraud"], ["approve", "withdraw"], signature_id=sig, type="notification",
              content="您的账户存在风险，请点击${link}核实身份", variables={"link": "url"})
        # the system's own decisions teach nothing
        _item(s, "template", "approved", [], [], signature_id=sig, type="notification",
              content="您的订单${order}已发货。", variables={"order": "code"})
        # decided in January: outside --since 2026-02-01
        _item(s, "template", "rejected", ["pornography"], "reject", at=JAN, signature_id=sig, type="promotional",
              content="同城约会，私密服务，加我详聊", variables={})
        s.add_all([
            TrainingExample(text="周末带娃去公园，顺便买菜", labels=[], lang="zh", origin="feedback",
                            ref="feedback:1", decided_by="user:bob", decided_at=MAR),
            TrainingExample(text="加微信领取免费彩金，稳赚不赔", labels=["gambling"], lang="zh", origin="feedback",
                            ref="feedback:2", decided_by="user:bob", decided_at=MAR),
            # the same text as the approved verification template, decided later: one line, the latest
            TrainingExample(text="您的验证码是482915，5分钟内有效，请勿泄露。", labels=["fraud"], lang="zh",
                            origin="feedback", ref="feedback:3", decided_by="user:bob",
                            decided_at=MAR.replace(hour=10)),
            TrainingExample(text="old feedback", labels=[], lang="en", origin="feedback", ref="feedback:4",
                            decided_by="user:bob", decided_at=JAN),
        ])
    db.dispose()
    return migrated_url


def _export(url, *args):
    return CliRunner().invoke(cli, ["export-training", "--database", url, *args])


def test_export_labels_masks_and_skips(decided, tmp_path):
    out = tmp_path / "out" / "decisions.jsonl"
    r = _export(decided, "--since", "2026-02-01", "--out", str(out))
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(d) == {"text", "labels", "lang", "source", "orig"} for d in lines)
    by_text = {d["text"]: d for d in lines}
    # template variables masked the way the review engine reads them (template_lint.mask)
    g = by_text["澳门https://example.com/o上线，首充送120.50，天天返水"]
    assert g["labels"] == ["gambling", "marketing"] and g["lang"] == "zh" and g["source"] == "template"
    assert g["orig"].startswith("template:") and g["orig"].endswith(":promotional:reject")
    assert by_text["双十一全场五折，会员再享好礼，详见官网。拒收请回复R"]["labels"] == ["marketing"]
    assert by_text["阿克米"]["labels"] == [] and by_text["阿克米"]["source"] == "signature"
    assert by_text["银监会退款中心"]["labels"] == ["fraud"]
    assert by_text["您的账户存在风险，请点击https://example.com/o核实身份"]["labels"] == ["fraud"]  # withdrawn
    # the training store's rows as they are; the verification text decided twice: the latest wins
    assert by_text["加微信领取免费彩金，稳赚不赔"] == {"text": "加微信领取免费彩金，稳赚不赔", "labels": ["gambling"],
                                                 "lang": "zh", "source": "feedback", "orig": "feedback:2"}
    v = by_text["您的验证码是482915，5分钟内有效，请勿泄露。"]
    assert v["labels"] == ["fraud"] and v["orig"] == "feedback:3"
    assert "周末带娃去公园，顺便买菜" in by_text
    # skipped: the unlabelable rejection, the system's decisions, everything before --since
    assert "测试签名" not in by_text and "您的订单482915已发货。" not in by_text
    assert "同城约会，私密服务，加我详聊" not in by_text and "old feedback" not in by_text
    assert len(lines) == len(by_text) == 8  # deduplicated
    assert "skipped 1 rejections without a category" in r.stderr
    assert "1 duplicates (1 decided both ways" in r.stderr
    assert not [p for p in out.parent.iterdir() if p.name != "decisions.jsonl"]  # no temporary left


def test_since_filters_and_stdout(decided):
    r = _export(decided, "--since", "2026-01-01")
    assert r.exit_code == 0, r.output
    texts = {json.loads(x)["text"] for x in r.stdout.splitlines()}
    assert "同城约会，私密服务，加我详聊" in texts and "old feedback" in texts
    r = _export(decided, "--since", "2026-03-02T09:30:00+00:00")  # only the 10:00 training-store row
    assert [json.loads(x)["orig"] for x in r.stdout.splitlines()] == ["feedback:3"]
    r = _export(decided, "--since", "2027-01-01")
    assert r.exit_code == 0 and r.stdout == "" and "0 examples" in r.stderr


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "2026-02-30", ""])
def test_a_bad_date_is_one_line_and_non_zero(decided, tmp_path, bad):
    from app.cli import main

    out = tmp_path / "x.jsonl"
    r = CliRunner().invoke(cli, ["export-training", "--database", decided, "--since", bad, "--out", str(out)])
    assert r.exit_code != 0 and not out.exists()
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["export-training", "--database", decided, "--since", bad, "--out", str(out)])
    assert code != 0
    msg = err.getvalue().strip()
    assert len(msg.splitlines()) == 1 and "--since" in msg and "not a date" in msg and "Traceback" not in msg


def test_no_partial_file(tmp_path):
    out = tmp_path / "keep.jsonl"
    out.write_text("previous\n", encoding="utf-8")

    def rows():
        yield {"text": "a", "labels": [], "lang": "en", "source": "x", "orig": "1"}
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        dec.write_jsonl(out, rows())
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.jsonl"]


def test_decision_categories_come_before_the_verdicts():
    item = SimpleNamespace(type="promotional", verdict={"categories": ["fraud"]})
    # a decision row that carries categories (the reviewer named them) wins over the verdict
    assert dec._labels_for("template", item, SimpleNamespace(decision="reject", categories=["gambling"])) == \
        ["gambling", "marketing"]
    assert dec._labels_for("template", item, SimpleNamespace(decision="reject", categories="")) == ["fraud", "marketing"]
    assert dec._labels_for("template", item, SimpleNamespace(decision="reject")) == ["fraud", "marketing"]
    # only marketing in the verdict: not a prohibited category, cannot be labelled
    clean = SimpleNamespace(type="notification", verdict={"categories": ["marketing"]})
    assert dec._labels_for("template", clean, SimpleNamespace(decision="reject")) is None
    assert dec._labels_for("template", clean, SimpleNamespace(decision="approve")) == []


def test_parse_since():
    assert dec.parse_since("2026-02-01") == datetime(2026, 2, 1, tzinfo=UTC)
    assert dec.parse_since("2026-02-01T08:00:00+08:00") == datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    assert dec.parse_since("2026-02-01 08:00") == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)  # naive = UTC
    with pytest.raises(ValueError, match="not a date"):
        dec.parse_since("02/01/2026")
