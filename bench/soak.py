"""Soak test: the pre-send check at a steady rate for 10 minutes under gunicorn, a worker killed
(SIGKILL) in the middle; memory, p99 latency and errors sampled every minute.

    .venv/bin/python bench/soak.py                          # 600 s at 200 req/s, SQLite, 2 workers
    .venv/bin/python bench/soak.py --duration 120 --rate 100 --no-write
    .venv/bin/python bench/soak.py --postgres "$(cat /tmp/pgurl)"

What it does:
1. a fresh instance folder and database, migrated and seeded through the services (an account
   with an approved signature and verification template, a tenant key): bench/bench_presend.py's
   ``prepare_database`` (imported, not copied);
2. starts ``smsguard serve`` (gunicorn, app/gunicorn_conf.py) on 127.0.0.1 on a free port;
3. sends ``POST /v1/messages/check`` (``/v1/moderate`` with ``--endpoint moderate``) at a FIXED
   rate from an open-loop generator: request i is due at start + i/rate whether or not earlier
   answers came back, and its latency is measured from that due time, so a stall shows up in the
   figures instead of silently slowing the load down (wrk is closed-loop: its connections wait
   for answers, which hides stalls, "coordinated omission"; wrk2, which fixes that, is not in
   Debian). Each request is signed when it is due (fresh timestamp, unique nonce, a distinct
   recipient), so the run may last longer than the 300 s signature window, which a file of
   pre-signed requests (bench/presend/replay.lua) cannot;
4. every --sample seconds: RSS of the gunicorn master and of each worker (/proc), the requests
   finished in that minute, their p50/p99/max latency, status counts and connection errors;
5. at --kill-at seconds (default: half way) SIGKILLs one worker; gunicorn starts a new one.
   Connection errors of requests that were in flight at that moment are the killed worker's
   (a worker serves up to SMSGUARD_THREADS requests at once); every other error counts as one;
6. at the end: the per-minute table, the verdict (errors other than the killed worker's in-flight
   requests must be zero; worker memory flat), and a check that every allowed check the client
   saw acknowledged is counted in the database (daily_volumes); written to docs/soak.md.

Exit status 0 when no unexplained error occurred and memory stayed flat, 1 otherwise.
Loopback only; bounded by --duration.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_presend import (  # noqa: E402
    TEMPLATE, bench_database, cleanup, free_port, loadavg, prepare_database, server_env, wait_ready)

from app.services.keys import sign  # noqa: E402

DOC = ROOT / "docs" / "soak.md"


# ------------------------------------------------------------------------------- /proc reading

def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            out.extend(int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    except OSError:
        pass
    return sorted(out)


def private_mib(pid: int) -> float | None:
    """Memory only this process holds (Private_Clean + Private_Dirty): what grows on a leak."""
    try:
        total = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
        return total / 1024
    except (OSError, ValueError):
        return None


def load1() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return None


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ----------------------------------------------------------------------------- the load itself

@dataclass
class Result:
    due: float       # when it was due (monotonic)
    sent: float      # when the connection attempt started
    done: float      # when it finished (answer or error)
    status: int | None
    verdict: str | None = None
    error: str | None = None
    kind: str = "check"      # "check" or "complaint"
    ref: str | None = None   # a complaint's external_id

    @property
    def latency(self) -> float:
        return self.done - self.due


@dataclass
class Minute:
    index: int
    t0: float
    t1: float
    results: list[Result] = field(default_factory=list)
    rss_master: float | None = None
    rss_workers: dict[int, float] = field(default_factory=dict)
    private_workers: dict[int, float] = field(default_factory=dict)
    load: float | None = None


class Load:
    def __init__(self, host: str, port: int, path: str, info: dict, endpoint: str, timeout: float = 10.0):
        self.host, self.port, self.path = host, port, path
        self.info = info
        self.endpoint = endpoint
        self.timeout = timeout
        self.results: list[Result] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.complaints_every = 0  # every n-th request files a complaint instead (0: none)

    def request_bytes(self, i: int) -> tuple[bytes, str, str | None]:
        """(the raw request, its kind, a complaint's external_id)."""
        if self.complaints_every and i % self.complaints_every == self.complaints_every - 1:
            ref = f"soak-c-{i}"
            body = {"account": COMPLAINT_ACCOUNT, "phone": f"+86137{i:08d}", "source": "carrier",
                    "external_id": ref, "reason": "soak"}
            return self._raw("/v1/complaints", body, self.info["admin_public_key"],
                             self.info["admin_private_key"]), "complaint", ref
        return self._raw(self.path, self._check_body(i), self.info["public_key"], self.info["private_key"]), "check", None

    def _check_body(self, i: int) -> dict:
        code = f"{secrets.randbelow(1_000_000):06d}"
        if self.endpoint == "check":
            body = {"template_id": self.info["template_id"], "params": {"code": code},
                    "phone": f"+86139{i:08d}", "message_id": f"soak-{i}"}
        else:
            body = {"text": TEMPLATE.replace("${code}", code)}
        return body

    def _raw(self, path: str, body: dict, public_key: str, private_key: str) -> bytes:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = sign(private_key, "POST", path, [], ts, nonce, raw)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
                f"X-Api-Key: {public_key}\r\nX-Timestamp: {ts}\r\nX-Nonce: {nonce}\r\n"
                f"X-Signature: {sig}\r\nConnection: close\r\n\r\n")
        return head.encode() + raw

    async def one(self, i: int, due: float) -> None:
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        sent = loop.time()
        status = verdict = error = None
        writer = None
        request, kind, ref = self.request_bytes(i)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
            writer.write(request)
            await writer.drain()
            # one connection per request (Connection: close, like a caller without a pool): read to EOF
            data = await asyncio.wait_for(reader.read(), self.timeout)
            if not data.startswith(b"HTTP/1."):
                error = "empty answer" if not data else "garbled answer"
            else:
                status = int(data.split(b" ", 2)[1])
                body = data.partition(b"\r\n\r\n")[2]
                if status == 200 and kind == "check":
                    try:
                        verdict = json.loads(body).get("verdict")
                    except ValueError:
                        error = "truncated body"
        except asyncio.TimeoutError:
            error = "timeout"
        except OSError as exc:
            error = type(exc).__name__
        finally:
            if writer is not None:
                writer.close()
            self.in_flight -= 1
        self.results.append(Result(due, sent, loop.time(), status, verdict, error, kind, ref))

    async def run(self, rate: float, duration: float, on_tick=None) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: set[asyncio.Task] = set()
        i = 0
        while True:
            due = start + i / rate
            if due - start >= duration:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            t = asyncio.ensure_future(self.one(i, due))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
            if on_tick is not None and i % 50 == 0:
                on_tick(loop.time() - start)
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 5)


