"""The local runner and `smsguard audit`: formats, ids carried over, malformed lines, errors."""
from __future__ import annotations

import json

import pytest

from app.audit import AuditError, run_audit
from app.audit.runner import summary_path, work_dir
from app.cli import main as cli_main

from .conftest import MODEL, REJECT_TEXT, RULES, read_findings, rows_for, sample_texts, write_csv, write_jsonl

KEYS = ["id", "account", "verdict", "categories", "score", "reasons"]


def _check_findings(found, rows):
    assert [f["id"] for f in found] == [r["id"] for r in rows]
    assert [f["account"] for f in found] == [r.get("account") for r in rows]
    for f in found:
        assert list(f) == KEYS
        assert f["verdict"] in ("allow", "review", "reject")
        for r in f["reasons"]:
            assert r["rule"][:3] in ("KW_", "PAT", "CLF")


@pytest.mark.parametrize("kind", ["jsonl", "jsonl.gz", "csv", "csv.gz"])
def test_formats_give_one_finding_per_message(tmp_path, config, kind):
    rows = rows_for(sample_texts(40))
    p = tmp_path / f"log.{kind}"
    if kind.startswith("jsonl"):
        write_jsonl(p, rows, gz=kind.endswith(".gz"))
    else:
        write_csv(tmp_path / "log.csv", rows)
        if kind.endswith(".gz"):
            import gzip
            p.write_bytes(gzip.compress((tmp_path / "log.csv").read_bytes()))
    s = run_audit(config([p], batch_size=16))
    found = read_findings(tmp_path / "findings.jsonl")
    _check_findings(found, rows)
    assert s.messages == 40 and s.malformed_count == 0
    assert found[0]["verdict"] == "reject" and "gambling" in found[0]["categories"]  # REJECT_TEXT
    assert not work_dir(tmp_path / "findings.jsonl").exists()


def test_same_findings_whatever_the_format_and_chunking(tmp_path, config):
    rows = rows_for(sample_texts(60))
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_csv(tmp_path / "b.csv", rows)
    run_audit(config([tmp_path / "a.jsonl"], out=tmp_path / "a.out", batch_size=7))
    run_audit(config([tmp_path / "b.csv"], out=tmp_path / "b.out", batch_size=1000))
    a = read_findings(tmp_path / "a.out")
    b = read_findings(tmp_path / "b.out")
    assert [{**x, "id": str(x["id"])} for x in a] == b


def test_malformed_lines_are_counted_with_line_numbers_and_run_completes(tmp_path, config):
    rows = rows_for(sample_texts(30))
    rows[4] = {"id": "no-text", "account": "A"}                    # line 5: missing text
    rows[10] = {"text": "没有编号的短信", "account": "B"}            # line 11: id falls back
    rows[12] = {"id": "no-account", "text": "hello"}                # line 13: account None
    p = write_jsonl(tmp_path / "log.jsonl", rows, extra_lines={20: "{oops", 25: "not json at all"})
    s = run_audit(config([p], batch_size=8))
    found = read_findings(tmp_path / "findings.jsonl")
    assert len(found) == 29
    ids = [f["id"] for f in found]
    assert "no-text" not in ids and "log.jsonl:11" in ids
    assert next(f for f in found if f["id"] == "no-account")["account"] is None
    assert s.malformed_count == 3
    assert [(m["line"], m["reason"].split(":")[0]) for m in s.malformed] == [
        (5, "missing field 'text'"), (21, "invalid JSON"), (27, "invalid JSON")]
    summary = json.loads(summary_path(tmp_path / "findings.jsonl").read_text(encoding="utf-8"))
    assert summary["malformed_count"] == 3 and summary["messages"] == 29
    assert sum(summary["verdicts"].values()) == 29
    assert "(none)" in s.accounts  # the message without an account


def test_worker_processes_give_the_same_findings(tmp_path, config):
    rows = rows_for(sample_texts(80))
    p = write_jsonl(tmp_path / "log.jsonl.gz", rows, gz=True)
    run_audit(config([p], out=tmp_path / "one.jsonl", workers=0, batch_size=10))
    s = run_audit(config([p], out=tmp_path / "two.jsonl", workers=2, batch_size=10))
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert s.messages == 80


def test_several_inputs_in_order(tmp_path, config):
    rows = rows_for(sample_texts(20))
    a = write_jsonl(tmp_path / "a.jsonl", rows[:10])
    b = write_csv(tmp_path / "b.csv", rows[10:])
    run_audit(config([a, b], batch_size=4))
    assert [str(f["id"]) for f in read_findings(tmp_path / "findings.jsonl")] == [r["id"] for r in rows]


