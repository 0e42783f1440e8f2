"""The audit job: inputs -> units of work -> findings, in input order, restartable.

``run_audit(AuditConfig(...))`` is what `smsguard audit` calls. Without ``scheduler`` the work
runs in N local worker processes (this module); with it, on a Dask cluster (dask_runner.py).
Both hand their unit results, in input order, to the same ``OutputSink``:

- findings are appended to ``.<out>.audit-work/findings.part`` next to the output and renamed
  to the output at the very end: the output appears whole or not at all;
- after each unit (at most once a second) the sink flushes the part files and writes
  ``checkpoint.json`` (units done, part sizes, merged statistics). A rerun of the same command
  on the same inputs cuts the part files back to the checkpoint and carries on with the next
  unit, so no unit is redone into the output or written twice.

Local workers: the parent loads the rules and model once, then forks the workers, which inherit
them (an initializer loads them where fork is unavailable). The parent only reads and cuts the
input; parsing, moderation and serialisation happen in the workers. At most ``2 * workers + 2``
units are in flight, so memory stays flat whatever the input size.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from app.audit.compare import changes_path
from app.audit.readers import (FieldMap, InputError, InputFile, RawChunk, field_names, iter_raw_chunks, parse_chunk,
                               resolve_inputs)
from app.audit.summary import Summary
from app.audit.work import (EngineSpec, JobSpec, UnitResult, drain_in_order, engines, install_engines,
                            process_items, resolve_model)

__all__ = ["AuditConfig", "AuditError", "Interrupted", "run_audit", "OutputSink", "summary_path", "work_dir",
           "lock_path", "output_file"]

CHECKPOINT_VERSION = 1
DEFAULT_OUT = "findings.jsonl"  # the findings file written into a directory given as --out


class AuditError(Exception):
    """A one-line, user-facing reason why the audit cannot run (missing input, unwritable output)."""


class Interrupted(Exception):
    """Raised by the SIGTERM handler; the run checkpoints and stops."""


@dataclass
class AuditConfig:
    inputs: list[str]
    out: Path | str  # a local path or an fsspec URL (staged locally, uploaded at the end)
    report: Path | str | None = None
    fmt: str = "auto"
    fields: FieldMap = field(default_factory=FieldMap)
    workers: int | None = None  # None: os.cpu_count(); 0: in the calling process
    batch_size: int = 1000
    rules_dir: str | None = None  # None: Settings.from_env().rules_dir
    model_dir: str | None = "default"  # "default": Settings; None / "none": no model
    compare_rules: str | None = None
    compare_model: str | None = None  # a path or "none"
    scheduler: str | None = None
    dask_block_bytes: int = 32 << 20
    dask_stream_items: int = 20_000  # lines/rows per Dask task for compressed and CSV inputs
    progress: bool | None = None  # None: a bar when stderr is a terminal
    resume: bool = True
    with_text: bool = False  # findings carry the message text (personal data: off by default)
    on_unit: Callable[[int], None] | None = None  # called with the units-done count (tests, hooks)
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr))


def summary_path(out: Path) -> Path:
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.summary.json")


def work_dir(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f".{out.name}.audit-work")


def lock_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f".{out.name}.lock")


def output_file(out: Path | str) -> Path | str:
    """The findings file for ``--out``: a directory (an existing one, or a path or URL ending in
    "/") means ``findings.jsonl`` in it. URLs stay strings, local paths become Paths."""
    from app.audit.remote import is_url

    s = str(out)
    if is_url(s):
        return s + DEFAULT_OUT if s.endswith("/") else s
    return Path(s) / DEFAULT_OUT if s.endswith("/") or Path(s).is_dir() else Path(s)


class OutputLock:
    """An exclusive flock on ``.<out name>.lock`` next to the output, held for the whole run, so
    that two runs never write the same output and work directory. The kernel releases it when the
    process ends, however it ends; the file (holding the owner's pid) is removed by the run that
    held it, and one left behind by a killed run is simply locked again."""

    def __init__(self, out: Path):
        self.out = out
        self.path = lock_path(out)
        self._fd = -1

    def __enter__(self) -> "OutputLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise AuditError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                raise AuditError(f"another audit is writing {self.out}: its lock {self.path} is held"
                                 + (f" by process {owner}" if owner else "")) from None
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # its owner removed the file as we opened it: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.path.unlink()  # still ours: nobody else can lock it until we close it
        except FileNotFoundError:
            pass
        os.close(self._fd)


# ---------------------------------------------------------------------------------- the sink


class OutputSink:
    """Ordered, checkpointed writer of unit results; renames to the real outputs at the end."""

    def __init__(self, out: Path, fingerprint: dict, with_changes: bool, checkpoint_every: float = 1.0):
        self.out = Path(out)
        self.dir = work_dir(self.out)
        self.fingerprint = fingerprint
        self.with_changes = with_changes
        self.every = checkpoint_every
        self.units_done = 0
        self.summary = Summary()
        self._fh = None
        self._ch = None
        self._last = 0.0

    @property
    def _ckpt(self) -> Path:
        return self.dir / "checkpoint.json"

    def open(self, resume: bool) -> int:
        """Resume from a checkpoint of the same job when there is one; returns the units done."""
        ck = None
        if resume and self._ckpt.exists():
            try:
                ck = json.loads(self._ckpt.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                ck = None
            if ck is not None and (ck.get("version") != CHECKPOINT_VERSION or ck.get("fingerprint") != self.fingerprint):
                ck = None
        if ck is None:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            self._fh = open(self.dir / "findings.part", "wb")
            self._ch = open(self.dir / "changes.part", "wb") if self.with_changes else None
            self._save()
            return 0
        self._fh = open(self.dir / "findings.part", "r+b" if (self.dir / "findings.part").exists() else "wb")
        self._fh.truncate(ck["findings_bytes"])
        self._fh.seek(ck["findings_bytes"])
        if self.with_changes:
            p = self.dir / "changes.part"
            self._ch = open(p, "r+b" if p.exists() else "wb")
            self._ch.truncate(ck["changes_bytes"])
            self._ch.seek(ck["changes_bytes"])
        self.units_done = ck["units_done"]
        self.summary = Summary(ck["summary"])
        return self.units_done

    def write(self, r: UnitResult) -> None:
        self._fh.write(r.findings)
        if self._ch is not None and r.changes:
            self._ch.write(r.changes)
        self.summary.merge(r.stats)
        self.units_done += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            self.checkpoint()

    def checkpoint(self) -> None:
        if self._fh is None:
            return
        t0 = time.monotonic()
        self._save()
        # a big summary (many accounts) must not make checkpoints dominate the run
        self._last = time.monotonic()
        self.every = max(self.every, 20 * (self._last - t0))

    def _save(self) -> None:
        for fh in (self._fh, self._ch):
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
        state = {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "units_done": self.units_done,
            "findings_bytes": self._fh.tell(),
            "changes_bytes": self._ch.tell() if self._ch is not None else 0,
            "summary": self.summary.state(),
        }
        tmp = self.dir / "checkpoint.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._ckpt)

    def close(self) -> None:
        for fh in (self._fh, self._ch):
            if fh is not None and not fh.closed:
                fh.close()

    def finish(self, report: Path | None, report_fn=None) -> None:
        """Write the summary (and report), then rename the findings into place, last."""
        self._save()
        self.close()
        summ = self.summary
        outs: list[tuple[Path, Path]] = []
        sp_tmp = self.dir / "summary.json"
        sp_tmp.write_text(json.dumps(summ.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        outs.append((sp_tmp, summary_path(self.out)))
        if self.with_changes:
            outs.append((self.dir / "changes.part", changes_path(self.out)))
        if report is not None and report_fn is not None:
            rp_tmp = Path(report).with_name(f".{Path(report).name}.tmp")
            report_fn(summ, rp_tmp)
            outs.append((rp_tmp, Path(report)))
        for src, dst in outs:
            os.replace(src, dst)
        os.replace(self.dir / "findings.part", self.out)
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------- progress


class Progress:
    """messages/s and ETA: a tqdm bar on a terminal, a plain line every 30 s otherwise."""

    def __init__(self, total_bytes: int | None, enabled: bool | None, log):
        self.total_bytes = total_bytes or 0
        self.log = log
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        self.messages = 0
        self.t0 = time.monotonic()
        self._last_plain = self.t0
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit="msg", unit_scale=True, dynamic_ncols=True, mininterval=0.5,
                            desc="audit", file=sys.stderr, smoothing=0.1)

    def update(self, messages: int, position: int) -> None:
        self.messages += messages
        est = None
        if self.total_bytes and position > 0:
            est = int(self.messages * self.total_bytes / max(position, 1))
        if self.bar is not None:
            if est is not None:
                self.bar.total = max(est, self.messages)
            self.bar.update(messages)
            return
        now = time.monotonic()
        if now - self._last_plain >= 30:
            self._last_plain = now
            rate = self.messages / max(now - self.t0, 1e-9)
            eta = ""
            if est:
                eta = f", ETA {max(est - self.messages, 0) / max(rate, 1e-9):.0f}s"
            self.log(f"audit: {self.messages:,} messages, {rate:,.0f} msg/s{eta}")

    def close(self) -> None:
        if self.bar is not None:
            if self.bar.total is not None:
                self.bar.total = self.bar.n
                self.bar.refresh()
            self.bar.close()


# ------------------------------------------------------------------------------ local runner

_LOCAL_JOB: JobSpec | None = None


def _init_local_worker(job: JobSpec) -> None:
    global _LOCAL_JOB
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it checkpoints and stops us
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's checkpointing handler
    _watch_parent()
    _LOCAL_JOB = job
    engines(job)  # inherited through fork (already cached); loaded here otherwise


def _watch_parent() -> None:
    """End this worker when its parent dies without stopping it (SIGKILL, OOM killer):
    otherwise an orphan would hold its memory forever."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="smsguard-audit-parent-watch", daemon=True).start()


def _local_unit(index: int, chunk: RawChunk, position: int) -> UnitResult:
    job = _LOCAL_JOB
    items = parse_chunk(chunk, job.fields)
    findings, changes, stats, versions = process_items(job, items, chunk.file_name)
    return UnitResult(index, findings, changes, stats, versions, position, chunk.file_index)


def _local_units(inputs: list[InputFile], chunk_size: int, skip: int) -> Iterator[tuple[int, RawChunk, int]]:
    """(unit index, raw chunk, raw bytes read so far over all inputs); the first ``skip``
    units are read past (they are in the output already)."""
    index = 0
    done_bytes = 0
    for fi, inp in enumerate(inputs):
        pos = [0]
        for chunk in iter_raw_chunks(inp, fi, chunk_size, progress=pos):
            if index >= skip:
                yield index, chunk, done_bytes + pos[0]
            index += 1
        done_bytes += inp.size or pos[0]


def _run_local(cfg: AuditConfig, job: JobSpec, inputs: list[InputFile], sink: OutputSink, progress: Progress,
               mod, cmp) -> None:
    workers = (os.cpu_count() or 1) if cfg.workers is None else cfg.workers
    skip = sink.units_done
    units = _local_units(inputs, job.batch_size, skip)

    def written(r: UnitResult) -> None:
        sink.write(r)
        progress.update(r.stats["messages"] + len(r.stats["malformed"]), r.position)
        if cfg.on_unit is not None:
            cfg.on_unit(sink.units_done)

    if workers <= 0:  # in this process: debugging, tiny inputs
        global _LOCAL_JOB
        _LOCAL_JOB = job
        for index, chunk, pos in units:
            written(_local_unit(index, chunk, pos))
        return

    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_local_worker, initargs=(job,))
    try:
        drain_in_order((pool.submit(_local_unit, i, chunk, pos) for i, chunk, pos in units),
                       2 * workers + 2, written, _watched_result(pool))
    except BaseException as exc:
        procs = _stop_pool(pool)
        if isinstance(exc, BrokenProcessPool):  # a worker died (killed, out of memory): one line, no traceback
            raise AuditError(f"{_dead_worker(procs)}; run the same command again to resume") from None
        raise
    pool.shutdown(wait=True)


