"""Every pre-send check and /v1/moderate call is recorded, off the request path, and nothing
queued is lost on a normal shutdown."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.config import PROJECT_ROOT
from app.services import checks
from app.store.records import CheckLabel, CheckRecord, CheckStat

from .conftest import GAMBLING, item, presend


def _records(db):
    with db.session() as s:
        return s.scalars(sa.select(CheckRecord).order_by(CheckRecord.id)).all()


def test_a_presend_check_is_recorded_with_its_verdict(tenant, acme_template, flush, db):
    answer = presend(tenant, acme_template, message_id="m-1")
    flush()
    [rec] = _records(db)
    assert (rec.source, rec.account_id, rec.message_id, rec.template_id) == ("presend", "ACME", "m-1", acme_template)
    assert rec.verdict == answer["verdict"] == "allow"
    assert rec.text == answer["text"] and "482915" in rec.text and rec.text_mode == "full"
    assert rec.phone == "+8613800138000" and len(rec.phone_hash) == 32
    assert rec.ruleset_version == answer["ruleset_version"] and rec.model_version == answer["model_version"]
    assert rec.score == answer["score"]
    assert rec.result["reasons"] == answer["reasons"]
    assert abs((datetime.now(UTC) - rec.at).total_seconds()) < 60


def test_a_refused_check_is_recorded_with_its_rule(tenant, db, flush):
    r = tenant.post("/v1/messages/check", {"template_id": 99999, "phone": "+8613800138001", "params": {}})
    assert r.status_code == 200 and r.json["forced_by"] == "TPL_NOT_FOUND"
    flush()
    [rec] = _records(db)
    assert rec.verdict == "reject" and rec.forced_by == "TPL_NOT_FOUND" and rec.rules == "TPL_NOT_FOUND"
    assert rec.text is None and rec.template_id == 99999


def test_moderate_calls_are_recorded_with_categories_and_rules(tenant, make_client, db, flush):
    v = tenant.post("/v1/moderate", {"text": GAMBLING}).json
    assert v["verdict"] == "reject"
    reviewer = make_client("reviewer")
    assert reviewer.post("/v1/moderate", {"text": "明天下午三点开会"}).status_code == 200
    # a reviewer trying a text against ACME's lists: recorded, but not as ACME's traffic
    assert reviewer.post("/v1/moderate", {"text": "明天下午三点开会", "account": "ACME"}).status_code == 200
    flush()
    recs = _records(db)
    assert [(r.source, r.account_id) for r in recs] == [("moderate", "ACME"), ("moderate", None), ("moderate", None)]
    assert len(tenant.get("/v1/checks").json["items"]) == 1
    gamble = recs[0]
    assert gamble.verdict == "reject" and gamble.text == GAMBLING and gamble.message_id is None
    assert gamble.categories.split(",") == v["categories"]
    rules = list(dict.fromkeys(r["rule"] for r in v["reasons"]))
    assert gamble.rules.split(",") == rules
    with db.session() as s:
        labels = s.execute(sa.select(CheckLabel.kind, CheckLabel.value).where(CheckLabel.check_id == gamble.id)).all()
        assert {v for k, v in labels if k == "category"} == set(v["categories"])
        assert {v for k, v in labels if k == "rule"} == set(rules)
        # the hourly counts move with the records
        n = s.scalar(sa.select(sa.func.sum(CheckStat.n)).where(CheckStat.dim == "all", CheckStat.account_id != "*"))
        assert n == 3
        assert s.scalar(sa.select(sa.func.sum(CheckStat.n)).where(CheckStat.dim == "all",
                                                                 CheckStat.account_id == "*")) == 3


def test_a_replayed_request_is_not_recorded(tenant, acme_template, db, flush, app):
    body = {"template_id": acme_template, "phone": "+8613800138002", "params": {"code": "1234"}}
    raw = __import__("json").dumps(body).encode()
    hdr = tenant.headers("POST", "/v1/messages/check", [], raw)
    c = app.test_client()
    assert c.post("/v1/messages/check", data=raw, headers=hdr, content_type="application/json").status_code == 200
    assert c.post("/v1/messages/check", data=raw, headers=hdr, content_type="application/json").status_code == 401
    flush()
    assert len(_records(db)) == 1


def test_recording_off_records_nothing(app, tenant, acme_template, db):
    rec = checks.install(app)
    rec.enabled = False
    presend(tenant, acme_template)
    assert rec.flush(5) and _records(db) == []


def test_close_writes_everything_queued_and_refuses_more(app, db):
    rec = checks.CheckRecorder(db, "full", "s", max_queue=5000)
    now = datetime.now(UTC)
    for i in range(1200):
        assert rec.submit(item(now, message_id=f"m-{i}"))
    assert rec.close() == 0
    assert len(_records(db)) == 1200
    assert not rec.submit(item(now))  # closed
    assert rec.pending() == 0


def test_a_full_queue_drops_and_counts_without_blocking(app, db):
    rec = checks.CheckRecorder(db, "full", "s", max_queue=100)
    before = checks.RECORDS_DROPPED.labels("queue_full")._value.get()
    now = datetime.now(UTC)
    rec._thread = object()  # as if a writer were busy elsewhere: nothing drains the queue
    t0 = time.perf_counter()
    accepted = sum(rec.submit(item(now)) for _ in range(150))
    assert time.perf_counter() - t0 < 0.5
    assert accepted == 100
    assert checks.RECORDS_DROPPED.labels("queue_full")._value.get() - before == 50
    rec._thread = None
    assert rec.close() == 0
    assert len(_records(db)) == 100


def test_a_row_that_fails_is_dropped_alone(app, db):
    rec = checks.CheckRecorder(db, "full", "s")
    now = datetime.now(UTC)
    good = item(now, message_id="ok")
    bad = item(now, message_id="x" * 300)  # longer than the column: PostgreSQL refuses it
    rec.submit(good)
    rec.submit(bad)
    rec.submit(item(now, message_id="ok2"))
    rec.close()
    ids = [r.message_id for r in _records(db)]
    assert "ok" in ids and "ok2" in ids  # SQLite stores the long one too; PostgreSQL drops only it


def test_records_survive_a_normal_process_exit(migrated_url, tmp_path):
    """A process that queued records and exits normally (atexit) has written all of them."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        from datetime import UTC, datetime
        from app.services import checks
        from app.store.db import Database
        db = Database({migrated_url!r})
        rec = checks.CheckRecorder(db, "masked", "secret")
        now = datetime.now(UTC)
        for i in range(3000):
            v = {{"verdict": "allow", "categories": [], "score": 0.0, "reasons": []}}
            rec.submit(checks.Item("presend", now, None, f"m-{{i}}", 1, "+8613800138000", v, "code 123456"))
        print("queued", rec.pending())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    engine = sa.create_engine(migrated_url)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(CheckRecord)).scalar()
        text = conn.execute(sa.select(CheckRecord.text).limit(1)).scalar()
    engine.dispose()
    assert n == 3000 and text == "code ******"


