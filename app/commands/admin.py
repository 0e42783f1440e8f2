"""Operations commands: serve, db, keys, accounts, config."""
from __future__ import annotations

import json
import os
import sys

import click

from app.config import Settings


def _db():
    from app.store.db import Database

    return Database(Settings.from_env().database_url)


def _service_errors(fn):
    """Service errors become one-line CLI errors."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from app.services.errors import ServiceError

        try:
            return fn(*a, **kw)
        except ServiceError as exc:
            raise click.ClickException(exc.detail) from None

    return wrapper


@click.command()
@click.option("--bind", help="host:port (default SMSGUARD_BIND or 127.0.0.1:8000)")
@click.option("--workers", type=int, help="worker processes (default SMSGUARD_WORKERS or 2)")
@click.option("--no-upgrade", is_flag=True, help="do not apply database migrations first")
def serve(bind: str | None, workers: int | None, no_upgrade: bool) -> None:
    """Run the service under gunicorn (migrations applied first)."""
    if bind:
        os.environ["SMSGUARD_BIND"] = bind
    if workers:
        os.environ["SMSGUARD_WORKERS"] = str(workers)
    settings = Settings.from_env()
    _check_bind(settings.bind)
    if not no_upgrade:
        from app.store import migrate

        migrate.upgrade(settings.database_url)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    os.execv(gunicorn, [gunicorn, "-c", "python:app.gunicorn_conf", "app.wsgi:app"])


def _check_bind(bind: str) -> None:
    """One line, before gunicorn retries for seconds and prints a stack: is host:port free?"""
    import socket

    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or bind.startswith("unix:"):
        return  # a unix socket or something gunicorn will judge itself
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {bind}: {exc.strerror or exc}") from None


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from app.store import migrate

    url = Settings.from_env().database_url
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current_revision(url)}")


@db.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    from app.store import migrate

    url = Settings.from_env().database_url
    click.echo(f"database: {migrate.current_revision(url) or 'empty'}  code head: {migrate.head_revision()}")


@click.group()
def keys() -> None:
    """API key pairs (public key + private key)."""


@keys.command("create")
@click.option("--account", help="the account the key acts for (created if new; required for tenant)")
@click.option("--role", type=click.Choice(["tenant", "reviewer", "admin", "platform"]), required=True)
@click.option("--label", default="", help="a note: who or what uses this key")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_service_errors
def keys_create(account: str | None, role: str, label: str, as_json: bool) -> None:
    """Create a key pair. The private key is shown this once only."""
    from app.services import keys as svc

    with _db().session() as s:
        k = svc.create(s, account, role, label, actor="cli")
    _print_key(k, as_json)


@keys.command("rotate")
@click.argument("public_key")
@click.option("--json", "as_json", is_flag=True)
@_service_errors
def keys_rotate(public_key: str, as_json: bool) -> None:
    """Replace a key with a new pair (same account and role); the old one is revoked."""
    from app.services import keys as svc

    with _db().session() as s:
        k = svc.rotate(s, public_key, actor="cli")
    _print_key(k, as_json)


@keys.command("revoke")
@click.argument("public_key")
@_service_errors
def keys_revoke(public_key: str) -> None:
    """Revoke a key: its requests get 401 from now on."""
    from app.services import keys as svc

    with _db().session() as s:
        svc.revoke(s, public_key, actor="cli")
    click.echo(f"revoked {public_key}")


@keys.command("list")
@click.option("--account")
def keys_list(account: str | None) -> None:
    """List keys (never the private keys)."""
    from app.services import keys as svc

    with _db().session() as s:
        for k in svc.list_keys(s, account):
            click.echo(f"{k.public_key}  {k.role:8}  {k.account_id or '-':16}  {k.status:8}  "
                       f"created {k.created_at:%Y-%m-%d %H:%M}  {k.label}")


def _print_key(k, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"account": k.account_id, "role": k.role, "public_key": k.public_key,
                               "private_key": k.private_key}))
        return
    click.echo(f"account:     {k.account_id or '-'}\nrole:        {k.role}\n"
               f"public key:  {k.public_key}\nprivate key: {k.private_key}\n"
               "Keep the private key secret: it is not shown again.")


@click.group("accounts")
def accounts_group() -> None:
    """Customer accounts."""


@accounts_group.command("create")
@click.argument("account_id")
@click.option("--name", default="")
@_service_errors
def accounts_create(account_id: str, name: str) -> None:
    """Create an account."""
    from app.services import accounts

    with _db().session() as s:
        accounts.create(s, account_id, name, actor="cli")
    click.echo(f"created account {account_id}")


@accounts_group.command("list")
def accounts_list() -> None:
    """List accounts and their status."""
    from sqlalchemy import select

    from app.store.models import Account

    with _db().session() as s:
        for a in s.scalars(select(Account).order_by(Account.id)):
            click.echo(f"{a.id:20} {a.status:10} {a.name}")


@click.command("config")
def show_config() -> None:
    """Print the settings in force (secrets hidden)."""
    click.echo(json.dumps(Settings.from_env().public(), indent=2))


COMMANDS = ("serve", "db", "keys", "accounts_group", "show_config")
