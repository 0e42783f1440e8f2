"""`smsguard audit`: stream sent logs through the Moderator; findings, summary, report, what-if.

See docs/audit.md."""
from __future__ import annotations

import os
from pathlib import Path

import click

COMMANDS = ("audit",)


def _record_start(inputs, out):
    """An AuditRun row when a database URL is configured (SMSGUARD_DATABASE_URL); the audit
    never depends on it: any database error is a warning."""
    if not os.environ.get("SMSGUARD_DATABASE_URL"):
        return None
    try:
        from app.config import Settings
        from app.store.db import Database
        from app.store.models import AuditRun

        db = Database(Settings.from_env().database_url)
        with db.session() as s:
            run = AuditRun(status="running", inputs=list(inputs), output=str(out), counts={},
                           ruleset_version="", model_version=None)
            s.add(run)
            s.flush()
            run_id = run.id
        return db, run_id
    except Exception as exc:  # pragma: no cover - depends on the database
        click.echo(f"smsguard: warning: audit run not recorded in the database: {str(exc).splitlines()[0]}", err=True)
        return None


def _record_end(rec, status: str, summary=None) -> None:
    if rec is None:
        return
    db, run_id = rec
    try:
        from app.store.models import AuditRun, utcnow

        with db.session() as s:
            run = s.get(AuditRun, run_id)
            run.status = status
            run.finished_at = utcnow()
            if summary is not None:
                run.counts = {"messages": summary.messages, "verdicts": dict(summary.verdicts),
                              "malformed": summary.malformed_count,
                              "categories": {c: sum(v.values()) for c, v in summary.categories.items()}}
                run.ruleset_version = str(summary.meta.get("ruleset_version") or "")[:64]
                mv = summary.meta.get("model_version")
                run.model_version = str(mv)[:64] if mv else None
    except Exception as exc:  # pragma: no cover
        click.echo(f"smsguard: warning: audit run not recorded in the database: {str(exc).splitlines()[0]}", err=True)
    finally:
        db.dispose()


@click.command("audit")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", "out", required=True, metavar="PATH|URL",
              help="findings file (JSON lines), written whole at the end; a directory (or a path ending "
                   "in /) gets findings.jsonl in it; an fsspec URL (s3://...) is written locally and "
                   "uploaded at the end")
@click.option("--report", "report", default=None, metavar="PATH|URL",
              help="also write a self-contained HTML report")
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "csv"]), default="auto", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--id-field", default="id", show_default=True)
@click.option("--account-field", default="account", show_default=True)
@click.option("--time-field", default="sent_at", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="local worker processes (default: CPU count; 0 = in this process)")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="run on this Dask scheduler")
@click.option("--block-size", "block_size", type=click.IntRange(min=1 << 16), default=32 << 20, show_default=True,
              help="Dask: bytes of plain JSON lines per task")
@click.option("--stream-items", "stream_items", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Dask: lines or rows per task of compressed and CSV inputs (read by the client)")
@click.option("--compare-rules", type=click.Path(exists=True, file_okay=False), default=None,
              help="what-if: list the verdicts these rules would change")
@click.option("--compare-model", default=None, metavar="DIR|none", help="what-if: list the verdicts this model would change")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), default=None,
              help="rules directory (default SMSGUARD_RULES_DIR or ./rules)")
@click.option("--model", "model_dir", default=None, metavar="DIR|none",
              help="model directory or none (default SMSGUARD_MODEL_DIR or models/smsguard-zh-en)")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="messages per engine batch and per unit of work (checkpoint granularity)")
@click.option("--no-resume", is_flag=True, help="discard the checkpoint of an interrupted run and start over")
@click.option("--changes-shown", type=click.IntRange(min=0), default=20, show_default=True,
              help="what-if: changed verdicts printed at the end (all are in the .changes.jsonl file)")
@click.option("--with-text", is_flag=True,
              help="findings carry the message text (off by default: sent logs are personal data)")
def audit(inputs, out, report, fmt, text_field, id_field, account_field, time_field, workers, scheduler, block_size,
          stream_items, compare_rules, compare_model, rules_dir, model_dir, batch_size, no_resume, changes_shown,
          with_text) -> None:
    """Audit sent logs (JSON lines or CSV, plain or compressed, local or any fsspec URL):
    one finding per message in --out, a summary at the end, optionally an HTML report.
    An interrupted run resumes where it stopped when started again with the same arguments."""
    from app.audit.compare import changes_path, read_changes
    from app.audit.readers import FieldMap
    from app.audit.remote import is_url
    from app.audit.runner import AuditConfig, AuditError, Interrupted, beside, output_file, run_audit, summary_path

    out = output_file(out)
    report = report if report is None or is_url(report) else Path(report)
    if compare_model is not None and compare_model.strip().lower() != "none" and not Path(compare_model).is_dir():
        raise click.ClickException(f"compare model directory not found: {compare_model}")
    cfg = AuditConfig(
        inputs=list(inputs), out=out, report=report, fmt=fmt,
        fields=FieldMap(text=text_field, id=id_field, account=account_field, time=time_field),
        workers=workers, batch_size=batch_size, rules_dir=rules_dir,
        model_dir=model_dir if model_dir is not None else "default",
        compare_rules=compare_rules, compare_model=compare_model, scheduler=scheduler,
        dask_block_bytes=block_size, dask_stream_items=stream_items, resume=not no_resume, with_text=with_text,
        log=lambda m: click.echo(m, err=True),
    )
    rec = _record_start(inputs, out)
    try:
        summary = run_audit(cfg)
    except AuditError as exc:
        _record_end(rec, "failed")
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        _record_end(rec, "failed")
        click.echo("smsguard: audit interrupted; run the same command again to resume", err=True)
        raise click.exceptions.Exit(130)
    except Interrupted:  # SIGTERM
        _record_end(rec, "failed")
        click.echo("smsguard: audit terminated; run the same command again to resume", err=True)
        raise click.exceptions.Exit(143)
    except Exception:
        _record_end(rec, "failed")
        raise
    _record_end(rec, "done", summary)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"findings: {out}  summary: {beside(out, summary_path)}" + (f"  report: {report}" if report else ""))
    if summary.meta.get("compare"):
        cp = beside(out, changes_path)
        shown = read_changes(cp, changes_shown) if changes_shown and not is_url(out) else []
        for ch in shown:
            b, a = ch["before"], ch["after"]
            text = ch["text"] if len(ch["text"]) <= 60 else ch["text"][:59] + "…"
            click.echo(f"  {ch['id']}: {b['verdict']} {b['categories']} -> {a['verdict']} {a['categories']}  {text}")
        click.echo(f"changes: {cp}")
