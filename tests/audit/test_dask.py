"""The Dask path on a real distributed LocalCluster (loopback, 2 worker processes) gives the
same findings and summary as the local path on the same input."""
from __future__ import annotations

import json

import pytest

from app.audit import run_audit
from app.audit.runner import summary_path

from .conftest import read_findings, rows_for, sample_texts, write_csv, write_jsonl

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    # processes=True: real worker processes, each loading the Moderator once (a cached global)
    from distributed import LocalCluster

    cl = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", memory_limit=0, silence_logs=50)
    try:
        yield cl
    finally:
        cl.close()


def _summary(out):
    s = json.loads(summary_path(out).read_text(encoding="utf-8"))
    for k in ("output", "runner", "seconds", "messages_this_run"):
        s.pop(k, None)
    return s


def test_dask_gives_the_same_findings_as_local(tmp_path, config, cluster):
    rows = rows_for(sample_texts(150))
    # a plain JSON-lines file cut into several byte ranges, with malformed and blank lines
    # (line numbers must survive the cut), a gzip file and a CSV file that the client streams in
    # chunks of 8 lines / rows, one task each
    plain = write_jsonl(tmp_path / "a.jsonl", rows[:90], extra_lines={5: "{bad", 33: "", 34: "[1]", 70: "nope"})
    gz = write_jsonl(tmp_path / "b.jsonl.gz", rows[90:120], gz=True, extra_lines={3: "{bad too"})
    csvp = write_csv(tmp_path / "c.csv", rows[120:])
    inputs = [plain, gz, csvp]

    local = run_audit(config(inputs, out=tmp_path / "local.jsonl", batch_size=16))
    units = []
    d = run_audit(config(inputs, out=tmp_path / "dask.jsonl", batch_size=16, scheduler=cluster.scheduler_address,
                         dask_block_bytes=2048, dask_stream_items=8, on_unit=units.append))
    assert plain.stat().st_size > 4 * 2048  # really cut into ranges
    ranges = -(-plain.stat().st_size // 2048)
    # 31 gzip lines (one malformed) and 30 CSV rows in chunks of 8: 4 tasks each
    assert units == list(range(1, ranges + 4 + 4 + 1))
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert len(read_findings(tmp_path / "dask.jsonl")) == 150
    assert d.malformed == local.malformed
    assert [(m["file"], m["line"]) for m in d.malformed] == [("a.jsonl", 6), ("a.jsonl", 37), ("a.jsonl", 74),
                                                            ("b.jsonl.gz", 4)]
    assert _summary(tmp_path / "dask.jsonl") == _summary(tmp_path / "local.jsonl")


def test_interrupted_dask_run_resumes_inside_a_streamed_file(tmp_path, config, cluster):
    rows = rows_for(sample_texts(60))
    gz = write_jsonl(tmp_path / "log.jsonl.gz", rows, gz=True, extra_lines={20: "{bad"})
    ref = run_audit(config([gz], out=tmp_path / "local.jsonl", batch_size=16))
    out = tmp_path / "dask.jsonl"
    kw = dict(out=out, scheduler=cluster.scheduler_address, dask_stream_items=10)

    def stop_after_3(done):
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_audit(config([gz], on_unit=stop_after_3, **kw))
    assert not out.exists()  # whole or nothing
    resumed = []
    s = run_audit(config([gz], on_unit=resumed.append, **kw))
    assert resumed == [4, 5, 6, 7]  # 61 lines in chunks of 10: units 4-7 were left
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert s.messages == ref.messages == 60 and s.malformed == ref.malformed


def test_dask_unreachable_scheduler_is_a_one_line_error(tmp_path, config):
    from app.audit import AuditError

    p = write_jsonl(tmp_path / "a.jsonl", rows_for(["hello"]))
    with pytest.raises(AuditError, match="cannot connect to the Dask scheduler"):
        run_audit(config([p], scheduler="tcp://127.0.0.1:9", model_dir="none"))


def test_dask_counts_a_deeply_nested_line_as_malformed(tmp_path, config, cluster):
    """Issue 14, item 9 on the Dask path: in a byte range the workers read, and in a streamed gzip chunk."""
    rows = rows_for(sample_texts(40))
    deep = "[" * 2000 + "]" * 2000
    plain = write_jsonl(tmp_path / "a.jsonl", rows[:30], extra_lines={20: deep})
    gz = write_jsonl(tmp_path / "b.jsonl.gz", rows[30:], gz=True, extra_lines={2: deep})
    s = run_audit(config([plain, gz], out=tmp_path / "dask.jsonl", scheduler=cluster.scheduler_address,
                         dask_block_bytes=2048, dask_stream_items=4))
    assert len(read_findings(tmp_path / "dask.jsonl")) == 40
    assert [(m["file"], m["line"], m["reason"]) for m in s.malformed] == [
        ("a.jsonl", 21, "invalid JSON: nested too deeply"), ("b.jsonl.gz", 3, "invalid JSON: nested too deeply")]
