"""Streaming readers for sent logs: JSON lines or CSV, plain or compressed, local or fsspec.

The readers never hold a file in memory and never abort on a bad line: a line that cannot be
read becomes a ``Malformed`` item (file, line number, reason) in the same stream as the good
``Record`` items, so every consumer counts them the same way.

Two layers:

- *raw units* (cheap, done by whoever reads the file): ``iter_raw_chunks`` cuts a file into
  chunks of N items. A JSON-lines chunk is the raw bytes of its lines; a CSV chunk is the parsed
  rows (CSV quoting can span lines, so only a sequential reader can cut it).
- *parsing* (done by the worker that moderates the chunk): ``parse_chunk`` turns a raw chunk
  into ``Record`` / ``Malformed`` items with the field mapping applied.

A message's id is the input's id field; when the input has none the id is
``"<file name>:<line>"`` so every finding still points at its line.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterator

import fsspec

__all__ = [
    "FieldMap", "Record", "Malformed", "RawChunk", "InputFile", "InputError",
    "resolve_inputs", "detect_format", "open_binary", "iter_raw_chunks", "parse_chunk",
    "iter_items", "iter_byte_range_lines", "field_names",
]

FORMATS = ("auto", "jsonl", "csv")
_JSONL_EXT = (".jsonl", ".ndjson", ".json", ".jl")
_CSV_EXT = (".csv", ".tsv")


class InputError(Exception):
    """An input that cannot be opened at all (missing, unreadable): the run stops before it starts."""


@dataclass(frozen=True)
class FieldMap:
    text: str = "text"
    id: str = "id"
    account: str = "account"
    time: str = "sent_at"


@dataclass(frozen=True)
class InputFile:
    """One resolved input: the URL/path fsspec opens, its format, compression and identity."""

    url: str
    name: str  # short name used in fallback ids and malformed-line listings
    format: str  # "jsonl" | "csv"
    compression: str | None
    size: int | None
    stamp: str  # size + mtime/etag: changes when the file changes (checkpoint fingerprint)
    delimiter: str = ","

    @property
    def splittable(self) -> bool:
        """Plain JSON lines can be cut into byte ranges (Dask); compressed files and CSV cannot."""
        return self.format == "jsonl" and self.compression is None


@dataclass(slots=True)
class Record:
    line: int
    id: Any
    account: Any
    time: Any
    text: str


@dataclass(slots=True)
class Malformed:
    file: str
    line: int
    reason: str

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass
class RawChunk:
    """A unit of work cut by a sequential reader: ``lines`` are (line number, bytes) for JSON
    lines or (line number, row list | None, reason) for CSV."""

    file_index: int
    file_name: str
    format: str
    items: list = field(default_factory=list)
    header: list[str] | None = None


# ----------------------------------------------------------------------------------- inputs


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def detect_format(path: str, fmt: str = "auto", compression: str | None = None) -> str:
    """jsonl / csv from the name (after removing a compression suffix); auto falls back to
    sniffing the first non-blank byte when the name says nothing."""
    if fmt != "auto":
        return fmt
    name = path.lower()
    if compression:
        name = os.path.splitext(name)[0]
    if name.endswith(_JSONL_EXT):
        return "jsonl"
    if name.endswith(_CSV_EXT):
        return "csv"
    try:
        with open_binary(path, compression) as fh:
            head = fh.read(4096).lstrip(codecs.BOM_UTF8).lstrip()
    except Exception:  # pragma: no cover - reported when really opened
        return "jsonl"
    return "jsonl" if head[:1] in (b"{", b"[", b"") else "csv"


def resolve_inputs(paths: list[str], fmt: str = "auto") -> list[InputFile]:
    """Expand globs, check every input exists, and describe each one. InputError otherwise."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (auto, jsonl, csv)")
    out: list[InputFile] = []
    for p in paths:
        try:
            fs, fpath = fsspec.core.url_to_fs(p)
        except Exception as exc:
            raise InputError(f"cannot open input {p}: {exc}") from None
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if _has_glob(fpath):
            matches = sorted(fs.glob(fpath))
            if not matches:
                raise InputError(f"input not found: {p} (no file matches)")
        else:
            try:
                ok = fs.exists(fpath)
            except Exception as exc:
                raise InputError(f"cannot open input {p}: {exc}") from None
            if not ok:
                raise InputError(f"input not found: {p}")
            if fs.isdir(fpath):
                raise InputError(f"input is a directory: {p}")
            matches = [fpath]
        for m in matches:
            url = m if protocol in ("file", "local") else fs.unstrip_protocol(m)
            if protocol in ("file", "local"):
                url = os.path.abspath(m)
            info = fs.info(m)
            size = info.get("size")
            mark = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("etag") or ""
            compression = fsspec.utils.infer_compression(m)
            f = detect_format(url, fmt, compression)
            lower = (os.path.splitext(m.lower())[0] if compression else m.lower())
            out.append(InputFile(url=url, name=posixpath.basename(m), format=f, compression=compression,
                                 size=size, stamp=f"{size}:{mark}", delimiter="\t" if lower.endswith(".tsv") else ","))
    return out


