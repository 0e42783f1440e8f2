"""smsguard users create / list / disable: the password is never echoed, stored hashed."""
from __future__ import annotations

from sqlalchemy import select

from app.cli import cli
from app.store.models import Event, User

PW = "a long enough password"


def test_create_with_password_stdin_and_list(runner, db):
    r = runner.invoke(cli, ["users", "create", "rita", "--role", "reviewer", "--password-stdin"], input=PW + "\n")
    assert r.exit_code == 0, r.output
    assert "created reviewer rita" in r.output and PW not in r.output
    with db.session() as s:
        u = s.scalar(select(User).where(User.username == "rita"))
        assert u.password_hash.startswith("$argon2id$") and PW not in u.password_hash
        ev = s.scalar(select(Event).where(Event.kind == "user.created"))
        assert PW not in str(ev.data)
    listed = runner.invoke(cli, ["users", "list"]).output
    assert "rita" in listed and "reviewer" in listed and "active" in listed and "$argon2" not in listed


def test_create_with_a_hidden_prompt(runner):
    r = runner.invoke(cli, ["users", "create", "ada", "--role", "admin"], input=f"{PW}\n{PW}\n")
    assert r.exit_code == 0, r.output
    assert PW not in r.output and "created admin ada" in r.output


def test_prompt_mismatch_and_short_password(runner):
    r = runner.invoke(cli, ["users", "create", "bob"], input=f"{PW}\nsomething else\n{PW}\n{PW}\n")
    assert r.exit_code == 0 and PW not in r.output  # asked again after the mismatch
    r = runner.invoke(cli, ["users", "create", "eve", "--password-stdin"], input="short\n")
    assert r.exit_code != 0 and "at least" in r.output and "short" not in r.output.replace("at least", "")


def test_duplicate_bad_role_and_disable(runner, app):
    runner.invoke(cli, ["users", "create", "rita", "--password-stdin"], input=PW + "\n")
    r = runner.invoke(cli, ["users", "create", "rita", "--password-stdin"], input=PW + "\n")
    assert r.exit_code != 0 and "already exists" in r.output
    r = runner.invoke(cli, ["users", "create", "tom", "--role", "tenant", "--password-stdin"], input=PW + "\n")
    assert r.exit_code != 0
    assert runner.invoke(cli, ["users", "disable", "rita"]).exit_code == 0
    assert "disabled" in runner.invoke(cli, ["users", "list"]).output
    assert runner.invoke(cli, ["users", "disable", "nobody"]).exit_code != 0
    # a disabled user cannot sign in
    c = app.test_client()
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "rita", "password": PW, "csrf_token": token})
    assert r.status_code == 401
    assert runner.invoke(cli, ["users", "enable", "rita"]).exit_code == 0
    r = c.post("/login", data={"username": "rita", "password": PW, "csrf_token": token})
    assert r.status_code == 302
