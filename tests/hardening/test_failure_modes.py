"""Failure modes: the database unreachable, a rule file corrupted while the service runs, a model
file missing or mismatched. Each answers clearly: 503 problem bodies and /readyz detail, the
rules in force kept (and the error in status, /readyz, logs and metrics), a one-line refusal to
start."""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app import StartupError, create_app
from app.config import PROJECT_ROOT, Settings
from app.engine.moderator import Moderator
from app.store import migrate

MODEL_DIR = PROJECT_ROOT / "models" / "smsguard-zh-en"
needs_model = pytest.mark.skipif(not (MODEL_DIR / "metadata.json").exists(), reason="no shipped model")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_url(kind: str, tmp_path: Path) -> str:
    """A database nobody can reach: a PostgreSQL port nobody listens on, or a SQLite file whose
    directory is removed after the app opened it."""
    if kind == "postgres":
        return f"postgresql+psycopg://smsguard:x@127.0.0.1:{free_port()}/smsguard?connect_timeout=2"
    return f"sqlite:///{tmp_path / 'gone' / 'smsguard.db'}"


def break_database(app, kind: str, tmp_path: Path) -> None:
    """Point the running app's Database (and what holds it) at a dead URL."""
    from app.services.moderation import AccountListCache
    from app.store.db import Database

    dead = Database(dead_url(kind, tmp_path))
    app.extensions["smsguard.db"] = dead
    app.extensions["smsguard.lists"] = AccountListCache(dead)
    for k in ("smsguard.hotpath", "smsguard.presend"):
        app.extensions.pop(k, None)
    if kind == "sqlite":
        shutil.rmtree(tmp_path / "gone")


def assert_problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["status"] == status and body["detail"]
    return body


# ------------------------------------------------------------------------ database unreachable

@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_readyz_fails_when_the_database_is_unreachable(kind, tmp_path, moderator):
    settings = Settings(instance_dir=tmp_path / "instance", database_url=dead_url(kind, tmp_path),
                        model_dir=None, watch_rules=False, secret_key="x").resolved()
    app = create_app(settings, moderator=moderator)
    if kind == "sqlite":
        shutil.rmtree(tmp_path / "gone")
    c = app.test_client()
    t0 = time.perf_counter()
    r = c.get("/readyz")
    assert time.perf_counter() - t0 < 10
    assert r.status_code == 503
    body = r.get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"]
    assert body["checks"]["rules"]["ok"] is True  # the engine itself is fine
    assert c.get("/healthz").status_code == 200  # alive: do not restart it, route around it
    app.extensions["smsguard.db"].dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_signed_calls_answer_503_problems_when_the_database_is_unreachable(kind, app, tenant, admin, db, tmp_path):
    from tests.presend.conftest import make_template

    tid = make_template(db, "ACME")
    ok = tenant.post("/v1/messages/check", {"template_id": tid, "params": {"code": "123456"},
                                            "phone": "+8613800138000"})
    assert ok.status_code == 200
    break_database(app, kind, tmp_path)
    body = assert_problem(tenant.post("/v1/moderate", {"text": "你好"}), 503)
    assert body["reason"] == "database_unavailable"
    assert_problem(admin.get("/v1/accounts"), 503)
    # the pre-send check answers by the fail mode (closed by default): a reject that says why
    r = tenant.post("/v1/messages/check", {"template_id": tid, "params": {"code": "654321"},
                                           "phone": "+8613800138001"})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    v = r.get_json()
    assert v["verdict"] == "reject" and v["forced_by"] == "ACCT_PRESEND_UNAVAILABLE", v
    # a replay is still refused while the database is down (nonces kept in memory meanwhile)
    h = tenant.headers("POST", "/v1/messages/check", [], b'{"template_id": 1}')
    first = tenant.client.post("/v1/messages/check", data=b'{"template_id": 1}', headers=h,
                               content_type="application/json")
    again = tenant.client.post("/v1/messages/check", data=b'{"template_id": 1}', headers=h,
                               content_type="application/json")
    assert first.status_code != 401 and again.status_code == 401
    # a key this process never verified cannot be checked at all: 503, never a 500
    stranger = tenant.headers("POST", "/v1/messages/check", [], b"{}")
    stranger["X-Api-Key"] = "pk_never_seen_here"
    r = tenant.client.post("/v1/messages/check", data=b"{}", headers=stranger, content_type="application/json")
    assert_problem(r, 503)
    assert r.headers.get("Retry-After")
    assert app.test_client().get("/readyz").status_code == 503