def test_missing_input_and_unwritable_output(tmp_path, config):
    with pytest.raises(AuditError, match="input not found"):
        run_audit(config([tmp_path / "missing.jsonl"]))
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(["hello"]))
    with pytest.raises(AuditError, match="does not exist"):
        run_audit(config([p], out=tmp_path / "no" / "such" / "dir" / "f.jsonl"))
    with pytest.raises(AuditError, match="is a directory"):
        run_audit(config([p], report=tmp_path))  # --out DIR means DIR/findings.jsonl, --report DIR is an error


def _cli(argv, capsys):
    code = cli_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_errors_are_one_line(tmp_path, capsys):
    code, out, err = _cli(["audit", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "f.jsonl"),
                           "--rules", str(RULES), "--model", "none"], capsys)
    assert code != 0 and err.strip().count("\n") == 0 and "input not found" in err
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(["hello"]))
    # a "directory" that is a regular file cannot be written into, whoever runs the tests
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    code, out, err = _cli(["audit", str(p), "--out", str(blocker / "f.jsonl"), "--rules", str(RULES),
                           "--model", "none"], capsys)
    assert code != 0 and err.strip().count("\n") == 0 and "output" in err


def test_cli_unwritable_output_directory(tmp_path, capsys):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(["hello"]))
    code, out, err = _cli(["audit", str(p), "--out", str(tmp_path / "nodir" / "f.jsonl"), "--rules", str(RULES),
                           "--model", "none"], capsys)
    assert code != 0 and err.strip().count("\n") == 0 and "cannot write output" in err


def test_cli_writes_findings_and_prints_the_summary(tmp_path, capsys):
    rows = rows_for([REJECT_TEXT, "hello there"])
    p = write_jsonl(tmp_path / "log.jsonl", rows)
    out_path = tmp_path / "f.jsonl"
    code, out, err = _cli(["audit", str(p), "--out", str(out_path), "--rules", str(RULES), "--model", MODEL,
                           "--workers", "0"], capsys)
    assert code == 0, err
    assert "audited 2 messages" in out and "verdicts:" in out and "rules that fired most" in out
    assert "KW_GAMBLING" in out and "malformed lines: 0" in out
    assert [f["id"] for f in read_findings(out_path)] == ["m00000", "m00001"]


def test_a_message_the_engine_cannot_check_is_counted_not_fatal():
    from app.audit.readers import Record
    from app.audit.work import EngineSpec, JobSpec, install_engines, process_items
    from app.engine.types import Verdict

    class Fake:
        ruleset_version, model_version = "r", None

        def check(self, text):
            if text == "boom":
                raise RuntimeError("engine bug")
            return Verdict("allow")

        def check_batch(self, texts):
            return [self.check(t) for t in texts]

    job = JobSpec(engine=EngineSpec("/nonexistent-fake-rules", None))
    install_engines(job, Fake())
    recs = [Record(1, "a", None, None, "ok"), Record(2, "b", None, None, "boom"), Record(3, "c", None, None, "ok")]
    findings, _, stats, _ = process_items(job, recs, "f.jsonl")
    assert [json.loads(x)["id"] for x in findings.splitlines()] == ["a", "c"]
    assert stats["malformed"] == [{"file": "f.jsonl", "line": 2, "reason": "engine error: RuntimeError"}]


def test_run_is_recorded_when_a_database_is_configured(tmp_path, capsys, monkeypatch, migrated_url):
    from app.store.db import Database
    from app.store.models import AuditRun

    monkeypatch.setenv("SMSGUARD_DATABASE_URL", migrated_url)
    p = write_jsonl(tmp_path / "log.jsonl", rows_for([REJECT_TEXT, "hello"]))
    code, out, err = _cli(["audit", str(p), "--out", str(tmp_path / "f.jsonl"), "--rules", str(RULES),
                           "--model", "none", "--workers", "0"], capsys)
    assert code == 0, err
    db = Database(migrated_url)
    try:
        with db.session() as s:
            (run,) = s.query(AuditRun).all()
            assert run.status == "done" and run.counts["messages"] == 2
            assert run.counts["verdicts"]["reject"] == 1 and run.ruleset_version and run.finished_at
    finally:
        db.dispose()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_deeply_nested_line_is_malformed_and_the_run_goes_on(tmp_path, config, workers):
    """Issue 14, item 9: a 2,000-level line used to abort every run with a RecursionError."""
    rows = rows_for(sample_texts(20))
    deep = '{"id": "deep", "text": ' + "[" * 2000 + "]" * 2000 + "}"
    p = write_jsonl(tmp_path / "log.jsonl", rows, extra_lines={3: "[" * 2000 + "]" * 2000, 12: deep})
    s = run_audit(config([p], batch_size=8, workers=workers))
    assert [f["id"] for f in read_findings(tmp_path / "findings.jsonl")] == [r["id"] for r in rows]
    assert s.messages == 20 and [(m["line"], m["reason"]) for m in s.malformed] == [
        (4, "invalid JSON: nested too deeply"), (14, "invalid JSON: nested too deeply")]


