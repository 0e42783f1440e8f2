"""The work both runners share: load the engine(s) once per process, and turn one unit of
input (a chunk of records) into findings lines, what-if change lines and chunk statistics.

The local runner and the Dask runner call the same ``process_items``, which is why they
produce the same findings for the same input.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from app.audit.compare import diff_verdicts
from app.audit.readers import FieldMap, Malformed, Record
from app.audit.summary import chunk_stats

__all__ = ["EngineSpec", "JobSpec", "UnitResult", "engines", "install_engines", "process_items",
           "finding_line", "expected_versions"]


@dataclass(frozen=True)
class EngineSpec:
    """Where an engine's rules and model live (absolute paths; model None = keywords and
    patterns only)."""

    rules_dir: str
    model_dir: str | None

    def load(self):
        from app.engine.moderator import Moderator

        return Moderator.from_paths(self.rules_dir, model_dir=self.model_dir, watch=False)


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to process a unit; small and picklable (sent to Dask workers)."""

    engine: EngineSpec
    compare: EngineSpec | None = None
    fields: FieldMap = field(default_factory=FieldMap)
    batch_size: int = 1000
    with_text: bool = False  # findings carry the message text (--with-text)


@dataclass
class UnitResult:
    index: int
    findings: bytes
    changes: bytes
    stats: dict
    versions: tuple
    position: int = 0  # raw bytes of input read up to the end of this unit (progress)
    file_index: int = 0


_CACHE: dict[tuple, tuple] = {}
_LOCK = threading.Lock()


def install_engines(job: JobSpec, moderator, compare=None) -> None:
    """Put already loaded engines in this process's cache (the local runner does this before
    forking its workers, so they inherit the loaded rules and model)."""
    _CACHE[(job.engine, job.compare)] = (moderator, compare)


def engines(job: JobSpec) -> tuple:
    """(moderator, compare moderator or None) for this process, loaded on first use."""
    key = (job.engine, job.compare)
    got = _CACHE.get(key)
    if got is not None:
        return got
    with _LOCK:
        got = _CACHE.get(key)
        if got is None:
            m = job.engine.load()
            c = None
            if job.compare is not None:
                c = m if job.compare == job.engine else job.compare.load()
            got = _CACHE[key] = (m, c)
    return got


def finding_line(rec: Record, v, with_text: bool = False) -> bytes:
    """One output line: {"id", "account", "verdict", "categories", "score", "reasons"}, with
    "text" after "account" when asked for (message text is personal data: off by default)."""
    d = {"id": rec.id, "account": rec.account}
    if with_text:
        d["text"] = rec.text
    d.update(verdict=v.verdict, categories=list(v.categories), score=round(float(v.score), 4),
             reasons=[h.to_dict() for h in v.reasons])
    return dumps_line(d)


def dumps_line(d: dict) -> bytes:
    """Compact UTF-8 JSON line; text with lone surrogates (valid JSON escapes, not UTF-8) is
    written with ASCII escapes instead of failing."""
    s = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
    try:
        return s.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(d, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def _one_by_one(mod, batch: list[Record], malformed: list, file_name: str):
    """A batch the engine failed on: check its messages one at a time; a message the engine
    cannot check becomes a malformed line ("engine error") instead of stopping the run."""
    ok: list[Record] = []
    verdicts = []
    for rec in batch:
        try:
            verdicts.append(mod.check(rec.text))
            ok.append(rec)
        except Exception as exc:
            malformed.append(Malformed(file_name, rec.line, f"engine error: {type(exc).__name__}"))
    return ok, verdicts


def process_items(job: JobSpec, items: Sequence[Record | Malformed], file_name: str = "") -> tuple[bytes, bytes, dict, tuple]:
    """(findings bytes, change lines bytes, chunk stats, engine versions) for one unit (all its
    items come from the file ``file_name``)."""
    mod, cmp = engines(job)
    records = [it for it in items if isinstance(it, Record)]
    malformed = [it for it in items if isinstance(it, Malformed)]
    out: list[bytes] = []
    changes: list[bytes] = []
    transitions: list[str] = []
    pairs: list[tuple[Record, Any]] = []
    bs = max(1, job.batch_size)
    for i in range(0, len(records), bs):
        batch = records[i:i + bs]
        texts = [r.text for r in batch]
        try:
            verdicts = mod.check_batch(texts)
        except Exception:
            batch, verdicts = _one_by_one(mod, batch, malformed, file_name)
            texts = [r.text for r in batch]
        for rec, v in zip(batch, verdicts):
            out.append(finding_line(rec, v, job.with_text))
            pairs.append((rec, v))
        if cmp is not None:
            alt = cmp.check_batch(texts)
            lines, trans = diff_verdicts(batch, verdicts, alt)
            changes.extend(lines)
            transitions.extend(trans)
    stats = chunk_stats(pairs, malformed, transitions if cmp is not None else None)
    versions = (mod.ruleset_version, mod.model_version,
                cmp.ruleset_version if cmp is not None else None, cmp.model_version if cmp is not None else None)
    return b"".join(out), b"".join(changes), stats, versions


def expected_versions(job: JobSpec) -> tuple:
    """The versions the workers must report, computed without loading a model: the rule
    content hash and the model's metadata version (used by the Dask client)."""
    from app.engine.ruleset import load_ruleset

    def one(spec: EngineSpec | None):
        if spec is None:
            return None, None
        rv = load_ruleset(spec.rules_dir).version
        mv = None
        if spec.model_dir is not None:
            meta_path = Path(spec.model_dir) / "metadata.json"
            try:
                mv = str(json.loads(meta_path.read_text(encoding="utf-8")).get("version") or "unknown")
            except (OSError, ValueError):
                mv = "unknown"
        return rv, mv

    r, m = one(job.engine)
    cr, cm = one(job.compare)
    return (r, m, cr, cm)


def resolve_model(value: str | os.PathLike | None) -> str | None:
    """'none' (any case) or None means no model; otherwise an absolute path."""
    if value is None:
        return None
    s = str(value)
    if s.strip().lower() in ("none", ""):
        return None
    return str(Path(s).resolve())


def drain_in_order(futures, window: int, written, result=lambda fut: fut.result()) -> None:
    """Consume ``futures`` (an iterator that submits lazily), keeping at most ``window`` in flight
    and handing their results (got with ``result``) to ``written`` in submission order, so output
    stays in input order and memory stays bounded. On any failure the futures still pending are
    cancelled."""
    from collections import deque

    pending: deque = deque()
    try:
        for fut in futures:
            pending.append(fut)
            while len(pending) >= window or (pending and pending[0].done()):
                written(result(pending.popleft()))
        while pending:
            written(result(pending.popleft()))
    except BaseException:
        for f in pending:
            f.cancel()
        raise