# ------------------------------------------------------------------------------------- figures

def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summarise(minutes: list[Minute], kill: dict, results: list[Result]) -> dict:
    t_kill = kill.get("t")
    killed, other = [], []
    for r in results:
        if r.error is None and r.status is not None and r.status in (200, 201):
            continue
        # in flight when the worker died: sent before the kill (plus signal delivery slack) and
        # failed at or after it, with a connection-level error (no status line)
        if (t_kill is not None and r.status is None and r.sent <= t_kill + 0.05 and r.done >= t_kill
                and r.error in ("empty answer", "ConnectionResetError", "BrokenPipeError", "garbled answer",
                                "truncated body", "IncompleteReadError")):
            killed.append(r)
        else:
            other.append(r)
    non200 = {}
    for r in results:
        if r.status is not None and r.status not in (200, 201):
            non200[r.status] = non200.get(r.status, 0) + 1
    return {"killed_in_flight": killed, "other_errors": other, "non200": non200}


def memory_verdict(minutes: list[Minute], killed_pid: int | None) -> tuple[bool, str]:
    """Flat: the private memory of every worker alive from the second sample to the last grew by
    less than 10 % or 20 MiB (whichever is larger); the master's RSS likewise."""
    sampled = [m for m in minutes if m.private_workers]
    if len(sampled) < 3:
        return True, "too few samples to judge"
    first, last = sampled[1], sampled[-1]  # skip the first minute: warm-up (caches filling)
    notes, ok = [], True
    for pid, a in first.private_workers.items():
        b = last.private_workers.get(pid)
        if b is None:
            continue
        grew = b - a
        bad = grew > max(0.10 * a, 20)
        ok &= not bad
        notes.append(f"worker {pid} private: {a:.1f} -> {b:.1f} MiB ({grew:+.1f})")
    if first.rss_master and last.rss_master:
        grew = last.rss_master - first.rss_master
        ok &= not grew > max(0.10 * first.rss_master, 20)
        notes.append(f"master: {first.rss_master:.1f} -> {last.rss_master:.1f} MiB ({grew:+.1f})")
    # the replacement worker: from its first to its last sample
    if killed_pid is not None:
        new = [pid for pid in last.private_workers if pid not in first.private_workers]
        for pid in new:
            seen = [m.private_workers[pid] for m in sampled if pid in m.private_workers]
            if len(seen) >= 3:
                a, b = seen[1], seen[-1]
                ok &= not (b - a) > max(0.10 * a, 20)
                notes.append(f"replacement worker {pid} private: {a:.1f} -> {b:.1f} MiB ({b - a:+.1f}) after its first minute")
    return ok, "; ".join(notes)