class _Counting(io.RawIOBase):
    """Wraps the raw (compressed) stream to count the bytes consumed: the progress bar's base."""

    def __init__(self, fh):
        self._fh = fh
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._fh.read(len(b))
        n = len(data)
        b[:n] = data
        self.consumed += n
        return n

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


class open_binary:
    """Context manager: a buffered binary stream of the decompressed content. ``.consumed`` is
    the number of raw (compressed) bytes read so far."""

    def __init__(self, url: str, compression: str | None = None):
        self.url = url
        self.compression = compression
        self._counter: _Counting | None = None

    @property
    def consumed(self) -> int:
        return self._counter.consumed if self._counter is not None else 0

    def __enter__(self):
        of = fsspec.open(self.url, "rb")
        self._of = of
        raw = of.__enter__()
        self._counter = _Counting(raw)
        stream: Any = io.BufferedReader(self._counter, buffer_size=1 << 20)
        if self.compression:
            stream = fsspec.compression.compr[self.compression](stream, mode="rb")
            stream = io.BufferedReader(stream, buffer_size=1 << 20) if not hasattr(stream, "readline") else stream
        self._stream = stream
        return stream

    def __exit__(self, *exc):
        try:
            self._stream.close()
        finally:
            self._of.__exit__(*exc)


# ---------------------------------------------------------------------------- raw chunking


def _csv_rows(fh, delimiter: str, bad_lines: set[int]) -> Iterator[tuple[int, list[str] | None, str]]:
    """(start line, row) from a binary stream; lines that are not UTF-8 are decoded with
    replacement and their rows reported malformed; csv errors become malformed rows."""

    def lines() -> Iterator[str]:
        n = 0
        for raw in fh:
            n += 1
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.add(n)
                yield raw.decode("utf-8", "replace")

    reader = csv.reader(lines(), delimiter=delimiter)
    prev = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start, prev = prev + 1, reader.line_num
            yield start, None, f"CSV error: {exc}"
            continue
        start, prev = prev + 1, reader.line_num
        if any(start <= ln <= prev for ln in bad_lines):
            yield start, None, "not valid UTF-8"
            continue
        yield start, row, ""


def iter_raw_chunks(inp: InputFile, file_index: int, chunk_size: int,
                    progress: list | None = None) -> Iterator[RawChunk]:
    """Cut one file into chunks of ``chunk_size`` items (lines or rows, malformed ones
    included, so chunk boundaries depend only on the bytes of the input). ``progress`` (a
    one-element list) receives the raw bytes consumed so far."""
    ob = open_binary(inp.url, inp.compression)
    with ob as fh:
        if inp.format == "jsonl":
            chunk = RawChunk(file_index, inp.name, "jsonl")
            n = 0
            for raw in fh:
                n += 1
                if not raw.strip():
                    continue
                chunk.items.append((n, raw))
                if len(chunk.items) >= chunk_size:
                    if progress is not None:
                        progress[0] = ob.consumed
                    yield chunk
                    chunk = RawChunk(file_index, inp.name, "jsonl")
            if chunk.items:
                if progress is not None:
                    progress[0] = ob.consumed
                yield chunk
        else:
            bad: set[int] = set()
            rows = _csv_rows(fh, inp.delimiter, bad)
            header = None
            for start, row, reason in rows:
                if row is None:
                    continue  # a broken header line: try the next one
                if any(c.strip() for c in row):
                    header = [c.strip() for c in row]
                    break
            if header is None:
                return
            chunk = RawChunk(file_index, inp.name, "csv", header=header)
            for start, row, reason in rows:
                if row is not None and not any(c.strip() for c in row):
                    continue
                chunk.items.append((start, row, reason))
                if len(chunk.items) >= chunk_size:
                    if progress is not None:
                        progress[0] = ob.consumed
                    yield chunk
                    chunk = RawChunk(file_index, inp.name, "csv", header=header)
                if len(bad) > 64:  # keep the set small: only lines still ahead matter
                    bad.difference_update([b for b in bad if b < start])
            if chunk.items:
                if progress is not None:
                    progress[0] = ob.consumed
                yield chunk