def test_unreachable_database_is_logged_in_one_line(app, tenant, tmp_path, caplog):
    break_database(app, "postgres", tmp_path)
    with caplog.at_level(logging.ERROR, logger="smsguard.api"):
        assert tenant.post("/v1/moderate", {"text": "你好"}).status_code == 503
    errors = [r for r in caplog.records if r.name == "smsguard.api" and r.levelno >= logging.ERROR]
    assert errors and "database unavailable" in errors[0].getMessage()
    assert errors[0].exc_info is None  # a known condition: no traceback per request


def test_problems_classify_database_errors():
    import sqlite3

    from sqlalchemy import exc as sa_exc

    from app.store.db import unavailable as database_unavailable

    assert database_unavailable(sqlite3.OperationalError("unable to open database file"))
    assert database_unavailable(sqlite3.OperationalError("database is locked"))
    assert database_unavailable(sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error")))
    assert database_unavailable(sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"))
    assert not database_unavailable(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not database_unavailable(sqlite3.OperationalError("no such column: x"))
    assert not database_unavailable(ValueError("x"))


# ------------------------------------------------------------------ rule file corrupted live

CORRUPTIONS = {
    "not yaml": ("keywords/gambling.yaml", b"category: gambling\nrules: [unclosed\n  - {id: KW_X"),
    "binary garbage": ("keywords/gambling.yaml", bytes(range(256)) * 4),
    "unknown key": ("keywords/gambling.yaml", "category: gambling\nrulez: []\n".encode()),
    "bad regex": ("patterns.yaml", "patterns:\n  - id: PAT_BROKEN\n    regex: '(unclosed'\n".encode()),
    "empty categories": ("categories.yaml", b""),
    "missing policy": ("policy.yaml", None),
}


def _rules_copy(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", d, ignore=shutil.ignore_patterns("selftest"))
    return d


def _corrupt(rules: Path, name: str) -> None:
    rel, data = CORRUPTIONS[name]
    path = rules / rel
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
        st = path.stat()  # a new mtime even on a coarse-grained file system
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def _reload_errors() -> float:
    return REGISTRY.get_sample_value("smsguard_rule_reload_errors_total") or 0.0


@pytest.fixture(scope="module")
def live_rules(tmp_path_factory):
    """A Moderator over a copy of rules/ (no model: the rules are what this is about)."""
    tmp = tmp_path_factory.mktemp("live")
    rules = _rules_copy(tmp)
    pristine = {p.relative_to(rules): p.read_bytes() for p in rules.rglob("*") if p.is_file()}
    m = Moderator.from_paths(rules, model_dir=None, watch=False)
    yield m, rules, pristine
    m.close()


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupted_rule_file_keeps_the_rules_in_force(corruption, live_rules, tmp_path, caplog):
    m, rules, pristine = live_rules
    settings = Settings(instance_dir=tmp_path / "instance", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                        rules_dir=rules, model_dir=None, watch_rules=False, secret_key="x").resolved()
    migrate.upgrade(settings.database_url)  # the service never creates its schema itself
    app = create_app(settings, moderator=m)  # wires the reload metrics
    version = m.ruleset_version
    before = m.check("澳门百家乐，首充送88").to_dict()
    assert before["verdict"] == "reject"
    errors0 = _reload_errors()
    try:
        _corrupt(rules, corruption)
        with caplog.at_level(logging.ERROR, logger="smsguard.rules"):
            assert m.reload() is False
        # the rules in force stay, checks still work
        assert m.ruleset_version == version
        assert m.check("澳门百家乐，首充送88").to_dict() == before
        st = m.status()["rules"]
        assert st["last_error"] and CORRUPTIONS[corruption][0].split("/")[-1] in st["last_error"], st["last_error"]
        assert "\n" not in st["last_error"]
        # ... in the logs
        assert any("rules reload failed" in r.getMessage() for r in caplog.records)
        # ... in the metrics
        assert _reload_errors() == errors0 + 1
        metrics_text = app.test_client().get("/metrics").get_data(as_text=True)
        assert "smsguard_rule_reload_errors_total" in metrics_text
        # ... and in /readyz detail, while the service stays ready on the rules in force
        r = app.test_client().get("/readyz")
        body = r.get_json()
        assert body["checks"]["rules"]["version"] == version
        assert body["checks"]["rules"]["last_error"] == st["last_error"]
        assert r.status_code == 200
    finally:
        for rel, data in pristine.items():
            (rules / rel).write_bytes(data)
        m.reload()
        app.extensions["smsguard.db"].dispose()
    assert m.status()["rules"]["last_error"] is None
    assert m.ruleset_version == version


def test_the_watcher_reports_a_corrupted_file(tmp_path):
    rules = _rules_copy(tmp_path)
    m = Moderator.from_paths(rules, model_dir=None, watch=True, poll_interval=0.05)
    try:
        settings = Settings(instance_dir=tmp_path / "instance", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                            rules_dir=rules, model_dir=None, secret_key="x").resolved()
        create_app(settings, moderator=m)
        version, errors0 = m.ruleset_version, _reload_errors()
        before = m.check("澳门百家乐，首充送88").to_dict()
        _corrupt(rules, "not yaml")
        deadline = time.time() + 20
        while m.status()["rules"]["last_error"] is None and time.time() < deadline:
            time.sleep(0.05)
        assert m.status()["rules"]["last_error"], "the watcher did not report the broken file"
        assert m.ruleset_version == version
        assert m.check("澳门百家乐，首充送88").to_dict() == before
        assert _reload_errors() >= errors0 + 1
    finally:
        m.close()


def test_reload_listeners_never_break_a_reload(live_rules):
    m, _rules, _ = live_rules

    def boom(event, info):
        raise RuntimeError("listener bug")

    m.manager.listeners.append(boom)
    try:
        m.manager._sig = ()  # force a rebuild
        m.reload()  # nothing changed on disk: same version, no exception
        assert m.status()["rules"]["last_error"] is None
    finally:
        m.manager.listeners.remove(boom)


# ----------------------------------------------------------------- model missing or mismatched

def _model_copy(tmp_path: Path, with_weights: bool = True) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    shutil.copy(MODEL_DIR / "metadata.json", d)
    if with_weights:
        shutil.copy(MODEL_DIR / "model.joblib", d)
    return d


def _settings_for_model(tmp_path: Path, model: Path) -> Settings:
    return Settings(instance_dir=tmp_path / "instance", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                    model_dir=model, watch_rules=False, secret_key="x").resolved()


def _mismatch(model: Path) -> None:
    meta = json.loads((model / "metadata.json").read_text())
    meta["format"] = 999
    (model / "metadata.json").write_text(json.dumps(meta))


def _truncate(model: Path) -> None:
    data = (MODEL_DIR / "model.joblib").read_bytes()
    (model / "model.joblib").write_bytes(data[:1000])


@needs_model
@pytest.mark.parametrize("damage,expect", [
    (_mismatch, "format"),
    (_truncate, "model_sha256"),
])
def test_create_app_refuses_a_broken_model_in_one_line(tmp_path, damage, expect):
    model = _model_copy(tmp_path, with_weights=damage is not _mismatch)
    damage(model)
    with pytest.raises(StartupError) as e:
        create_app(_settings_for_model(tmp_path, model))
    msg = str(e.value)
    assert "\n" not in msg and str(model) in msg and expect in msg, msg
    assert msg.startswith("cannot load the model from")


@needs_model
def test_from_paths_refuses_a_missing_model_file(tmp_path):
    from app.engine.classifier import ModelMismatchError

    model = _model_copy(tmp_path, with_weights=False)
    with pytest.raises(ModelMismatchError, match="no model.joblib") as e:
        Moderator.from_paths(PROJECT_ROOT / "rules", model_dir=model, watch=False)
    assert "\n" not in str(e.value)


@needs_model
@pytest.mark.parametrize("metadata,expect", [
    (None, "no metadata.json"),
    ("{not json", "unreadable"),
    ('{"format": 1, "labels": ["spam"]}', "label set"),
])
def test_load_classifier_names_the_problem(tmp_path, metadata, expect):
    from app.engine.classifier import ModelMismatchError, load_classifier

    model = tmp_path / "model"
    model.mkdir()
    if metadata is not None:
        (model / "metadata.json").write_text(metadata)
    with pytest.raises(ModelMismatchError, match=expect) as e:
        load_classifier(model)
    assert "\n" not in str(e.value)


@needs_model
def test_cli_check_with_a_broken_model_is_one_line_and_nonzero(tmp_path, capsys):
    from app.cli import main

    model = _model_copy(tmp_path, with_weights=False)
    _mismatch(model)
    rc = main(["check", "--model-dir", str(model), "你好"])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and err.startswith("smsguard: error:") and "format" in err, err


@needs_model
def test_serve_with_a_broken_model_exits_with_one_line(tmp_path):
    model = _model_copy(tmp_path, with_weights=False)
    _mismatch(model)
    env = dict(os.environ, SMSGUARD_INSTANCE_DIR=str(tmp_path / "instance"), SMSGUARD_MODEL_DIR=str(model),
               SMSGUARD_DATABASE_URL=f"sqlite:///{tmp_path / 'instance' / 'smsguard.db'}",
               SMSGUARD_BIND=f"127.0.0.1:{free_port()}", SMSGUARD_WORKERS="1", SMSGUARD_WATCH_RULES="0",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    smsguard = Path(sys.executable).parent / "smsguard"
    p = subprocess.run([str(smsguard), "serve"], env=env, cwd=PROJECT_ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and "cannot load the model" in errors[0] and "format" in errors[0], p.stderr[-2000:]
    assert "Traceback" not in p.stderr


COMPLAINT = {"account": "ACME", "phone": "+8613800138000", "source": "carrier", "reason": "spam"}


def _serving(db, admin, tenant, external_id: str, phone: str) -> int:
    """A service in use: ACME's approved template (its id is returned), one complaint filed and
    one pre-send check answered (so the tenant's key is cached in the worker)."""
    from tests.presend.conftest import make_template

    tid = make_template(db, "ACME")
    assert admin.post("/v1/complaints", {**COMPLAINT, "external_id": external_id}).status_code == 201
    assert tenant.post("/v1/messages/check", {"template_id": tid, "params": {"code": "123456"},
                                              "phone": phone}).status_code == 200
    return tid


def test_a_database_file_deleted_under_the_service_loses_no_acknowledged_write(app, tenant, admin, db):
    """Issue 14, item 3: with the SQLite files deleted while serving, a complaint got 201 and was
    gone after restart, new connections made an empty database ("no such table": 500s), the
    pre-send check answered 500 and /readyz stayed ready."""
    from pathlib import Path

    if not db.is_sqlite:
        pytest.skip("a file database only")
    tid = _serving(db, admin, tenant, "c-1", "+8613800138001")
    assert app.test_client().get("/readyz").status_code == 200
    path = db.sqlite_path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    # a write that cannot persist is never acknowledged
    body = assert_problem(admin.post("/v1/complaints", {**COMPLAINT, "external_id": "c-2"}), 503)
    assert body["reason"] == "database_unavailable"
    # the pre-send check fails by its mode (closed), never a 500
    r = tenant.post("/v1/messages/check", {"template_id": tid, "params": {"code": "654321"},
                                           "phone": "+8613800138002"})
    assert r.status_code == 200 and r.get_json()["forced_by"] == "ACCT_PRESEND_UNAVAILABLE"
    # not ready, and no empty database was made in its place
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"]["ok"] is False
    assert not path.exists()


def test_readyz_wants_the_migrated_schema(tmp_path, moderator):
    """An empty database file (never migrated) is not ready."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    sqlite3.connect(tmp_path / "empty.db").close()
    settings = Settings(instance_dir=tmp_path / "instance", database_url=url, model_dir=None,
                        watch_rules=False, secret_key="x").resolved()
    app = create_app(settings, moderator=moderator)
    try:
        r = app.test_client().get("/readyz")
        assert r.status_code == 503
        assert r.get_json()["checks"]["database"] == {"ok": False, "schema": None,
                                                      "expected": migrate.head_revision()}
        migrate.upgrade(url)
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        app.extensions["smsguard.db"].dispose()


# ------------------------------------------------- rules that load but fail their own examples

# A keyword file emptied or deleted still loads (it is valid YAML, or simply absent); only the
# self-test examples of rules/selftest/ notice that the gambling lexicon is gone.
SILENT_DAMAGE = {
    "emptied keyword file": ("keywords/gambling.yaml", b"category: gambling\nrules: []\n"),
    "deleted keyword file": ("keywords/gambling.yaml", None),
}


@pytest.mark.parametrize("damage", SILENT_DAMAGE)
def test_a_reload_that_fails_its_self_tests_keeps_the_rules_in_force(damage, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)  # with selftest/
    pristine = (rules / SILENT_DAMAGE[damage][0]).read_bytes()
    m = Moderator.from_paths(rules, model_dir=None, watch=False)
    settings = Settings(instance_dir=tmp_path / "instance", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                        rules_dir=rules, model_dir=None, watch_rules=False, secret_key="x").resolved()
    migrate.upgrade(settings.database_url)
    app = create_app(settings, moderator=m)
    try:
        version, errors0 = m.ruleset_version, _reload_errors()
        CORRUPTIONS["_damage"] = SILENT_DAMAGE[damage]
        try:
            _corrupt(rules, "_damage")
        finally:
            del CORRUPTIONS["_damage"]
        assert m.reload() is False
        assert m.ruleset_version == version
        assert m.check("澳门百家乐，首充送88").verdict == "reject"  # the gambling lexicon still answers
        error = m.status()["rules"]["last_error"]
        assert "self-test examples fail" in error and "gambling" in error, error
        assert _reload_errors() == errors0 + 1
        client = app.test_client()
        assert "smsguard_rules_reload_failing 1.0" in client.get("/metrics").get_data(as_text=True)
        r = client.get("/readyz")
        body = r.get_json()
        assert r.status_code == 200 and body["checks"]["rules"]["reload_failed"] is True
        assert any("self-test examples fail" in w for w in body["warnings"]), body
        # the files put back: the failure clears in status, /readyz and the metrics
        (rules / SILENT_DAMAGE[damage][0]).write_bytes(pristine)
        m.reload()
        assert m.status()["rules"]["last_error"] is None
        assert "warnings" not in client.get("/readyz").get_json()
        assert "smsguard_rules_reload_failing 0.0" in client.get("/metrics").get_data(as_text=True)
    finally:
        m.close()
        app.extensions["smsguard.db"].dispose()


def test_rules_that_fail_their_self_tests_never_start_and_fail_rules_check(tmp_path):
    from click.testing import CliRunner

    from app.cli import cli

    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    (rules / "keywords" / "gambling.yaml").write_text("category: gambling\nrules: []\n", encoding="utf-8")
    settings = Settings(instance_dir=tmp_path / "instance", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                        rules_dir=rules, model_dir=None, watch_rules=False, secret_key="x").resolved()
    with pytest.raises(StartupError, match="self-test examples fail"):
        create_app(settings)
    r = CliRunner().invoke(cli, ["rules", "check", "--rules-dir", str(rules)])
    assert r.exit_code == 1 and "self-test examples fail" in r.output and "ok:" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def _chattr(flag: str, *paths) -> bool:
    """chattr +i / -i (root on ext4 and the like); False where the file system has no such flag."""
    try:
        return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def test_a_read_only_period_is_not_ready_and_recovers_by_itself(app, tenant, admin, db):
    """Issue 14, item 4: with the database files made immutable for a while, /readyz said ready
    throughout (every pre-send check failed closed meanwhile) and connections stayed broken after
    the files were writable again. /readyz tells the truth, and the same process (its pooled
    connections) serves writes again as soon as the files are writable."""
    from pathlib import Path

    if not db.is_sqlite:
        pytest.skip("file attributes of an SQLite database")
    tid = _serving(db, admin, tenant, "ro-1", "+8613800138003")
    files = [p for p in (Path(f"{db.sqlite_path}{s}") for s in ("", "-wal", "-shm")) if p.exists()]
    if os.geteuid() != 0 or not _chattr("+i", *files):
        pytest.skip("needs root and a file system with the immutable attribute")
    try:
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert "read-only" in ready.get_json()["checks"]["database"]["error"]
        # a write that cannot persist is refused, never acknowledged; pre-send fails by its mode
        assert_problem(admin.post("/v1/complaints", {**COMPLAINT, "external_id": "ro-2"}), 503)
        r = tenant.post("/v1/messages/check", {"template_id": tid, "params": {"code": "123456"},
                                               "phone": "+8613800138001"})
        assert r.status_code == 200 and r.get_json()["forced_by"] == "ACCT_PRESEND_UNAVAILABLE"
    finally:
        _chattr("-i", *files)
    # writable again: ready, and the next writes go through on the same pool, no restart
    assert app.test_client().get("/readyz").status_code == 200
    assert admin.post("/v1/complaints", {**COMPLAINT, "external_id": "ro-3"}).status_code == 201
    r = tenant.post("/v1/messages/check", {"template_id": tid, "params": {"code": "123456"},
                                           "phone": "+8613800138002"})
    assert r.status_code == 200 and r.get_json()["verdict"] == "allow", r.get_json()
    assert admin.post("/v1/complaints", {**COMPLAINT, "external_id": "ro-2"}).status_code == 201