def _watched_result(pool: ProcessPoolExecutor):
    """``Future.result`` for the local pool, watching the workers meanwhile. A worker killed while
    it sends a result back (SIGKILL, the out-of-memory killer) leaves half a message in the result
    pipe, and the pool's thread waiting for the rest forever (a CPython limitation). A worker seen
    gone without the pool saying so: end the others and close this process's end of the pipe, so
    the pool's thread reads end-of-file, fails the units with BrokenProcessPool and ends."""
    writer = pool._result_queue._writer  # private, as are _processes and _executor_manager_thread below

    def result(fut):
        while True:
            try:
                return fut.result(timeout=2.0)
            except FutureTimeout:
                procs = list(pool._processes.values())
                if any(p.exitcode is not None for p in procs):
                    break
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=5)
        writer.close()
        try:
            return fut.result(timeout=10.0)
        except FutureTimeout:
            raise BrokenProcessPool("a worker process died and the pool did not stop") from None

    return result


def _dead_worker(procs: list) -> str:
    """Which worker broke the pool, and how (the pool then SIGTERMs the others). An exit code can
    lag a moment behind the end of its process: the pool's own thread may be the one reaping it."""
    deadline = time.monotonic() + 2
    while any(p.exitcode is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    ended = [(p.exitcode == -signal.SIGTERM, p.pid, p.exitcode) for p in procs if p.exitcode]
    if not ended:
        return "a worker process ended unexpectedly"
    _, pid, code = min(ended)
    if code > 0:
        return f"worker process {pid} exited with code {code}"
    name = signal.Signals(-code).name
    return f"worker process {pid} was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")


