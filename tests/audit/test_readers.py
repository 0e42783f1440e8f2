"""Streaming readers: JSON lines, CSV, gzip, field mapping, malformed lines with line numbers."""
from __future__ import annotations

import gzip

import pytest

from app.audit.readers import FieldMap, InputError, Malformed, Record, iter_items, resolve_inputs


def items(path, fmt="auto", fields=FieldMap(), chunk=3):
    (inp,) = resolve_inputs([str(path)], fmt)
    return list(iter_items(inp, fields, chunk_size=chunk))


def test_jsonl_records_missing_fields_and_malformed_lines(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_bytes(
        b'{"id": "a", "account": "X", "sent_at": "2026-01-01T10:00:00", "text": "hello"}\n'
        b'\n'                                            # blank: skipped, still counted as a line
        b'{"id": 7, "text": "no account"}\n'             # id kept as a number, account None
        b'{"account": "Y", "text": "no id"}\n'           # id falls back to file:line
        b'{"id": "b", "account": "X"}\n'                 # no text: malformed
        b'{"id": "c", "text": ["a list"]}\n'             # text not a string: malformed
        b'{broken json\n'
        b'[1, 2]\n'                                      # not an object
        b'\xff\xfe{"id": "d", "text": "bad bytes"}\n'    # not UTF-8
        b'{"id": "e", "text": "last line, no newline"}'
    )
    got = items(p)
    recs = [i for i in got if isinstance(i, Record)]
    bad = [i for i in got if isinstance(i, Malformed)]
    assert [(r.line, r.id, r.account, r.text) for r in recs] == [
        (1, "a", "X", "hello"), (3, 7, None, "no account"), (4, "log.jsonl:4", "Y", "no id"),
        (10, "e", None, "last line, no newline")]
    assert recs[0].time == "2026-01-01T10:00:00"
    assert [(m.line, m.reason.split(":")[0]) for m in bad] == [
        (5, "missing field 'text'"), (6, "field 'text' is not a string"), (7, "invalid JSON"),
        (8, "not a JSON object"), (9, "not valid UTF-8")]
    assert all(m.file == "log.jsonl" for m in bad)


def test_field_mapping_and_nested_fields(tmp_path):
    p = tmp_path / "log.ndjson"
    p.write_text('{"msg_id": "x1", "customer": {"code": "ACME"}, "ts": 1700000000, "content": "你好"}\n', encoding="utf-8")
    (r,) = items(p, fields=FieldMap(text="content", id="msg_id", account="customer.code", time="ts"))
    assert (r.id, r.account, r.time, r.text) == ("x1", "ACME", 1700000000, "你好")


def test_csv_quotes_bom_widths_and_line_numbers(tmp_path):
    p = tmp_path / "log.csv"
    p.write_bytes(
        "\ufeffid,account,sent_at,text\n"
        "1,A,2026-01-01 08:00:00,plain message\n"
        '2,B,2026-01-01 08:01:00,"quoted, with comma\nand a newline"\n'
        "3,C,2026-01-01 08:02:00\n"                      # a field missing: malformed
        "4,D,2026-01-01 08:03:00,too,many\n"             # one too many: malformed
        "\n"
        ",E,,no id here\n".encode("utf-8"))
    got = items(p)
    recs = [i for i in got if isinstance(i, Record)]
    bad = [i for i in got if isinstance(i, Malformed)]
    assert [(r.line, r.id, r.account, r.text) for r in recs] == [
        (2, "1", "A", "plain message"), (3, "2", "B", "quoted, with comma\nand a newline"),
        (8, "log.csv:8", "E", "no id here")]
    assert [(m.line, m.reason) for m in bad] == [(5, "3 fields, header has 4"), (6, "5 fields, header has 4")]


def test_gzip_and_tsv_and_format_override(tmp_path):
    gz = tmp_path / "log.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n'))
    assert [r.text for r in items(gz)] == ["a", "b"]
    tsv = tmp_path / "log.tsv.gz"
    tsv.write_bytes(gzip.compress("id\ttext\n1\thello, world\n".encode()))
    assert [(r.id, r.text) for r in items(tsv)] == [("1", "hello, world")]
    odd = tmp_path / "log.txt"
    odd.write_text("id,text\n9,x\n", encoding="utf-8")
    assert [(r.id, r.text) for r in items(odd)] == [("9", "x")]          # sniffed: CSV
    assert isinstance(items(odd, fmt="jsonl")[0], Malformed)               # forced: JSON lines


def test_missing_input_is_an_error(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        resolve_inputs([str(tmp_path / "nope.jsonl")])
    with pytest.raises(InputError, match="no file matches"):
        resolve_inputs([str(tmp_path / "*.jsonl.gz")])


def test_glob_expands_in_order(tmp_path):
    for n in ("b.jsonl", "a.jsonl"):
        (tmp_path / n).write_text('{"text": "x"}\n', encoding="utf-8")
    assert [i.name for i in resolve_inputs([str(tmp_path / "*.jsonl")])] == ["a.jsonl", "b.jsonl"]


DEEP = 2000  # levels: more than Python's recursion limit


def test_deeply_nested_json_is_a_malformed_line(tmp_path):
    """json.loads raises RecursionError (not a ValueError) on deep nesting (issue 14, item 9)."""
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join([
        '{"id": "a", "text": "before"}',
        "[" * DEEP + "]" * DEEP,
        '{"id": "b", "text": ' + "[" * DEEP + "]" * DEEP + "}",
        '{"id": "c", "text": "x", "account": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}",
        '{"id": "d", "text": "after"}',
    ]) + "\n", encoding="utf-8")
    got = items(p)
    assert [(i.line, i.id) for i in got if isinstance(i, Record)] == [(1, "a"), (5, "d")]
    assert [(m.line, m.reason) for m in got if isinstance(m, Malformed)] == [
        (2, "invalid JSON: nested too deeply"), (3, "invalid JSON: nested too deeply"),
        (4, "invalid JSON: nested too deeply")]
