"""The HTML report is self-contained and escapes message text; the what-if comparison lists
the messages whose verdict a rule change would change, with both verdicts."""
from __future__ import annotations

import re
import shutil

from app.audit import run_audit
from app.audit.compare import changes_path, read_changes
from app.audit.report import highlight

from .conftest import RULES, read_findings, rows_for, sample_texts, write_jsonl

EVIL = "<script>alert('x')</script>"
REJECT_WITH_HTML = f"澳门百家乐上线 {EVIL} 首充送88%彩金 <b>官网</b> & more"


def test_report_is_self_contained_and_escapes_text(tmp_path, config):
    # first in the input: the samples are the first rejected messages of each category
    rows = rows_for([REJECT_WITH_HTML] + sample_texts(60))
    rows[0]["account"] = "<img src=x onerror=alert(1)>"
    p = write_jsonl(tmp_path / "log.jsonl", rows, extra_lines={7: "{broken <i>"})
    report = tmp_path / "report.html"
    s = run_audit(config([p], report=report, batch_size=20))
    found = read_findings(tmp_path / "findings.jsonl")
    assert found[0]["verdict"] == "reject"  # a keyword rule with a reject action: any model
    doc = report.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>")
    # nothing fetched from anywhere: no attribute or stylesheet points at a remote address (links
    # inside message texts are shown as text)
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
                         doc, re.I)
    assert "<script" not in doc.lower() and "<link" not in doc.lower() and "<img" not in doc.lower()
    assert not re.search(r"<[^>]*\s(src|href)\s*=", doc, re.I)  # no tag loads anything
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in doc
    assert "&lt;b&gt;官网&lt;/b&gt; &amp; more" in doc
    assert "&lt;img src=x onerror=alert(1)&gt;" in doc
    assert "<mark" in doc and "百家乐</mark>" in doc            # the matched span highlighted
    for section in ("Verdicts over time", "Categories", "Top accounts", "Top rules",
                    "Samples per category: rejected and sent to review", "Malformed lines (1)"):
        assert section in doc
    assert doc.count("<svg") >= 3
    assert s.samples["gambling"]


def test_highlight_merges_overlaps_and_escapes():
    assert highlight("a<b>cd", [[1, 4, "R1"], [3, 5, "R2"]]) == 'a<mark title="R1, R2">&lt;b&gt;c</mark>d'
    assert highlight("x&y", [[5, 9]]) == "x&amp;y"


def test_compare_rules_lists_changed_verdicts(tmp_path, config):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    kw = rules / "keywords" / "gambling.yaml"
    text = kw.read_text(encoding="utf-8")
    anchor = "      - 威尼斯人娱乐\n"
    assert anchor in text
    kw.write_text(text.replace(anchor, "      - 喵喵星球乐园\n" + anchor, 1), encoding="utf-8")

    base = sample_texts(40)
    marked = ["周末一起去喵喵星球乐园玩吧，门票半价", "【通知】喵喵星球乐园本周六闭园维护"]
    rows = rows_for(base[:20] + marked + base[20:])
    p = write_jsonl(tmp_path / "log.jsonl", rows)
    out = tmp_path / "findings.jsonl"
    s = run_audit(config([p], out=out, compare_rules=str(rules), batch_size=16))
    findings = {f["id"]: f for f in read_findings(out)}
    changes = read_changes(changes_path(out))
    marked_ids = {r["id"] for r in rows if "喵喵星球乐园" in r["text"]}
    expected = {i for i in marked_ids if findings[i]["verdict"] != "reject"}
    assert expected, "the marked messages were rejected before the change: pick other text"
    assert {c["id"] for c in changes} == expected
    for c in changes:
        assert c["before"]["verdict"] == findings[c["id"]]["verdict"]   # the findings are the base rules
        assert c["after"]["verdict"] == "reject" and "KW_GAMBLING_CASINO_BRAND" in c["after"]["rules"]
        assert "喵喵星球乐园" in c["text"]
    assert sum(s.changes.values()) == len(expected)
    assert s.meta["compare"].startswith("rules ")
