#!/usr/bin/env python
"""One big gzip sent log audited on a Dask cluster: one task for the whole file (the cut used
before compressed files were streamed) against the client streaming it in chunks.

It writes N messages into one .jsonl.gz (bench/bench_audit.py's generator), starts a
distributed LocalCluster on loopback (--workers processes, 1 thread each, each loading the
Moderator once), and runs `run_audit` twice on it: with --stream-items >= N (one task: one
worker busy, the others idle) and with the default chunk size. A warm-up run loads the engine
on every worker first, so both timed runs start warm. Prints wall time and messages/s of each.

    .venv/bin/python bench/bench_audit_dask.py                 # 200,000 messages, 2 workers
    .venv/bin/python bench/bench_audit_dask.py -n 500000 --workers 2
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_audit import write_log  # noqa: E402  (the same synthetic log as the local bench)


def run(log: Path, out_dir: Path, scheduler: str, stream_items: int, model: str) -> tuple[float, int]:
    from app.audit import AuditConfig, run_audit

    out = out_dir / f"findings-{stream_items}.jsonl"
    t0 = time.perf_counter()
    s = run_audit(AuditConfig(inputs=[str(log)], out=out, scheduler=scheduler, dask_stream_items=stream_items,
                              rules_dir=str(ROOT / "rules"), model_dir=model, progress=False, resume=False,
                              log=lambda m: None))
    return time.perf_counter() - t0, s.messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="messages in the log")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes (1 thread each)")
    ap.add_argument("--stream-items", type=int, default=20_000, help="lines per task when streaming")
    ap.add_argument("--model", default=str(ROOT / "models" / "smsguard-zh-en"), help="model dir or none")
    a = ap.parse_args()

    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="smsguard-dask-bench-") as tmp:
        tmp = Path(tmp)
        log = tmp / "sent.jsonl.gz"
        secs = write_log(log, a.n)
        print(f"log: {a.n:,} messages, {log.stat().st_size / 1e6:.1f} MB gzip, written in {secs:.1f}s")
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", memory_limit=0, silence_logs=50)
        try:
            small = tmp / "warm.jsonl.gz"
            write_log(small, 200 * a.workers, seed=3)
            run(small, tmp, cluster.scheduler_address, 100, a.model)  # every worker loads the engine
            one_wall, n1 = run(log, tmp, cluster.scheduler_address, a.n + 1, a.model)
            st_wall, n2 = run(log, tmp, cluster.scheduler_address, a.stream_items, a.model)
        finally:
            cluster.close()
        same = (tmp / f"findings-{a.n + 1}.jsonl").read_bytes() == (tmp / f"findings-{a.stream_items}.jsonl").read_bytes()
    print(f"{'cut':<44}{'wall s':>8}{'msg/s':>10}")
    print(f"{'one task for the file':<44}{one_wall:>8.1f}{n1 / one_wall:>10,.0f}")
    print(f"{f'streamed, {a.stream_items:,} lines per task':<44}{st_wall:>8.1f}{n2 / st_wall:>10,.0f}")
    print(f"speed-up x{one_wall / st_wall:.2f} with {a.workers} workers; identical findings: {same}")


if __name__ == "__main__":
    main()
