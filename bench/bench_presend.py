"""Benchmark: the pre-send check over HTTP under gunicorn, signed requests, measured with wrk.

    .venv/bin/python bench/bench_presend.py                 # 30 s, SQLite, 2 workers
    .venv/bin/python bench/bench_presend.py --duration 10 --connections 8
    .venv/bin/python bench/bench_presend.py --postgres "$(cat /tmp/pgurl)"
    .venv/bin/python bench/bench_presend.py --endpoint moderate   # /v1/moderate, for comparison
    .venv/bin/python bench/bench_presend.py --no-record           # without the record of checks
    .venv/bin/python bench/bench_presend.py --check-text masked   # the record with masked text

What it does:
1. a fresh instance folder and database (SQLite file, or a fresh PostgreSQL schema), migrated;
   an account with an approved signature and an approved verification template, a tenant key;
2. pre-generates every request wrk will send: each signed with its own nonce, all timestamps
   taken now (the server accepts 300 s of skew, the run takes --duration), a distinct
   recipient per request (so the 1-a-minute verification limit does not reject the load);
3. starts `smsguard serve` (gunicorn, app/gunicorn_conf.py, --workers) on 127.0.0.1 (a free port);
4. runs `wrk -t --threads -c --connections -d --duration --latency -s bench/presend/replay.lua`:
   the Lua script replays the pre-generated requests (each thread its own slice, never one twice);
5. prints wrk's output, the figures (requests/s, p50/p90/p99), the status counts, and checks the
   database afterwards: every allowed check counted in daily_volumes, no nonce refused, and (the
   record of checks, on unless --no-record) every answered check recorded once the server has
   stopped (SIGTERM: the workers write what they still hold), none dropped.

Exit status 0 when the target holds (>= --target-rps and p99 <= --target-p99-ms, no error
statuses), 1 otherwise. Loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LUA = ROOT / "bench" / "presend" / "replay.lua"
TEMPLATE = "您的验证码是${code}，5分钟内有效，请勿泄露。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(url: str) -> dict:
    """Migrate, create the account, signature, template (approved) and a tenant key."""
    from app.services import accounts, keys
    from app.store import migrate
    from app.store.db import Database
    from app.store.models import Signature, Template

    migrate.upgrade(url)
    db = Database(url)
    with db.session() as s:
        accounts.create(s, "BENCH", "Bench Ltd", actor="bench")
        sig = Signature(account_id="BENCH", name="阿克米", status="approved")
        s.add(sig)
        s.flush()
        tpl = Template(account_id="BENCH", signature_id=sig.id, type="verification",
                       content=TEMPLATE, variables={"code": "code"}, status="approved")
        s.add(tpl)
        s.flush()
        k = keys.create(s, "BENCH", "tenant", label="bench", actor="bench")
        out = {"template_id": tpl.id, "public_key": k.public_key, "private_key": k.private_key}
    db.dispose()
    return out


def generate_requests(path: Path, n: int, endpoint: str, info: dict) -> None:
    """n signed requests, one per line (see replay.lua), unique nonces, timestamps now."""
    from app.services.keys import sign

    ts = str(int(time.time()))
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            code = f"{secrets.randbelow(1_000_000):06d}"
            if endpoint == "check":
                route = "/v1/messages/check"
                body = {"template_id": info["template_id"], "params": {"code": code},
                        "phone": f"+86138{i:08d}", "message_id": f"m-{i}"}
            else:
                route = "/v1/moderate"
                body = {"text": TEMPLATE.replace("${code}", code)}
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            nonce = secrets.token_hex(16)
            sig = sign(info["private_key"], "POST", route, [], ts, nonce, raw)
            fh.write("\t".join(["POST", route, info["public_key"], ts, nonce, sig, raw.decode()]) + "\n")


def worker_cpu(master_pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each gunicorn worker (the master's children), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        kids = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        return out
    for pid in map(int, kids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return out


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine_cpu() -> tuple[float, float] | None:
    """(busy, idle) CPU seconds of the whole machine so far, from /proc/stat (None elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, idle / tick


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.3)
    raise SystemExit("the server did not become ready")


def bench_database(postgres_url: str | None, tmp: Path, prefix: str) -> tuple[str, str | None]:
    """(database URL, schema): a fresh schema of ``postgres_url``, else an SQLite file in tmp."""
    if not postgres_url:
        return f"sqlite:///{tmp / 'instance' / 'smsguard.db'}", None
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with sa.create_engine(postgres_url, poolclass=sa.pool.NullPool).begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url, schema


