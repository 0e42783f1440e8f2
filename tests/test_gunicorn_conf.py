"""gunicorn settings that matter to operators (issue 14, item 18)."""
from __future__ import annotations

import contextlib
import importlib
import sys


@contextlib.contextmanager
def gunicorn_conf(tmp_path, monkeypatch, **env):
    """app.gunicorn_conf freshly imported with its instance folder in tmp_path and ``env`` set
    (None unsets a variable); dropped from sys.modules afterwards."""
    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    for k, v in env.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    sys.modules.pop("app.gunicorn_conf", None)
    try:
        yield importlib.import_module("app.gunicorn_conf")
    finally:
        sys.modules.pop("app.gunicorn_conf", None)


def test_each_instance_keeps_its_control_socket_in_its_own_folder(tmp_path, monkeypatch):
    from gunicorn.config import Config

    with gunicorn_conf(tmp_path, monkeypatch) as conf:
        assert conf.control_socket == str((tmp_path / "instance").resolve() / "gunicorn.ctl")
        assert "control_socket" in Config().settings  # a setting gunicorn knows, not ignored


def test_requests_are_parsed_by_the_c_parser(tmp_path, monkeypatch):
    """gunicorn parses requests with gunicorn_h1c (a dependency), not its slower Python parser:
    a broken or missing extension would only show as a slower service, so it is checked here."""
    from gunicorn.config import Config
    from gunicorn.http import message

    with gunicorn_conf(tmp_path, monkeypatch) as conf:
        cfg = Config()
        cfg.set("http_parser", conf.http_parser)
        assert message._check_fast_parser(cfg) is True
        cfg.set("http_parser", "python")
        assert message._check_fast_parser(cfg) is False  # the check can tell the two apart


def test_threads_per_worker_follow_the_database_unless_set(tmp_path, monkeypatch):
    """One thread per worker on SQLite (all writes share one lock), two on PostgreSQL (a second
    thread overlaps network round trips); SMSGUARD_THREADS wins over both."""
    def threads(url: str | None, env: str | None = None) -> int:
        with gunicorn_conf(tmp_path, monkeypatch, SMSGUARD_DATABASE_URL=url, SMSGUARD_THREADS=env) as conf:
            return conf.threads

    assert threads(None) == 1  # the embedded SQLite of the quick start
    assert threads(f"sqlite:///{tmp_path / 'x.db'}") == 1
    assert threads("postgresql://u:p@db.example/smsguard") == 2
    assert threads("postgresql://u:p@db.example/smsguard", env="4") == 4
    assert threads(None, env="3") == 3


def test_the_loaded_app_is_frozen_out_of_garbage_collection_before_the_fork(tmp_path, monkeypatch):
    """when_ready (master, app loaded, no worker forked yet) freezes every object: a full
    collection in a worker then skips the engine's hundreds of thousands of objects."""
    import gc

    loaded = [{"term": i} for i in range(10_000)]  # stands in for the loaded app
    with gunicorn_conf(tmp_path, monkeypatch) as conf:
        try:
            assert gc.get_freeze_count() == 0
            conf.when_ready(server=None)
            assert gc.get_freeze_count() >= len(loaded)
        finally:
            gc.unfreeze()
