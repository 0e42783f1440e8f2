"""`smsguard prune`: delete check records past their retention (SMSGUARD_CHECK_RETENTION_DAYS)."""
from __future__ import annotations

import json

import click

from app.config import Settings


@click.command("prune")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="keep this many days (default: SMSGUARD_CHECK_RETENTION_DAYS)")
@click.option("--batch", type=click.IntRange(10, 100_000), default=1000, show_default=True,
              help="records deleted per transaction")
@click.option("--pause-ms", type=click.IntRange(0, 10_000), default=20, show_default=True,
              help="pause between transactions (lets the service's writers in)")
@click.option("--dry-run", is_flag=True, help="count what would be deleted, delete nothing")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def prune(days: int | None, batch: int, pause_ms: int, dry_run: bool, as_json: bool) -> None:
    """Delete check records (and their labels and hourly counts) older than the retention, in
    short transactions: safe while the service runs. Feedback and training examples are kept
    (feedback keeps its own copy of the text). Run it daily from cron."""
    from app.services import checks
    from app.store.db import Database

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    keep = days or settings.check_retention_days
    db = Database(settings.database_url)
    try:
        res = checks.prune(db, keep, batch=batch, pause_s=pause_ms / 1000, dry_run=dry_run)
    except Exception as exc:
        from app.store.db import unavailable

        if unavailable(exc):
            raise
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"prune failed: {type(exc).__name__}: {first}") from None
    finally:
        db.dispose()
    cut = res.cutoff.strftime("%Y-%m-%d %H:%M UTC")
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "retention_days": keep, "cutoff": res.cutoff.isoformat(),
                               "records": res.records, "stats_rows": res.stats_rows, "batches": res.batches,
                               "seconds": round(res.seconds, 3)}))
    elif dry_run:
        click.echo(f"would delete {res.records:,} check record(s) and {res.stats_rows:,} hourly count row(s) "
                   f"older than {cut} (retention {keep} days)")
    else:
        click.echo(f"deleted {res.records:,} check record(s) in {res.batches} batch(es) and {res.stats_rows:,} "
                   f"hourly count row(s) older than {cut} (retention {keep} days) in {res.seconds:.1f} s")


COMMANDS = ("prune",)
