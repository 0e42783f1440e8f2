"""Whole-or-nothing output and restart: an interrupted run leaves no output, and running it
again resumes from the checkpoint and ends with exactly one line per message."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from app.audit import run_audit
from app.audit.runner import work_dir
from app.config import PROJECT_ROOT

from .conftest import MODEL, RULES, read_findings, rows_for, sample_texts, write_jsonl


class Stop(KeyboardInterrupt):
    pass


def _stop_after(n):
    def hook(done):
        if done >= n:
            raise Stop()
    return hook


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_run_leaves_no_output_and_resumes(tmp_path, config, workers):
    rows = rows_for(sample_texts(100))
    p = write_jsonl(tmp_path / "log.jsonl.gz", rows, gz=True, extra_lines={50: "{bad"})
    clean = tmp_path / "clean.jsonl"
    ref = run_audit(config([p], out=clean, batch_size=10))

    out = tmp_path / "findings.jsonl"
    with pytest.raises(Stop):
        run_audit(config([p], out=out, batch_size=10, workers=workers, on_unit=_stop_after(4)))
    assert not out.exists()
    ck = json.loads((work_dir(out) / "checkpoint.json").read_text(encoding="utf-8"))
    assert ck["units_done"] == 4

    s = run_audit(config([p], out=out, batch_size=10, workers=workers))
    assert s.meta["resumed_units"] == 4
    assert s.meta["messages_this_run"] == 100 - 40 + 1 - 1  # 4 units of 10 items were done
    found = read_findings(out)
    assert len(found) == 100 and len({f["id"] for f in found}) == 100
    assert out.read_bytes() == clean.read_bytes()
    assert s.state()["verdicts"] == ref.state()["verdicts"]
    assert s.malformed_count == 1 and s.malformed[0]["line"] == 51
    assert s.accounts == ref.accounts and s.rules == ref.rules
    assert not work_dir(out).exists()


def test_checkpoint_of_other_inputs_is_not_used(tmp_path, config):
    p = write_jsonl(tmp_path / "log.jsonl", rows_for(sample_texts(30)))
    out = tmp_path / "findings.jsonl"
    with pytest.raises(Stop):
        run_audit(config([p], out=out, batch_size=5, on_unit=_stop_after(2)))
    write_jsonl(p, rows_for(sample_texts(31)))  # the input changed: start over
    s = run_audit(config([p], out=out, batch_size=5))
    assert s.meta["resumed_units"] == 0 and len(read_findings(out)) == 31


def test_killed_process_resumes_without_duplicates(tmp_path):
    """SIGKILL (no chance to clean up) in the middle of a real `smsguard audit` process."""
    rows = rows_for(sample_texts(120) * 40)  # 4,800 messages
    for i, r in enumerate(rows):
        r["id"] = f"k{i:05d}"
    p = write_jsonl(tmp_path / "log.jsonl", rows)
    out = tmp_path / "findings.jsonl"
    argv = [sys.executable, "-m", "app.cli", "audit", str(p), "--out", str(out), "--rules", str(RULES),
            "--model", MODEL, "--workers", "1", "--batch-size", "50"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ck_path = work_dir(out) / "checkpoint.json"
    deadline = time.monotonic() + 120
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = json.loads(ck_path.read_text(encoding="utf-8"))["units_done"]
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 2:
            workers = psutil.Process(proc.pid).children(recursive=True)
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    if not killed:
        pytest.skip("the run finished before it could be killed")
    assert not out.exists()
    # the orphaned worker notices that its parent is gone and ends itself
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"orphaned workers still running: {[p.pid for p in alive]}"
    r = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming after" in r.stderr
    found = read_findings(out)
    assert [f["id"] for f in found] == [r["id"] for r in rows]
