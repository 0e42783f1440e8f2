"""Outputs at an fsspec URL: written locally, uploaded whole at the end (findings last), resumable
when interrupted, and a clear error for a URL that cannot be written."""
from __future__ import annotations

import json
import uuid

import fsspec
import pytest

from app.audit import AuditError, run_audit
from app.cli import main as cli_main

from .conftest import MODEL, RULES, rows_for, sample_texts, write_jsonl


@pytest.fixture
def instance(tmp_path, monkeypatch):
    d = tmp_path / "instance"
    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(d))
    return d


def _mem(name: str) -> str:
    return f"memory://audits-{uuid.uuid4().hex[:8]}/{name}"


def _read(url: str) -> bytes:
    with fsspec.open(url, "rb") as fh:
        return fh.read()


def test_outputs_at_a_url_match_a_local_run(tmp_path, config, instance):
    rows = rows_for(sample_texts(40))
    p = write_jsonl(tmp_path / "log.jsonl.gz", rows, gz=True, extra_lines={7: "{bad"})
    run_audit(config([p], out=tmp_path / "local.jsonl", batch_size=8))
    out, report = _mem("findings.jsonl"), _mem("report.html")
    s = run_audit(config([p], out=out, report=report, batch_size=8))
    assert _read(out) == (tmp_path / "local.jsonl").read_bytes()
    summary = json.loads(_read(out.rsplit("/", 1)[0] + "/findings.summary.json"))
    assert summary["output"] == out and summary["messages"] == s.messages == 40
    assert _read(report).startswith(b"<!DOCTYPE html>")
    staged = [f for f in (instance / "audit-staging").rglob("*") if f.is_file()]
    assert staged == []  # uploaded, nothing left behind


def test_interrupted_run_uploads_nothing_and_resumes(tmp_path, config, instance):
    rows = rows_for(sample_texts(50))
    p = write_jsonl(tmp_path / "log.jsonl", rows)
    run_audit(config([p], out=tmp_path / "local.jsonl", batch_size=10))
    out = _mem("f.jsonl")

    def stop(done):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_audit(config([p], out=out, batch_size=10, on_unit=stop))
    fs = fsspec.filesystem("memory")
    assert not fs.exists(out)
    done = []
    run_audit(config([p], out=out, batch_size=10, on_unit=done.append))
    assert done == [3, 4, 5]  # resumed from the local checkpoint
    assert _read(out) == (tmp_path / "local.jsonl").read_bytes()


@pytest.mark.parametrize("url, message", [
    ("nosuchproto://bucket/f.jsonl", "cannot write nosuchproto://bucket/f.jsonl"),
    ("memory://bucket/folder/", "it names a folder"),
])
def test_unwritable_url_is_a_clear_error_before_any_work(tmp_path, config, instance, url, message):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(sample_texts(5)))
    kind = "report" if url.endswith("/") else "out"  # --out URL/ means URL/findings.jsonl (below)
    with pytest.raises(AuditError, match=message):
        run_audit(config([p], **{kind: url}))


def test_out_url_ending_in_a_slash_gets_the_default_file_name(tmp_path, config, instance):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(sample_texts(5)))
    folder = _mem("")
    s = run_audit(config([p], out=folder))
    assert s.meta["output"] == folder + "findings.jsonl"
    assert len(_read(folder + "findings.jsonl").splitlines()) == 5


def test_missing_local_folder_in_a_file_url(tmp_path, config, instance):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(sample_texts(5)))
    with pytest.raises(AuditError, match="does not exist"):
        run_audit(config([p], out=f"file://{tmp_path}/nowhere/f.jsonl"))


def test_cli_prints_the_urls(tmp_path, instance, capsys):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(sample_texts(6)))
    out = _mem("cli.jsonl")
    code = cli_main(["audit", str(p), "--out", out, "--workers", "0", "--rules", str(RULES), "--model", MODEL])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"findings: {out}  summary: {out.rsplit('/', 1)[0]}/cli.summary.json" in printed
    assert len(_read(out).splitlines()) == 6
