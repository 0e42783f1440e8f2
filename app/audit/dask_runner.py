"""The audit on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Units of work, in input order:

- a plain (uncompressed) JSON-lines file larger than the block size is split into byte ranges
  ``[start, end)`` that the workers read themselves; a range owns the lines whose first byte lies
  in it. Line numbers (for malformed-line listings and fallback ids) come from a first, cheap pass
  of tasks that count the newlines in each range; the prefix sums give each range its first line
  number;
- a compressed or CSV file cannot be entered in the middle (gzip) or cut at a byte offset (CSV
  quotes can span lines), so the client reads it sequentially and ships it in chunks of
  ``stream_items`` lines or rows, each chunk one task: a single big ``.jsonl.gz`` still spreads
  over the whole cluster, the client only decompresses and splits lines. Chunks are read as the
  window of tasks in flight drains, so the client never holds more than that window.

Every worker loads the Moderator once (a per-process cache in app.audit.work, guarded by a
lock) from the same rules/model paths, so those paths must exist on the workers. Each unit
runs through ``process_items``, the function the local runner uses, and returns its findings
to the client, which writes them in input order through the same checkpointed sink: the same
findings as the local path, and the same restart semantics (units are cut from the bytes of the
input only, so a resumed run cuts the same ones). At most ``2 x worker threads + 2`` units are in
flight.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import fsspec

from app.audit.readers import (InputFile, RawChunk, iter_byte_range_lines, iter_raw_chunks, parse_chunk,
                               parse_jsonl_lines)
from app.audit.work import JobSpec, UnitResult, drain_in_order, process_items

__all__ = ["DaskUnit", "iter_units", "run_dask"]


@dataclass(frozen=True)
class DaskUnit:
    index: int
    file_index: int
    inp: InputFile
    start: int = 0
    end: int = -1  # a byte range [start, end) the worker reads; -1 with ``chunk``
    newlines_before: int = 0  # newlines in [0, start) of the file
    position: int = 0  # bytes of all inputs up to this unit's end (progress)
    chunk: RawChunk | None = None  # lines or rows the client read (compressed or CSV input)


def plan_ranges(inputs: list[InputFile], block: int) -> list[tuple[int, InputFile, int, int]]:
    """(file index, input, start, end) with end -1 for files read sequentially by the client."""
    out = []
    for fi, inp in enumerate(inputs):
        if inp.splittable and inp.size and inp.size > block:
            for s in range(0, inp.size, block):
                out.append((fi, inp, s, min(s + block, inp.size)))
        else:
            out.append((fi, inp, 0, -1))
    return out


def count_newlines(url: str, start: int, end: int) -> int:
    """Newlines in bytes [start, end) of a plain file (runs on a worker)."""
    n = 0
    with fsspec.open(url, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            buf = fh.read(min(left, 8 << 20))
            if not buf:
                break
            n += buf.count(b"\n")
            left -= len(buf)
    return n


def iter_units(client, inputs: list[InputFile], block: int, stream_items: int) -> Iterator[DaskUnit]:
    """The units in input order (see the module doc). Byte ranges get the count of newlines
    before them from a first pass of counting tasks (range k counts [start of range k-1, start of
    range k)); sequential files are read lazily, a chunk per unit, as the caller asks for units."""
    ranges = plan_ranges(inputs, block)
    futures = {k: client.submit(count_newlines, inp.url, ranges[k - 1][2], s, pure=False)
               for k, (fi, inp, s, e) in enumerate(ranges) if e != -1 and s > 0}
    counts = {k: f.result() for k, f in futures.items()}
    index = 0
    before = 0  # newlines in [0, start) of the current range
    position = 0  # bytes of the inputs before the current file or range
    for k, (fi, inp, s, e) in enumerate(ranges):
        if e == -1:
            read = [0]
            for chunk in iter_raw_chunks(inp, fi, stream_items, progress=read):
                yield DaskUnit(index, fi, inp, position=position + read[0], chunk=chunk)
                index += 1
            position += inp.size or read[0]
            continue
        before = 0 if s == 0 else before + counts[k]
        position += e - s
        yield DaskUnit(index, fi, inp, s, e, before, position)
        index += 1


def _unit_items(unit: DaskUnit, job: JobSpec):
    if unit.chunk is not None:
        return parse_chunk(unit.chunk, job.fields)
    if unit.start == 0:
        first = 1
    else:
        # P = newlines in [0, start). If byte start-1 is a newline the
        # first owned line starts at `start` and is line P + 1; otherwise the line running into
        # this range belongs to the previous one and the first owned line is P + 2.
        with fsspec.open(unit.inp.url, "rb") as fh:
            fh.seek(unit.start - 1)
            at_line_start = fh.read(1) == b"\n"
        first = unit.newlines_before + (1 if at_line_start else 2)
    lines = [(n, raw) for n, raw in iter_byte_range_lines(unit.inp.url, unit.start, unit.end, first) if raw.strip()]
    return parse_jsonl_lines(lines, unit.inp.name, job.fields)


def run_unit(unit: DaskUnit, job: JobSpec) -> UnitResult:
    """One unit on a worker: read its lines, moderate them, return findings and statistics."""
    items = _unit_items(unit, job)
    findings, changes, stats, versions = process_items(job, items, unit.inp.name)
    return UnitResult(unit.index, findings, changes, stats, versions, unit.position, unit.file_index)


def run_dask(cfg, job: JobSpec, inputs: list[InputFile], sink, progress, versions: tuple) -> None:
    from distributed import Client, KilledWorker

    from app.audit.runner import AuditError

    try:
        client = Client(cfg.scheduler, timeout="20s", set_as_default=False)
    except Exception as exc:
        raise AuditError(f"cannot connect to the Dask scheduler {cfg.scheduler}: {exc}") from None
    try:
        skip = sink.units_done
        units = iter_units(client, inputs, cfg.dask_block_bytes, cfg.dask_stream_items)
        todo = (u for u in units if u.index >= skip)  # done ones are read past, not sent
        nthreads = sum(client.nthreads().values()) or 1
        window = 2 * nthreads + 2

        def written(r: UnitResult) -> None:
            if tuple(r.versions) != tuple(versions):
                raise AuditError(f"a Dask worker runs different rules/model {list(r.versions)} than expected "
                                 f"{list(versions)}: give the workers the same rules and model directories")
            sink.write(r)
            progress.update(r.stats["messages"] + len(r.stats["malformed"]), r.position)
            if cfg.on_unit is not None:
                cfg.on_unit(sink.units_done)

        def submit(u: DaskUnit):
            # a streamed chunk goes straight to a worker (scatter), not through the scheduler's
            # task graph, which warns on and slows down with large arguments
            arg = client.scatter(u, hash=False) if u.chunk is not None else u
            return client.submit(run_unit, arg, job, pure=False, key=f"smsguard-audit-{u.index}-{id(sink)}")

        try:
            drain_in_order((submit(u) for u in todo), window, written)
        except KilledWorker as exc:  # the workers running one task died again and again
            raise AuditError(f"Dask workers died running {exc.task} (last on {getattr(exc.last_worker, 'address', '?')})"
                             "; see their logs, then run the same command again to resume") from None
    finally:
        client.close()
