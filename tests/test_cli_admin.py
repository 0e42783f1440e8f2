"""The operations commands: db, keys, accounts, config; errors are one line and non-zero."""
from __future__ import annotations

import json

from app.cli import cli, main


def test_db_upgrade_reports_the_revision(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGUARD_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    r = runner.invoke(cli, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    assert "revision" in r.output
    r = runner.invoke(cli, ["db", "current"])
    head = r.output.split("code head:")[1].strip()
    assert f"database: {head}" in r.output


def test_keys_create_prints_the_pair_once_and_list_never_shows_private(runner):
    r = runner.invoke(cli, ["keys", "create", "--account", "ACME", "--role", "tenant", "--json"])
    assert r.exit_code == 0, r.output
    k = json.loads(r.output)
    assert k["public_key"].startswith("pk_") and k["private_key"].startswith("sk_")
    listed = runner.invoke(cli, ["keys", "list"]).output
    assert k["public_key"] in listed and k["private_key"] not in listed


def test_keys_rotate_and_revoke(runner):
    k = json.loads(runner.invoke(cli, ["keys", "create", "--role", "admin", "--json"]).output)
    new = json.loads(runner.invoke(cli, ["keys", "rotate", k["public_key"], "--json"]).output)
    assert new["public_key"] != k["public_key"] and new["role"] == "admin"
    listed = runner.invoke(cli, ["keys", "list"]).output
    assert "revoked" in [line.split()[3] for line in listed.splitlines() if k["public_key"] in line]
    r = runner.invoke(cli, ["keys", "revoke", new["public_key"]])
    assert r.exit_code == 0 and "revoked" in r.output


def test_cli_errors_are_one_line_and_non_zero(runner, capsys):
    code = main(["keys", "create", "--role", "tenant"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.strip().count("\n") == 0 and "needs an account" in err
    code = main(["keys", "revoke", "pk_nope"])
    assert code != 0 and "no key pk_nope" in capsys.readouterr().err


def test_config_hides_secrets(runner, monkeypatch):
    monkeypatch.setenv("SMSGUARD_DATABASE_URL", "postgresql+psycopg://user:hunter2@db.example:5432/sg")
    out = runner.invoke(cli, ["config"]).output
    assert "hunter2" not in out and "secret_key" not in out
    assert json.loads(out)["bind"] == "127.0.0.1:8000"


def test_a_missing_database_is_one_line_and_is_never_created(tmp_path, monkeypatch, capsys):
    path = tmp_path / "nowhere" / "smsguard.db"
    monkeypatch.setenv("SMSGUARD_DATABASE_URL", f"sqlite:///{path}")
    code = main(["keys", "list"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "smsguard db upgrade" in err and "Traceback" not in err
    assert not path.exists()


def test_a_missing_choice_is_one_line(runner, capsys):
    """Issue 14, item 15: `keys create` without --role printed the choices over four lines."""
    code = main(["keys", "create"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--role" in err and "platform" in err


def test_serve_on_a_busy_port_is_one_line(runner, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = main(["serve", "--bind", f"127.0.0.1:{port}", "--no-upgrade"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err