def iter_byte_range_lines(url: str, start: int, end: int, first_line: int) -> Iterator[tuple[int, bytes]]:
    """The lines of a plain file whose first byte lies in [start, end), numbered from
    ``first_line`` (see dask_runner for how the number is found). The last line is read past
    ``end`` to its newline."""
    with fsspec.open(url, "rb") as fh:
        pos = start
        if start > 0:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                skipped = fh.readline()  # the rest of a line owned by the previous range
                pos = start + len(skipped)
        n = first_line
        while pos < end:
            raw = fh.readline()
            if not raw:
                break
            yield n, raw
            pos += len(raw)
            n += 1


# ---------------------------------------------------------------------------------- parsing


def _get(obj: dict, path: str) -> Any:
    if path in obj:
        return obj[path]
    if "." in path:
        cur: Any = obj
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    return None


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _record(obj: dict, fields: FieldMap, file_name: str, line: int) -> Record | Malformed:
    text = _get(obj, fields.text)
    if text is None:
        return Malformed(file_name, line, f"missing field {fields.text!r}")
    if not isinstance(text, str):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        else:
            return Malformed(file_name, line, f"field {fields.text!r} is not a string")
    mid = _scalar(_get(obj, fields.id))
    if mid is None or mid == "":
        mid = f"{file_name}:{line}"
    account = _scalar(_get(obj, fields.account))
    if account == "":
        account = None
    return Record(line, mid, account, _scalar(_get(obj, fields.time)), text)


def parse_jsonl_lines(lines, file_name: str, fields: FieldMap) -> list[Record | Malformed]:
    out: list[Record | Malformed] = []
    loads = json.loads
    for n, raw in lines:
        try:
            obj = loads(raw)
            out.append(_record(obj, fields, file_name, n) if isinstance(obj, dict)
                       else Malformed(file_name, n, "not a JSON object"))
        except UnicodeDecodeError:
            out.append(Malformed(file_name, n, "not valid UTF-8"))
        except ValueError as exc:
            out.append(Malformed(file_name, n, f"invalid JSON: {str(exc).split(':')[0]}"))
        except RecursionError:  # arrays or objects nested deeper than the interpreter's limit (loads or dumps)
            out.append(Malformed(file_name, n, "invalid JSON: nested too deeply"))
    return out


def parse_csv_rows(rows, header: list[str], file_name: str, fields: FieldMap) -> list[Record | Malformed]:
    out: list[Record | Malformed] = []
    width = len(header)
    for n, row, reason in rows:
        if row is None:
            out.append(Malformed(file_name, n, reason))
            continue
        if len(row) != width:
            out.append(Malformed(file_name, n, f"{len(row)} fields, header has {width}"))
            continue
        out.append(_record(dict(zip(header, row)), fields, file_name, n))
    return out


def parse_chunk(chunk: RawChunk, fields: FieldMap) -> list[Record | Malformed]:
    if chunk.format == "jsonl":
        return parse_jsonl_lines(chunk.items, chunk.file_name, fields)
    return parse_csv_rows(chunk.items, chunk.header or [], chunk.file_name, fields)


def iter_items(inp: InputFile, fields: FieldMap, chunk_size: int = 1000) -> Iterator[Record | Malformed]:
    """Every item of one file, parsed (a convenience for small inputs and tests)."""
    for chunk in iter_raw_chunks(inp, 0, chunk_size):
        yield from parse_chunk(chunk, fields)


def field_names(inp: InputFile, lines: int = 100) -> list[str]:
    """The CSV header, or the keys of the first JSON object among the first ``lines`` lines: the
    names a user can give --text-field (for the error when no line has the text field)."""
    with contextlib.closing(iter_raw_chunks(inp, 0, lines)) as chunks:
        for chunk in chunks:
            if chunk.format == "csv":
                return chunk.header or []
            for _, raw in chunk.items:
                try:
                    obj = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if isinstance(obj, dict):
                    return list(obj)
            break
    return []
