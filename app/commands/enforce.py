"""`smsguard enforce`: the enforcement sweep (complaint rates -> warn / suspend / terminate) and
the housekeeping of the pre-send counters."""
from __future__ import annotations

import json
import time

import click

from app.config import Settings


@click.command("enforce")
@click.option("--dry-run", is_flag=True, help="show what would change, change nothing")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per account")
@click.option("--keep-counters-days", type=int, default=2, show_default=True,
              help="delete pre-send frequency counters untouched for this many days")
def enforce(dry_run: bool, as_json: bool, keep_counters_days: int) -> None:
    """Evaluate every active or warned account with complaints in the window (rules/policy.yaml
    `enforcement:`) and take the next step where the policy says so. Complaints are evaluated as
    they arrive too; run this from cron after changing the policy or loading complaints in bulk."""
    from sqlalchemy import delete

    from app.services import enforcement
    from app.services.presend import sending_policy
    from app.store.db import Database
    from app.store.models import SendCounter

    settings = Settings.from_env()
    db = Database(settings.database_url)
    policy = sending_policy(settings.rules_dir)
    out = enforcement.sweep(db, policy.enforcement, dry_run=dry_run)
    for account_id, change, r in out:
        if dry_run:
            would = {1: "warned", 2: "suspended", 3: "terminated"}.get(r.level)
            line = (f"{account_id:20} {len(r.complaints)} complaint(s) since {r.since:%Y-%m-%d %H:%M}, "
                    f"{r.volume} allowed, metric {r.metric}: "
                    + (f"would step (level {would})" if would else "would do nothing"))
        elif change is not None:
            line = (f"{account_id:20} {change.from_status} -> {change.to_status} ({change.rule}, "
                    f"{len(change.evidence.get('complaints', []))} complaint(s))")
        else:
            line = f"{account_id:20} no change"
        if as_json:
            line = json.dumps({"account": account_id, "dry_run": dry_run,
                               "to_status": change.to_status if change else None,
                               "rule": change.rule if change else None,
                               "complaints": r.complaints, "allowed_messages": r.volume,
                               "rate_per_million": r.rate, "metric": r.metric, "level": r.level})
        click.echo(line)
    if not dry_run:
        cutoff = int(time.time()) - keep_counters_days * 86400
        with db.session() as s:
            n = s.execute(delete(SendCounter).where(SendCounter.last_at < cutoff)).rowcount
        if not as_json:
            click.echo(f"{len(out)} account(s) evaluated; {n} old frequency counter(s) deleted")
    db.dispose()


COMMANDS = ("enforce",)
