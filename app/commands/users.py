"""People who sign in to the reviewer web pages: users create / list / disable / enable / password.

The password is read from a hidden prompt (asked twice) or, with --password-stdin, from the
first line of standard input (for scripts: ``printf '%s\\n' "$PW" | smsguard users create ...``).
It is never echoed, never printed and never logged."""
from __future__ import annotations

import sys

import click

from app.commands.admin import _db, _service_errors


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")


@click.group("users")
def users_group() -> None:
    """Reviewer and admin users of the web pages."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["reviewer", "admin"]), default="reviewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@_service_errors
def users_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user who can sign in to the review pages."""
    from app.services import users

    password = _read_password(password_stdin)
    with _db().session() as s:
        users.create(s, username, password, role, actor="cli")
    click.echo(f"created {role} {username}")


@users_group.command("list")
def users_list() -> None:
    """List users (never their password hashes)."""
    from app.services import users

    with _db().session() as s:
        rows = users.list_users(s)
        if not rows:
            click.echo("no users yet: smsguard users create NAME --role reviewer")
        for u in rows:
            last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
            click.echo(f"{u.username:24} {u.role:9} {'active' if u.active else 'disabled':9} "
                       f"created {u.created_at:%Y-%m-%d %H:%M}  last sign-in {last}")


@users_group.command("disable")
@click.argument("username")
@_service_errors
def users_disable(username: str) -> None:
    """Stop a user from signing in (an open session ends at its next request)."""
    from app.services import users

    with _db().session() as s:
        users.disable(s, username, actor="cli")
    click.echo(f"disabled {username}")


@users_group.command("enable")
@click.argument("username")
@_service_errors
def users_enable(username: str) -> None:
    """Let a disabled user sign in again."""
    from app.services import users

    with _db().session() as s:
        users.enable(s, username, actor="cli")
    click.echo(f"enabled {username}")


@users_group.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@_service_errors
def users_password(username: str, password_stdin: bool) -> None:
    """Set a new password (open sessions of the user end)."""
    from app.services import users

    password = _read_password(password_stdin)
    with _db().session() as s:
        users.set_password(s, username, password, actor="cli")
    click.echo(f"password changed for {username}")


COMMANDS = ("users_group",)
