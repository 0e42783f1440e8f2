"""Command families of the `smsguard` CLI.

Each module defines click commands or groups and lists them in a module-level ``COMMANDS``
tuple of attribute names; app/cli.py registers them. Errors are raised as
``click.ClickException`` (one line, non-zero exit)."""
