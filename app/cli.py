"""The `smsguard` command. Each command family lives in its own module under app/commands/."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from app import commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """smsguard: SMS content compliance."""


def _register() -> None:
    for mod in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        for name in getattr(module, "COMMANDS", ()):
            cli.add_command(getattr(module, name))


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point: click errors become a one-line message and a non-zero exit."""
    try:
        # without standalone mode click returns the code of a click.exceptions.Exit (audit: 130 on
        # Ctrl-C, 143 on SIGTERM) instead of raising it; a command's own return value is None
        code = cli.main(args=argv, prog_name="smsguard", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        # one line, whatever click's own message spreads over (a choice list, a usage hint)
        message = " ".join(exc.format_message().split())
        click.echo(f"smsguard: error: {message}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        from app.store.db import unavailable

        if not unavailable(exc):
            raise
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"smsguard: error: the database cannot be used ({first}); is SMSGUARD_DATABASE_URL right, "
                   "and has `smsguard db upgrade` made its schema?", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