def server_env(tmp: Path, url: str, port: int, workers: int, log_level: str, record: bool = True,
               check_text: str = "full") -> dict:
    """The environment of a `smsguard serve` for a bench: its own instance folder and metrics dir."""
    return dict(os.environ, SMSGUARD_INSTANCE_DIR=str(tmp / "instance"), SMSGUARD_DATABASE_URL=url,
                SMSGUARD_BIND=f"127.0.0.1:{port}", SMSGUARD_WORKERS=str(workers),
                SMSGUARD_LOG_LEVEL=log_level, SMSGUARD_WATCH_RULES="1",
                SMSGUARD_CHECK_RECORD="1" if record else "0", SMSGUARD_CHECK_TEXT=check_text,
                PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"))


def cleanup(server, postgres_url: str | None, schema: str | None, tmp: Path, keep: bool) -> None:
    """Stop the server's process group, drop the bench's PostgreSQL schema, remove the folder."""
    if server is not None and server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    if schema:
        import sqlalchemy as sa

        with sa.create_engine(postgres_url, poolclass=sa.pool.NullPool).begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=30, help="seconds of load (default 30)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--endpoint", choices=("check", "moderate"), default="check")
    ap.add_argument("--postgres", metavar="URL", help="run on a fresh schema of this PostgreSQL database")
    ap.add_argument("--requests", type=int, default=0,
                    help="pre-generated requests (default 4,000 per second of duration)")
    ap.add_argument("--log-level", default="INFO", help="the server's SMSGUARD_LOG_LEVEL")
    ap.add_argument("--no-record", dest="record", action="store_false",
                    help="SMSGUARD_CHECK_RECORD=0: without the record of checks (for a before/after comparison)")
    ap.add_argument("--check-text", choices=("full", "masked", "none"), default="full",
                    help="SMSGUARD_CHECK_TEXT of the server (default full)")
    ap.add_argument("--target-rps", type=float, default=1000.0)
    ap.add_argument("--target-p99-ms", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.duration > 240:
        print("--duration must stay under the 300 s signature window", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="smsguard-bench-"))
    url, schema = bench_database(args.postgres, tmp, "bench")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(tmp, url, port, args.workers, args.log_level, args.record, args.check_text)
    server = None
    rc = 1
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("SMSGUARD_")})
        info = prepare_database(url)
        n = args.requests or args.duration * 4000
        reqfile = tmp / "requests.tsv"
        t0 = time.time()
        generate_requests(reqfile, n, args.endpoint, info)
        print(f"generated {n} signed requests in {time.time() - t0:.1f} s -> {reqfile}")
        log = (tmp / "server.log").open("w")
        server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "smsguard"), "serve", "--no-upgrade"],
                                  env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        wait_ready(base, server)
        print(f"server: gunicorn, {args.workers} workers, {base}, database "
              f"{'PostgreSQL' if args.postgres else 'SQLite (WAL)'}, record of checks "
              f"{'on (text ' + args.check_text + ')' if args.record else 'off'}")
        # a short warm-up outside the measurement would spend nonces of the file: use /readyz
        for _ in range(20):
            urllib.request.urlopen(base + "/healthz").read()
        cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
               "--timeout", "5s", "-s", str(LUA), base + ("/v1/messages/check" if args.endpoint == "check"
                                                          else "/v1/moderate")]
        print("$ " + " ".join(cmd))
        wrk_env = dict(os.environ, REQUESTS_FILE=str(reqfile), WRK_THREADS=str(args.threads))
        load_before = loadavg()
        cpu0 = worker_cpu(server.pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child reaped meanwhile
        mach0 = machine_cpu()
        out = subprocess.run(cmd, env=wrk_env, capture_output=True, text=True, check=False)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        mach1 = machine_cpu()
        cpu1 = worker_cpu(server.pid)
        load_after = loadavg()
        print(out.stdout, end="")
        if out.stderr:
            print(out.stderr, file=sys.stderr, end="")
        figures = dict(kv for line in re.findall(r"^BENCH (.*)$", out.stdout, re.M)
                       for kv in re.findall(r"(\S+)=(\S+)", line))
        statuses = {k: int(v) for k, v in figures.items() if k.startswith("status_")}
        rps = float(figures.get("rps", 0))
        p99 = float(figures.get("p99_ms", 1e9))
        bad = sum(v for k, v in statuses.items() if k != "status_200")
        errors = re.search(r"^BENCH errors (.*)$", out.stdout, re.M)
        print("\n== figures ==")
        print(f"requests/s: {rps:,.0f}   p50 {figures.get('p50_ms')} ms   p90 {figures.get('p90_ms')} ms   "
              f"p99 {p99} ms   p99.9 {figures.get('p99.9_ms')} ms   max {figures.get('max_ms')} ms")
        print(f"statuses: {statuses}   {errors.group(1) if errors else ''}")
        served = int(figures.get("requests", 0)) or 1
        used = sum(cpu1.get(pid, 0.0) - t for pid, t in cpu0.items())
        split = ", ".join(f"{cpu1.get(pid, 0.0) - t:.1f}" for pid, t in sorted(cpu0.items()))
        print(f"server CPU: {used:.1f} s over {len(cpu0)} workers ({split} s) = {used / served * 1000:.2f} ms per request "
              f"(the ceiling on 2 free cores would be ~{2 / (used / served):,.0f} req/s)")
        wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        print(f"load generator (wrk) CPU: {wrk_cpu:.1f} s = {wrk_cpu / served * 1000:.2f} ms per request, "
              f"{wrk_cpu / args.duration:.2f} of a core on the same machine")
        if mach0 and mach1:
            busy, idle = mach1[0] - mach0[0], mach1[1] - mach0[1]
            other = max(0.0, busy - used - wrk_cpu)
            print(f"machine CPU over the run: {busy + idle:.1f} s = server {used / (busy + idle):.0%}, wrk "
                  f"{wrk_cpu / (busy + idle):.0%}, everything else (kernel threads, other processes, time stolen by the host) "
                  f"{other / (busy + idle):.0%}, idle {idle / (busy + idle):.0%}")
        print(f"machine load average (1/5/15 min): before {load_before}, after {load_after} on {os.cpu_count()} cores "
              "(other processes on the machine compete for the same cores)")
        if figures.get("threads_out_of_requests", "0") != "0":
            print("WARNING: wrk ran out of pre-generated requests; raise --requests")
        recorded_ok = True
        if args.record:
            figures_rec = record_metrics(base)
            # stop the server the normal way (SIGTERM): each worker writes what it still holds
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
            recorded_ok = verify_records(url, statuses.get("status_200", 0), figures_rec)
        if args.endpoint == "check":
            verify_database(url, statuses.get("status_200", 0))
        ok = rps >= args.target_rps and p99 <= args.target_p99_ms and bad == 0 and recorded_ok
        print(f"target >= {args.target_rps:,.0f} req/s with p99 <= {args.target_p99_ms} ms: "
              f"{'MET' if ok else 'NOT MET'}")
        rc = 0 if ok else 1
    finally:
        cleanup(server, args.postgres, schema, tmp, args.keep)
    return rc


def record_metrics(base: str) -> dict:
    """The record of checks' counters from /metrics (summed over the workers) right after the
    load: written so far, dropped by reason, still queued."""
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception as exc:  # noqa: BLE001 - a bench figure, not a failure
        return {"error": str(exc)}
    out: dict = {"written": 0.0, "dropped": {}, "queued": 0.0}
    for line in text.splitlines():
        if line.startswith("smsguard_check_records_written_total"):
            out["written"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("smsguard_check_records_dropped_total"):
            reason = re.search(r'reason="([^"]*)"', line)
            out["dropped"][reason.group(1) if reason else "?"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("smsguard_check_record_queue"):
            out["queued"] += float(line.rsplit(" ", 1)[1])
    return out


def verify_records(url: str, ok_responses: int, at_end: dict) -> bool:
    """After the server stopped: every answered check is in check_records, none dropped."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM check_records")).scalar()
    engine.dispose()
    dropped = sum((at_end.get("dropped") or {}).values())
    print(f"record of checks: at the end of the load {at_end.get('written', 0):,.0f} written, "
          f"{at_end.get('queued', 0):,.0f} still queued, dropped {at_end.get('dropped') or 0}; "
          f"after the server stopped: {n:,} records for {ok_responses:,} 200s read by wrk")
    return n >= ok_responses and dropped == 0


def verify_database(url: str, ok_responses: int) -> None:
    """The counts the service kept agree with what wrk saw."""
    import sqlalchemy as sa

    from app.store.models import DailyVolume

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        allowed = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(DailyVolume.allowed), 0))
                               .where(DailyVolume.account_id == "BENCH")).scalar()
    engine.dispose()
    # wrk stops mid-request at the deadline: the server may have answered a few more than wrk read
    print(f"database: {allowed} allowed checks counted in daily_volumes; wrk read {ok_responses} 200s")


if __name__ == "__main__":
    sys.exit(main())
