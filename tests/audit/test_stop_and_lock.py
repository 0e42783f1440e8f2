"""A real `smsguard audit` process stopped mid-run: SIGTERM exits 143, Ctrl-C 130, a killed worker
ends the run with one line, all without a traceback; two runs with the same --out are locked
against each other (issue 14, item 10)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from app.audit.runner import work_dir
from app.config import PROJECT_ROOT

from .conftest import RULES, rows_for, sample_texts, write_jsonl

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def lock_path(out):
    return out.with_name(f".{out.name}.lock")  # the documented name (docs/audit.md)


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    """~100,000 messages: many seconds of work with the keyword rules alone, so the run is
    still going when the test stops it (it never runs to the end)."""
    p = tmp_path_factory.mktemp("big") / "log.jsonl"
    return write_jsonl(p, rows_for(sample_texts(120) * 800))


def _argv(log, out, workers=1):
    return [sys.executable, "-m", "app.cli", "audit", str(log), "--out", str(out), "--rules", str(RULES),
            "--model", "none", "--workers", str(workers), "--batch-size", "50"]


def _start(log, out, workers=1):
    """A running audit that has written its first checkpoint (it is in the middle of the input)."""
    # SIGINT restored to its default: a command typed at a terminal has it, but a test run started
    # in the background by a non-interactive shell (`make test &`) inherits it ignored, and
    # Python then never raises KeyboardInterrupt (the audit ran to the end and exited 0)
    proc = subprocess.Popen(_argv(log, out, workers), cwd=PROJECT_ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ck = work_dir(out) / "checkpoint.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(ck.read_text(encoding="utf-8"))["units_done"] >= 1:
                return proc
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the audit did not get going: {proc.communicate()[1]}")


def _stderr(proc, timeout=60) -> str:
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


@pytest.mark.parametrize("how, code", [("SIGTERM", 143), ("Ctrl-C", 130)])
def test_stopped_run_exits_with_the_documented_code_and_no_traceback(tmp_path, big_log, how, code):
    out = tmp_path / "findings.jsonl"
    proc = _start(big_log, out)
    if how == "SIGTERM":
        os.kill(proc.pid, signal.SIGTERM)  # `kill PID`: the audit process only
    else:
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole process group, workers too
    err = _stderr(proc)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "run the same command again to resume" in err
    assert not out.exists() and (work_dir(out) / "checkpoint.json").exists()


def test_killed_worker_ends_the_run_with_one_line(tmp_path, big_log):
    out = tmp_path / "findings.jsonl"
    proc = _start(big_log, out, workers=2)
    worker = psutil.Process(proc.pid).children()[0]
    worker.send_signal(signal.SIGKILL)  # the out-of-memory killer, say
    err = _stderr(proc)
    assert proc.returncode not in (0, None), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "worker" in err and str(worker.pid) in err and "SIGKILL" in err
    assert not out.exists() and (work_dir(out) / "checkpoint.json").exists()


def test_a_second_run_with_the_same_out_is_refused_at_once(tmp_path, big_log):
    out = tmp_path / "findings.jsonl"
    first = _start(big_log, out)
    try:
        t0 = time.monotonic()
        second = subprocess.run(_argv(big_log, out), cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True,
                                timeout=60)
        assert time.monotonic() - t0 < 30
        assert second.returncode not in (0, None), second.stderr
        assert len(second.stderr.strip().splitlines()) == 1 and str(lock_path(out)) in second.stderr
        assert f"process {first.pid}" in second.stderr
        assert first.poll() is None  # the first run goes on, its work directory untouched
        assert (work_dir(out) / "checkpoint.json").exists()
    finally:
        os.kill(first.pid, signal.SIGTERM)
        _stderr(first)
    assert first.returncode == 143
    assert not lock_path(out).exists()  # removed by the run that held it


def test_lock_is_released_and_removed_after_a_finished_run(tmp_path, config):
    from app.audit import run_audit

    p = write_jsonl(tmp_path / "log.jsonl", rows_for(sample_texts(5)))
    run_audit(config([p]))
    run_audit(config([p]))  # the same output again: the first run let go of it
    assert not lock_path(tmp_path / "findings.jsonl").exists()