STOP_GRACE = 10.0  # seconds the workers of an interrupted run get to finish the unit in hand


def _stop_pool(pool: ProcessPoolExecutor) -> list:
    """Stop the workers of an interrupted run: cancel the queued units, let each worker finish the
    one in hand (up to STOP_GRACE seconds), then end those still going. A worker ended by a signal
    while it sends a result back leaves half a message in the pool's result pipe, and the pool's
    thread waiting for the rest forever: the interpreter's exit, which joins that thread, with it.
    Returns the worker processes, ended."""
    procs = list(pool._processes.values())
    thread = pool._executor_manager_thread
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_GRACE
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.exitcode is None:
            p.terminate()
            p.join(timeout=5)
    if thread is not None:
        thread.join(timeout=5)  # done before the interpreter's exit wakes it (a race in CPython 3.11)
    return procs


# --------------------------------------------------------------------------------- the job


def _check_output(out: Path, report: Path | None) -> None:
    for p, what in ((out, "output"), (report, "report")):
        if p is None:
            continue
        p = Path(p)
        if p.exists() and p.is_dir():
            raise AuditError(f"cannot write {what} {p}: it is a directory")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise AuditError(f"cannot write {what} {p}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise AuditError(f"cannot write {what} {p}: directory {parent} is not writable")
        if p.exists() and not os.access(p, os.W_OK):
            raise AuditError(f"cannot write {what} {p}: permission denied")


def _engine_specs(cfg: AuditConfig) -> tuple[EngineSpec, EngineSpec | None]:
    from app.config import Settings

    settings = None
    rules = cfg.rules_dir
    model = cfg.model_dir
    if rules is None or model == "default":
        settings = Settings.from_env()
    if rules is None:
        rules = settings.rules_dir
    if model == "default":
        model = settings.model_dir
    rules_abs = str(Path(rules).resolve())
    if not Path(rules_abs).is_dir():
        raise AuditError(f"rules directory not found: {rules}")
    model_abs = resolve_model(model)
    if model_abs is not None and not Path(model_abs).is_dir():
        raise AuditError(f"model directory not found: {model}")
    engine = EngineSpec(rules_abs, model_abs)
    compare = None
    if cfg.compare_rules is not None or cfg.compare_model is not None:
        crules = str(Path(cfg.compare_rules).resolve()) if cfg.compare_rules is not None else rules_abs
        if not Path(crules).is_dir():
            raise AuditError(f"compare rules directory not found: {cfg.compare_rules}")
        cmodel = resolve_model(cfg.compare_model) if cfg.compare_model is not None else model_abs
        if cmodel is not None and not Path(cmodel).is_dir():
            raise AuditError(f"compare model directory not found: {cfg.compare_model}")
        compare = EngineSpec(crules, cmodel)
    return engine, compare


def _fingerprint(cfg: AuditConfig, inputs: list[InputFile], job: JobSpec, versions: tuple, scheme: str) -> dict:
    return {
        "inputs": [[i.url, i.format, i.compression, i.stamp] for i in inputs],
        "fields": [job.fields.text, job.fields.id, job.fields.account, job.fields.time],
        "with_text": job.with_text,
        "units": scheme,
        "engine": [job.engine.rules_dir, job.engine.model_dir],
        "compare": [job.compare.rules_dir, job.compare.model_dir] if job.compare else None,
        "versions": list(versions),
    }


def _nothing_read(summary: Summary, inputs: list[InputFile], fields: FieldMap) -> str:
    """Why a run that read no message at all fails: the text field is missing everywhere (name
    the fields the input has), or the first of the malformed lines."""
    first = summary.malformed[0]
    inp = next((i for i in inputs if i.name == first["file"]), None)
    if inp is not None and first["reason"] == f"missing field {fields.text!r}":
        kind = "column" if inp.format == "csv" else "field"
        names = field_names(inp)
        found = ", ".join(names[:20]) + (", …" if len(names) > 20 else "") if names else "none"
        return (f"nothing to audit: {inp.name} has no text {kind} {fields.text!r} ({kind}s found: {found}); "
                f"name the text {kind} with --text-field")
    return (f"nothing to audit: every line is malformed ({summary.malformed_count:,} lines; the first, "
            f"{first['file']} line {first['line']}: {first['reason']})")


def run_audit(cfg: AuditConfig) -> Summary:
    """Run the audit; returns the merged Summary. AuditError for a bad setup, a dead worker or an
    input of which nothing could be read; a KeyboardInterrupt (or SIGTERM, raised as Interrupted)
    leaves a checkpoint and no output. The output is locked for the whole run (OutputLock)."""
    if cfg.batch_size < 1:
        raise AuditError("--batch-size must be at least 1")
    if cfg.dask_stream_items < 1:
        raise AuditError("--stream-items must be at least 1")
    cfg = dataclasses.replace(cfg, out=output_file(cfg.out))
    out, report, uploads = _local_outputs(cfg)
    _check_output(out, report)
    with OutputLock(out):
        return _run_locked(cfg, out, report, uploads)


def _run_locked(cfg: AuditConfig, out: Path, report: Path | None, uploads: list) -> Summary:
    from app.audit.compare import describe

    try:
        inputs = resolve_inputs(list(cfg.inputs), cfg.fmt)
    except InputError as exc:
        raise AuditError(str(exc)) from None
    if not inputs:
        raise AuditError("no input")
    engine, compare = _engine_specs(cfg)
    job = JobSpec(engine=engine, compare=compare, fields=cfg.fields, batch_size=cfg.batch_size,
                  with_text=cfg.with_text)
    t0 = time.monotonic()

    mod = cmp = None
    if cfg.scheduler:
        from app.audit.work import expected_versions

        versions = expected_versions(job)
        scheme = f"dask:{cfg.dask_block_bytes}:{cfg.dask_stream_items}"
    else:
        try:
            mod, cmp = engines(job)
        except Exception as exc:
            raise AuditError(f"cannot load the engine: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        install_engines(job, mod, cmp)
        versions = (mod.ruleset_version, mod.model_version,
                    cmp.ruleset_version if cmp else None, cmp.model_version if cmp else None)
        scheme = f"chunks:{cfg.batch_size}"

    sink = OutputSink(out, _fingerprint(cfg, inputs, job, versions, scheme), with_changes=compare is not None)
    skip = sink.open(cfg.resume)
    resumed_messages = sink.summary.messages
    if skip:
        cfg.log(f"audit: resuming after {skip} completed unit(s), {sink.summary.messages:,} messages already done")
    total_bytes = sum(i.size or 0 for i in inputs) if all(i.size for i in inputs) else None
    progress = Progress(total_bytes, cfg.progress, cfg.log)
    progress.messages = sink.summary.messages + sink.summary.malformed_count

    old_term = None
    if hasattr(signal, "SIGTERM") and _main_thread():
        def _term(signum, frame):
            raise Interrupted("terminated")
        old_term = signal.signal(signal.SIGTERM, _term)
    try:
        if cfg.scheduler:
            from app.audit.dask_runner import run_dask

            run_dask(cfg, job, inputs, sink, progress, versions)
        else:
            _run_local(cfg, job, inputs, sink, progress, mod, cmp)
    except BaseException:
        progress.close()
        try:
            sink.checkpoint()
        finally:
            sink.close()
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    progress.close()
    if sink.summary.messages == 0 and sink.summary.malformed_count:
        sink.close()
        shutil.rmtree(sink.dir, ignore_errors=True)  # nothing worth resuming
        raise AuditError(_nothing_read(sink.summary, inputs, cfg.fields))

    seconds = time.monotonic() - t0
    sink.summary.meta.update({
        "inputs": [i.url for i in inputs],
        "inputs_count": len(inputs),
        "output": str(cfg.out),
        "ruleset_version": versions[0],
        "model_version": versions[1],
        "compare": describe(cfg.compare_rules, cfg.compare_model) if compare else None,
        "compare_versions": [versions[2], versions[3]] if compare else None,
        "runner": f"dask {cfg.scheduler}" if cfg.scheduler else f"local x{cfg.workers if cfg.workers is not None else os.cpu_count()}",
        "seconds": round(seconds, 3),
        "messages_this_run": sink.summary.messages - resumed_messages,
        "resumed_units": skip,
    })
    report_fn = None
    if report is not None:
        from app.audit.report import write_report

        report_fn = write_report
    sink.finish(report, report_fn)
    if uploads:
        from app.audit.remote import upload

        try:
            upload(uploads)
        except OSError as exc:
            raise AuditError(str(exc)) from None
    return sink.summary


def beside(out: Path | str, name_of: Callable[[Path], Path]) -> Path | str:
    """The file ``name_of`` (summary_path, changes_path) names next to the findings ``out``, a
    local path or an fsspec URL."""
    from app.audit.remote import is_url, sibling

    if is_url(out):
        return sibling(str(out), name_of(Path(str(out).rsplit("/", 1)[-1])).name)
    return name_of(Path(out))


def _local_outputs(cfg: AuditConfig) -> tuple[Path, Path | None, list[tuple[Path, str]]]:
    """(findings path, report path, uploads): outputs given as URLs are written to a staging
    folder first (app/audit/remote.py) and uploaded in this order at the end."""
    from app.audit.remote import check_writable, is_url, staging_path

    if not (is_url(cfg.out) or is_url(cfg.report)):
        return Path(cfg.out), (Path(cfg.report) if cfg.report is not None else None), []
    from app.config import Settings

    instance = Settings.from_env().instance_dir
    for url in (cfg.out, cfg.report):
        if is_url(url):
            try:
                check_writable(str(url))
            except ValueError as exc:
                raise AuditError(str(exc)) from None
    out = staging_path(str(cfg.out), instance) if is_url(cfg.out) else Path(cfg.out)
    report = (staging_path(str(cfg.report), instance) if is_url(cfg.report)
              else Path(cfg.report) if cfg.report is not None else None)
    uploads: list[tuple[Path, str]] = []
    if is_url(cfg.out):
        uploads += [(name_of(out), beside(cfg.out, name_of)) for name_of in (summary_path, changes_path)]
    if is_url(cfg.report):
        uploads.append((report, str(cfg.report)))
    if is_url(cfg.out):
        uploads.append((out, str(cfg.out)))  # last: whoever sees the findings sees the rest
    return out, report, uploads


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