def table(minutes: list[Minute], rate: float, kill: dict) -> str:
    head = ("| minute | requests | rate/s | p50 ms | p99 ms | max ms | not 200/201 | conn errors | "
            "RSS master MiB | RSS workers MiB | private workers MiB | load avg |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for m in minutes:
        lat = [r.latency * 1000 for r in m.results if r.status is not None and r.kind == "check"]
        n = len(m.results)
        non200 = sum(1 for r in m.results if r.status is not None and r.status not in (200, 201))
        conn = sum(1 for r in m.results if r.status is None)
        workers = " + ".join(f"{v:.0f}" for _, v in sorted(m.rss_workers.items())) or "?"
        private = " + ".join(f"{v:.1f}" for _, v in sorted(m.private_workers.items())) or "?"
        mark = " (kill)" if kill.get("t") is not None and m.t0 <= kill["t"] < m.t1 else ""
        span = max(m.t1 - m.t0, 1e-9)
        rows.append(f"| {m.index}{mark} | {n} | {n / span:.0f} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} | "
                    f"{max(lat) if lat else float('nan'):.1f} | {non200} | {conn} | "
                    f"{m.rss_master or float('nan'):.0f} | {workers} | {private} | {m.load if m.load is not None else '?'} |")
    return head + "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    ap.add_argument("--rate", type=float, default=200, help="requests per second, fixed (default 200)")
    ap.add_argument("--sample", type=float, default=60, help="seconds between samples (default 60)")
    ap.add_argument("--kill-at", type=float, default=None, help="seconds in; default half way; <0: no kill")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--endpoint", choices=("check", "moderate"), default="check")
    ap.add_argument("--complaints-every", type=int, default=20,
                    help="every n-th request files a complaint (admin key) instead; 0: none (default 20)")
    ap.add_argument("--postgres", metavar="URL", help="run on a fresh schema of this PostgreSQL database")
    ap.add_argument("--log-level", default="INFO", help="the server's SMSGUARD_LOG_LEVEL")
    ap.add_argument("--out", default=str(DOC), help="where to write the report (default docs/soak.md)")
    ap.add_argument("--no-write", action="store_true", help="print the report only")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    # half way, in the middle of a sample period (so its minute is plain to see)
    kill_at = args.duration / 2 + args.sample / 2 if args.kill_at is None else args.kill_at

    tmp = Path(tempfile.mkdtemp(prefix="smsguard-soak-"))
    url, schema = bench_database(args.postgres, tmp, "soak")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    path = "/v1/messages/check" if args.endpoint == "check" else "/v1/moderate"
    env = server_env(tmp, url, port, args.workers, args.log_level)
    server = None
    rc = 1
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("SMSGUARD_")})
        info = prepare_database(url)
        info.update(seed_complaints(url))
        log_path = tmp / "server.log"
        server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "smsguard"), "serve", "--no-upgrade"],
                                  env=env, cwd=ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        wait_ready(base, server)
        workers0 = children(server.pid)
        print(f"server: gunicorn pid {server.pid}, workers {workers0}, {base}, database "
              f"{'PostgreSQL' if args.postgres else 'SQLite (WAL)'}; load {args.rate:g} req/s for "
              f"{args.duration:g} s on {path}; kill a worker at {kill_at:g} s", flush=True)

        load = Load("127.0.0.1", port, path, info, args.endpoint)
        load.complaints_every = args.complaints_every
        minutes: list[Minute] = []
        kill: dict = {}
        load_before = loadavg()

        async def run() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()

            def sample(now: float) -> None:
                t0 = minutes[-1].t1 if minutes else start
                m = Minute(len(minutes) + 1, t0, now)
                m.rss_master = rss_mib(server.pid)
                kids = children(server.pid)
                m.rss_workers = {pid: v for pid in kids if (v := rss_mib(pid)) is not None}
                m.private_workers = {pid: v for pid in kids if (v := private_mib(pid)) is not None}
                m.load = load1()
                minutes.append(m)

            async def sampler() -> None:
                while True:
                    await asyncio.sleep(start + (len(minutes) + 1) * args.sample - loop.time())
                    sample(loop.time())
                    m = minutes[-1]
                    done = [r for r in load.results if m.t0 <= r.done < m.t1]
                    lat = [r.latency * 1000 for r in done if r.status is not None and r.kind == "check"]
                    print(f"  minute {m.index}: {len(done)} answers, p99 {pct(lat, 99):.1f} ms, "
                          f"errors {sum(1 for r in done if r.status not in (200, 201))}, "
                          f"RSS master {m.rss_master or 0:.0f} MiB workers "
                          f"{ {k: round(v) for k, v in m.rss_workers.items()} } private "
                          f"{ {k: round(v, 1) for k, v in m.private_workers.items()} } load {m.load}", flush=True)

            async def killer() -> None:
                if kill_at < 0:
                    return
                await asyncio.sleep(start + kill_at - loop.time())
                # kill mid-request: wait (up to 5 s) for a moment when requests are in flight
                for _ in range(5000):
                    if load.in_flight >= 2:
                        break
                    await asyncio.sleep(0.001)
                victims = children(server.pid)
                if victims:
                    kill["pid"] = victims[0]
                    kill["t"] = loop.time()
                    kill["at"] = kill_at
                    kill["in_flight_client_side"] = load.in_flight
                    os.kill(victims[0], signal.SIGKILL)
                    print(f"  SIGKILL worker {victims[0]} at {kill_at:g} s "
                          f"({load.in_flight} requests in flight client-side)", flush=True)
                    for _ in range(100):  # wait for its replacement
                        await asyncio.sleep(0.1)
                        now = children(server.pid)
                        new = [p for p in now if p not in victims]
                        if len(now) >= args.workers and new:
                            kill["replacement"] = new[0]
                            kill["replaced_after_s"] = round(loop.time() - kill["t"], 2)
                            break

            tasks = [asyncio.ensure_future(sampler()), asyncio.ensure_future(killer())]
            await load.run(args.rate, args.duration)
            now = loop.time()
            if not minutes or now - minutes[-1].t1 > 1.0:  # the tail after the last full minute
                sample(now)
            for t in tasks:
                t.cancel()

        asyncio.run(run())
        load_after = loadavg()
        for m in minutes:
            m.results = [r for r in load.results if m.t0 <= r.done < m.t1]
        late = [r for r in load.results if minutes and r.done >= minutes[-1].t1]
        if late and minutes:
            minutes[-1].results.extend(late)
            minutes[-1].t1 = max(r.done for r in late)

        s = summarise(minutes, kill, load.results)
        mem_ok, mem_notes = memory_verdict(minutes, kill.get("pid"))
        acked_allow = sum(1 for r in load.results if r.status == 200 and r.verdict == "allow")
        stored = None
        if args.endpoint == "check":
            stored = stored_allowed(url)
        acked_complaints = {r.ref for r in load.results if r.kind == "complaint" and r.status in (200, 201)}
        missing_complaints = acked_complaints - stored_complaints(url)
        ok200 = [r.latency * 1000 for r in load.results if r.status == 200 and r.kind == "check"]
        errors_log = [line for line in log_path.read_text(errors="replace").splitlines()
                      if '"level": "error"' in line or "Traceback" in line]
        report = render(args, minutes, kill, s, mem_ok, mem_notes, load, ok200, acked_allow, stored,
                        errors_log, load_before, load_after, path, (acked_complaints, missing_complaints))
        print(report)
        if not args.no_write:
            Path(args.out).write_text(report, encoding="utf-8")
            print(f"written to {args.out}")
        stored_ok = (stored is None or stored >= acked_allow) and not missing_complaints
        rc = 0 if (not s["other_errors"] and mem_ok and stored_ok) else 1
    finally:
        cleanup(server, args.postgres, schema, tmp, args.keep)
    return rc