@pytest.mark.skipif(not (PROJECT_ROOT / ".venv" / "bin" / "smsguard").exists(), reason="no .venv/bin/smsguard")
def test_gunicorn_workers_write_their_records_on_sigterm(tmp_path, moderator):
    """Under `smsguard serve` (gunicorn, 2 workers): checks answered, then SIGTERM: every check
    answered is in the record."""
    import socket

    from app.client import Client
    from app.services import keys
    from app.store import migrate
    from app.store.db import Database

    from .conftest import make_template

    url = f"sqlite:///{tmp_path / 'instance' / 'smsguard.db'}"
    migrate.upgrade(url)
    db = Database(url)
    tpl = make_template(db, "ACME")
    with db.session() as s:
        k = keys.create(s, "ACME", "tenant", actor="test")
        pk, sk = k.public_key, k.private_key
    db.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, SMSGUARD_INSTANCE_DIR=str(tmp_path / "instance"), SMSGUARD_DATABASE_URL=url,
               SMSGUARD_BIND=f"127.0.0.1:{port}", SMSGUARD_WORKERS="2", SMSGUARD_WATCH_RULES="0",
               SMSGUARD_LOG_LEVEL="WARNING", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    server = subprocess.Popen([str(PROJECT_ROOT / ".venv" / "bin" / "smsguard"), "serve", "--no-upgrade"], env=env,
                              cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        c = Client(f"http://127.0.0.1:{port}", pk, sk, timeout=10)
        deadline = time.time() + 60
        while True:
            try:
                if c.request("GET", "/readyz", raise_for_status=False).status == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline and server.poll() is None, "the server did not start"
            time.sleep(0.3)
        answered = 0
        for i in range(200):
            r = c.request("POST", "/v1/messages/check", {"template_id": tpl, "phone": f"+86138{i:08d}",
                                                         "params": {"code": "1234"}, "message_id": f"g-{i}"},
                          raise_for_status=False)
            answered += r.status == 200
        assert answered == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(CheckRecord)).scalar()
    engine.dispose()
    assert n == 200


def _sqlite_only(db):
    if db.sqlite_path is None:
        pytest.skip("moves the SQLite file away")


def test_records_wait_for_the_database_and_are_written_once_it_is_back(app, db):
    _sqlite_only(db)
    rec = checks.CheckRecorder(db, "full", "s")
    path = db.sqlite_path
    away = path.with_name(path.name + ".away")
    os.rename(path, away)
    try:
        now = datetime.now(UTC)
        for i in range(5):
            assert rec.submit(item(now, message_id=f"w-{i}"))
        time.sleep(1.0)  # the writer tried, found the database unavailable and waits to retry
        assert rec.pending() == 5
    finally:
        os.rename(away, path)
    assert rec.flush(20)
    assert [r.message_id for r in _records(db)] == [f"w-{i}" for i in range(5)]
    rec.close()


def test_shutdown_with_the_database_down_counts_what_it_loses(app, db):
    _sqlite_only(db)
    rec = checks.CheckRecorder(db, "full", "s")
    before = checks.RECORDS_DROPPED.labels("shutdown")._value.get()
    path = db.sqlite_path
    away = path.with_name(path.name + ".away")
    os.rename(path, away)
    try:
        now = datetime.now(UTC)
        for i in range(3):
            rec.submit(item(now))
        t0 = time.monotonic()
        lost = rec.close(timeout=1.5)
        assert time.monotonic() - t0 < 5
    finally:
        os.rename(away, path)
    assert checks.RECORDS_DROPPED.labels("shutdown")._value.get() - before == 3
    assert lost in (0, 3)  # counted by the writer thread (0 here) or by close itself