# ------------------------------------------------- issue 14, item 11: nothing read, --out DIR, --with-text


def test_csv_without_the_text_column_is_an_error_naming_the_columns(tmp_path, capsys):
    rows = [{"id": "1", "account": "A", "sent_at": "", "content": "hello"}] * 3
    p = write_csv(tmp_path / "export.csv", rows, fields=("id", "account", "sent_at", "content"))
    out = tmp_path / "f.jsonl"
    code, _, err = _cli(["audit", str(p), "--out", str(out), "--rules", str(RULES), "--model", "none",
                         "--workers", "0"], capsys)
    assert code != 0 and err.strip().count("\n") == 0, err
    assert "no text column 'text'" in err and "id, account, sent_at, content" in err and "--text-field" in err
    assert not out.exists() and not work_dir(out).exists()
    code, _, err = _cli(["audit", str(p), "--out", str(out), "--rules", str(RULES), "--model", "none",
                         "--workers", "0", "--text-field", "content"], capsys)
    assert code == 0, err
    assert len(read_findings(out)) == 3


def test_every_line_malformed_is_an_error_with_the_first_reason(tmp_path, capsys):
    p = write_jsonl(tmp_path / "log.jsonl", ["{oops", "not json", "[1, 2]"])
    code, _, err = _cli(["audit", str(p), "--out", str(tmp_path / "f.jsonl"), "--rules", str(RULES),
                         "--model", "none", "--workers", "0"], capsys)
    assert code != 0 and err.strip().count("\n") == 0, err
    assert "every line is malformed (3 lines" in err and "log.jsonl line 1: invalid JSON" in err
    # JSON lines that lack the text field name the fields they have
    p = write_jsonl(tmp_path / "other.jsonl", [{"id": 1, "body": "hello"}])
    code, _, err = _cli(["audit", str(p), "--out", str(tmp_path / "f.jsonl"), "--rules", str(RULES),
                         "--model", "none", "--workers", "0"], capsys)
    assert code != 0 and "no text field 'text'" in err and "id, body" in err and "--text-field" in err


def test_an_empty_input_is_not_an_error(tmp_path, capsys):
    p = tmp_path / "empty.jsonl"
    p.write_bytes(b"")
    code, out, err = _cli(["audit", str(p), "--out", str(tmp_path / "f.jsonl"), "--rules", str(RULES),
                           "--model", "none", "--workers", "0"], capsys)
    assert code == 0, err
    assert "audited 0 messages" in out and (tmp_path / "f.jsonl").read_bytes() == b""


@pytest.mark.parametrize("slash", ["", "/"])
def test_out_naming_a_directory_writes_the_default_file_inside(tmp_path, capsys, slash):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for([REJECT_TEXT, "hello"]))
    d = tmp_path / "audits"
    d.mkdir()
    code, out, err = _cli(["audit", str(p), "--out", str(d) + slash, "--rules", str(RULES), "--model", "none",
                           "--workers", "0"], capsys)
    assert code == 0, err
    assert sorted(f.name for f in d.iterdir()) == ["findings.jsonl", "findings.summary.json"]
    assert f"findings: {d / 'findings.jsonl'}" in out
    assert len(read_findings(d / "findings.jsonl")) == 2


def test_out_ending_in_a_slash_names_a_directory_that_must_exist(tmp_path, capsys):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(["hello"]))
    code, _, err = _cli(["audit", str(p), "--out", str(tmp_path / "new") + "/", "--rules", str(RULES),
                         "--model", "none", "--workers", "0"], capsys)
    assert code != 0 and "does not exist" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "new").exists()


def test_findings_carry_the_text_only_with_with_text(tmp_path, capsys):
    rows = rows_for([REJECT_TEXT, "hello there"])
    p = write_jsonl(tmp_path / "log.jsonl", rows)
    base = ["audit", str(p), "--rules", str(RULES), "--model", "none", "--workers", "0"]
    code, _, err = _cli(base + ["--out", str(tmp_path / "plain.jsonl")], capsys)
    assert code == 0, err
    assert all("text" not in f for f in read_findings(tmp_path / "plain.jsonl"))
    code, _, err = _cli(base + ["--out", str(tmp_path / "text.jsonl"), "--with-text"], capsys)
    assert code == 0, err
    found = read_findings(tmp_path / "text.jsonl")
    assert [f["text"] for f in found] == [REJECT_TEXT, "hello there"]
    assert list(found[0]) == ["id", "account", "text", "verdict", "categories", "score", "reasons"]
    # the same findings otherwise
    assert [{k: v for k, v in f.items() if k != "text"} for f in found] == read_findings(tmp_path / "plain.jsonl")
