"""gunicorn settings that matter to operators (issue 14, item 18)."""
from __future__ import annotations

import importlib
import sys


def test_each_instance_keeps_its_control_socket_in_its_own_folder(tmp_path, monkeypatch):
    from gunicorn.config import Config

    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(tmp_path / "instance-a"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    sys.modules.pop("app.gunicorn_conf", None)
    conf = importlib.import_module("app.gunicorn_conf")
    try:
        assert conf.control_socket == str((tmp_path / "instance-a").resolve() / "gunicorn.ctl")
        assert "control_socket" in Config().settings  # a setting gunicorn knows, not ignored
    finally:
        sys.modules.pop("app.gunicorn_conf", None)