COMPLAINT_ACCOUNT = "SOAKC"


def seed_complaints(url: str) -> dict:
    """An admin key, and the account the soak's complaints are filed against (its own, so the
    enforcement ladder they climb never touches the pre-send account)."""
    from app.services import accounts, keys
    from app.store.db import Database

    db = Database(url)
    with db.session() as s:
        accounts.create(s, COMPLAINT_ACCOUNT, "Soak complaints", actor="soak")
        k = keys.create(s, None, "admin", label="soak", actor="soak")
        out = {"admin_public_key": k.public_key, "admin_private_key": k.private_key}
    db.dispose()
    return out


def stored_complaints(url: str) -> set[str]:
    import sqlalchemy as sa

    from app.store.models import Complaint

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        refs = set(conn.execute(sa.select(Complaint.external_id)
                                .where(Complaint.account_id == COMPLAINT_ACCOUNT)).scalars())
    engine.dispose()
    return refs


def stored_allowed(url: str) -> int:
    import sqlalchemy as sa

    from app.store.models import DailyVolume

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(DailyVolume.allowed), 0))
                         .where(DailyVolume.account_id == "BENCH")).scalar()
    engine.dispose()
    return int(n)


def render(args, minutes, kill, s, mem_ok, mem_notes, load, ok200, acked_allow, stored, errors_log,
           load_before, load_after, path, complaints) -> str:
    total = len(load.results)
    other = s["other_errors"]
    kinds: dict[str, int] = {}
    for r in other:
        k = r.error or f"HTTP {r.status}"
        kinds[k] = kinds.get(k, 0) + 1
    lines = [
        "# Soak test: the pre-send check under steady load",
        "",
        f"`bench/soak.py` run on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        f"`POST {path}` at a fixed {args.rate:g} requests/s for {args.duration:g} s, open loop "
        f"(latency counted from each request's due time), gunicorn with {args.workers} "
        f"{os.environ.get('SMSGUARD_WORKER_CLASS', 'gthread')} workers"
        f"{' of ' + os.environ.get('SMSGUARD_THREADS', '2') + ' threads' if os.environ.get('SMSGUARD_WORKER_CLASS', 'gthread') == 'gthread' else ''} "
        f"(`smsguard serve`), {'PostgreSQL' if args.postgres else 'SQLite in WAL mode'}, a fresh "
        f"instance, log level {args.log_level}, rate limiter on (default limits). "
        f"Machine: {os.cpu_count()} cores shared with other work, Python {platform.python_version()}; "
        f"load average before {load_before}, after {load_after}.",
        "",
        "Every minute: requests finished in it, the latency percentiles of the pre-send checks among them, statuses other than 200/201, "
        "connection-level errors (no status line), the resident memory of the master and of each "
        "worker (a worker's RSS counts the pages it shares copy-on-write with the master: the engine, "
        "the model, the automaton are built once before the fork), each worker's private memory "
        "(Private_Clean + Private_Dirty from /proc/PID/smaps_rollup: what a leak would grow), and the "
        "machine's 1-minute load average (other work on the same cores shows up in the latency).",
        "",
        table(minutes, args.rate, kill),
        "## Summary",
        "",
        f"- requests: {total:,}; pre-send checks answered 200: {len(ok200):,}; their p50 {pct(ok200, 50):.1f} ms, "
        f"p99 {pct(ok200, 99):.1f} ms, p99.9 {pct(ok200, 99.9):.1f} ms, max {max(ok200) if ok200 else 0:.1f} ms "
        f"over the whole run; most requests in flight at once: {load.max_in_flight}.",
    ]
    if kill.get("t") is not None:
        lines.append(
            f"- worker {kill['pid']} SIGKILLed at {kill['at']:g} s "
            f"({kill.get('in_flight_client_side', 0)} requests in flight client-side); replacement "
            f"{kill.get('replacement', '?')} up after {kill.get('replaced_after_s', '?')} s; "
            f"requests lost with it (in flight on the killed worker, up to its thread count): {len(s['killed_in_flight'])}"
            + (" (" + ", ".join(f"{r.error}, sent {1000 * (r.sent - kill['t']):+.0f} ms from the kill"
                                for r in s["killed_in_flight"][:5]) + ")" if s["killed_in_flight"] else "")
            + ".")
    lines.append(f"- errors other than the killed worker's in-flight requests: **{len(other)}**"
                 + (f" ({', '.join(f'{k}: {v}' for k, v in kinds.items())})" if other else "") + ".")
    lines.append(f"- statuses other than 200/201: {s['non200'] or 'none'}.")
    if stored is not None:
        lines.append(f"- nothing acknowledged was lost: {acked_allow:,} allowed checks acknowledged to the client, "
                     f"{stored:,} counted in the database (daily_volumes)"
                     f"{'; the difference is checks the killed worker committed but could not answer' if stored > acked_allow else ''}"
                     f" -> {'OK' if stored >= acked_allow else 'LOST ' + str(acked_allow - stored)}.")
    if args.complaints_every:
        acked_c, missing_c = complaints
        lines.append(f"- complaints (every {args.complaints_every}th request, `POST /v1/complaints` with an admin key, "
                     f"another account): {len(acked_c):,} acknowledged (201/200), "
                     f"{len(acked_c) - len(missing_c):,} of them in the database -> "
                     f"{'OK' if not missing_c else 'LOST ' + str(len(missing_c))}.")
    lines.append(f"- memory: {'flat' if mem_ok else 'GREW'} ({mem_notes}).")
    lines.append(f"- server log lines at level error (or tracebacks): {len(errors_log)}.")
    for line in errors_log[:5]:
        lines.append(f"  - `{line[:200]}`")
    lines += [
        "",
        "Why a Python open-loop generator and not wrk: wrk is closed-loop (each connection waits for its "
        "answer before sending the next request), so a stall slows the load down and hides itself in "
        "the latency figures; wrk2 fixes that but is not packaged in Debian. A fixed-rate generator "
        "that signs each request when it is due also lets the run outlast the 300 s signature window "
        "(pre-signed requests for wrk's Lua replay expire). The generator costs the shared cores some "
        "CPU; the rate is far below capacity (bench/bench_presend.py) so it is not the bottleneck.",
        "",
        "Re-run: `.venv/bin/python bench/soak.py` (`--duration`, `--rate`, `--kill-at`, `--postgres URL`).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
