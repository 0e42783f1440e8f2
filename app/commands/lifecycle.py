"""The model's life cycle after training: `smsguard export-training`, `smsguard model compare |
promote | current` (docs/operations.md, "Model lifecycle"; docs/evaluation.md, "Learning from
decisions"). `smsguard train --with-decisions` lives with `train` in app/commands/model.py."""
from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from app.config import PROJECT_ROOT

COMMANDS = ("export_training", "model")

#: exit status of a comparison (or promotion) refused for a regression
REFUSED = 3


def _since(_ctx, param, value):
    if value is None:
        return None
    from app.training.decisions import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _database_url(url: str | None) -> str:
    if url:
        return url
    from app.config import Settings

    return Settings.from_env().database_url


@click.command("export-training")
@click.option("--since", required=True, callback=_since, metavar="DATE",
              help="decisions made at or after this date (YYYY-MM-DD, midnight UTC) or ISO 8601 time")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the JSON lines here (written whole or not at all); default standard output")
@click.option("--database", "database_url", default=None, metavar="URL",
              help="database to read (default SMSGUARD_DATABASE_URL / the instance database)")
def export_training(since: datetime, out: Path | None, database_url: str | None) -> None:
    """Write the labelled examples made by reviewer decisions (templates, signatures, accepted
    feedback) in the ../shared/data line format."""
    from app.training import decisions as dec

    exp = dec.export(_database_url(database_url), since)
    if out is None:
        for r in exp.rows:
            click.echo(json.dumps(r, ensure_ascii=False))
    else:
        try:
            dec.write_jsonl(out, exp.rows)
        except OSError as exc:
            raise click.ClickException(f"cannot write {exc.filename or out}: {exc.strerror}") from None
    click.echo(f"exported {exp.summary()}" + (f" -> {out}" if out else ""), err=True)


@click.group("model")
def model() -> None:
    """Compare trained models and promote one into the running service."""


def _blind_paths(blind: tuple[Path, ...], no_blind: bool) -> list[Path]:
    from app.training.compare import default_blind_sets

    if no_blind:
        return []
    return list(blind) if blind else default_blind_sets()


def _tolerance_options(fn):
    opts = [
        click.option("--recall-tolerance", type=click.FloatRange(0, 1), default=0.01, show_default=True,
                     help="largest drop of a category's recall (absolute) that is not a regression"),
        click.option("--frr-tolerance", type=click.FloatRange(0, 1), default=0.0005, show_default=True,
                     help="largest rise of the normal false-reject rate (absolute) that is not a regression"),
        click.option("--review-tolerance", type=click.FloatRange(0, 1), default=None,
                     help="also gate the normal review rate (largest rise, absolute); default: reported only"),
        click.option("--min-rows", type=click.IntRange(1), default=2, show_default=True,
                     help="a change of fewer rows than this is never a regression (one row of a small category)"),
        click.option("--rules-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                     default=PROJECT_ROOT / "rules", show_default=True, help="rules both models run with"),
        click.option("--train-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                     help="shared corpora (default ../shared/data/train; env SMSGUARD_TRAIN_DIR)"),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="the project's labelled data (default data/; env SMSGUARD_DATA_DIR)"),
        click.option("--blind", "blind", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
                     help="a blind set (repeatable; default every data/blind/*.jsonl)"),
        click.option("--no-blind", is_flag=True, help="do not score blind sets"),
        click.option("--no-validation", is_flag=True, help="do not score the validation split"),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="also write the whole comparison as JSON here"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _progress(it, desc="", unit="it", **kw):
    from tqdm import tqdm
    return tqdm(it, desc=desc, unit=unit, leave=False, dynamic_ncols=True, mininterval=0.5, disable=None)


def _run_compare(old: Path, new: Path, opts: dict) -> dict:
    from app.training.compare import Tolerances, compare_models, table_lines

    tol = Tolerances(recall=opts["recall_tolerance"], frr=opts["frr_tolerance"], review=opts["review_tolerance"],
                     min_rows=opts["min_rows"])
    blind = _blind_paths(opts["blind"], opts["no_blind"])
    if opts["no_validation"] and not blind:
        raise click.UsageError("nothing to compare on: --no-validation and no blind set")
    try:
        result = compare_models(old, new, opts["rules_dir"], train_dir=opts["train_dir"], data_dir=opts["data_dir"],
                                blind=blind, validation=not opts["no_validation"], tol=tol, progress=_progress,
                                log=lambda m: click.echo(m, err=True))
    except Exception as exc:  # a model that does not load, a broken set: one line
        raise click.ClickException(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    for line in table_lines(result):
        click.echo(line)
    if opts["json_path"] is not None:
        _write_json(opts["json_path"], result)
    return result


def _write_json(path: Path, obj) -> None:
    import tempfile

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or path}: {exc.strerror}") from None


@model.command("compare")
@click.argument("old", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_tolerance_options
def compare(old: Path, new: Path, **opts) -> None:
    """Score OLD and NEW with the full engine on the frozen validation split and the blind sets;
    exit 3 ("refused") when NEW makes any category's recall or the normal false-reject rate worse
    beyond the tolerances."""
    result = _run_compare(old, new, opts)
    if not result["ok"]:
        raise click.exceptions.Exit(REFUSED)


def _settings():
    from app.config import Settings

    return Settings.from_env()


def _in_force(settings) -> tuple[Path | None, dict | None]:
    """(the model folder the service runs or will run: the promoted one, else the configured one;
    the pointer's content)."""
    from app import model_pointer
    from app.engine.moderator import read_pointer

    try:
        pointer = read_pointer(model_pointer(settings))
    except ValueError as exc:
        raise click.ClickException(f"the model pointer is unreadable: {exc}") from None
    if pointer:
        return Path(pointer["model_dir"]), pointer
    return settings.model_dir, None


@model.command("promote")
@click.argument("new", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--against", "against", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="compare with this model (default: the model the service runs)")
@click.option("--force", is_flag=True, help="promote without the comparison gate (recorded in the promotion)")
@click.option("--note", default="", help="why (kept in instance/model-history.jsonl)")
@click.option("--wait", "wait_url", default=None, metavar="URL",
              help="then poll URL/readyz until the service answers with NEW in force")
@click.option("--timeout", type=click.FloatRange(0), default=60.0, show_default=True, help="with --wait: seconds")
@_tolerance_options
def promote(new: Path, against: Path | None, force: bool, note: str, wait_url: str | None, timeout: float,
            **opts) -> None:
    """Switch the running service to NEW without a restart: the comparison gate (unless --force),
    then instance/model-current names NEW and every worker switches within a second (a model that
    fails to load is refused and the model in force stays; /readyz says so)."""
    from app import model_pointer
    from app.engine.moderator import ModelSwitchError, accepted_fingerprints, load_checked
    from app.engine.ruleset import load_ruleset

    settings = _settings()
    if settings.model_dir is None:
        raise click.ClickException("the service runs without a model (SMSGUARD_MODEL_DIR=none): nothing to switch")
    new = new.resolve()
    try:  # what the service would check before switching: refuse here, before anything is written
        categories = load_ruleset(opts["rules_dir"]).categories
        loaded = load_checked(new, categories, accepted_fingerprints(settings.model_dir))
    except ModelSwitchError as exc:
        raise click.ClickException(f"not promoted: {exc}") from None
    except Exception as exc:  # the rules themselves
        raise click.ClickException(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    meta = loaded.metadata
    current, pointer = _in_force(settings)
    old = against or current
    comparison = None
    if not force:
        if old is None or not (Path(old) / "metadata.json").exists():
            raise click.ClickException(f"no model to compare with ({old}); name one with --against or use --force")
        result = _run_compare(Path(old), new, opts)
        comparison = {"against": {"dir": str(Path(old).resolve()), "version": result["old"]["version"]},
                      "ok": result["ok"], "regressions": result["regressions"], "tolerances": result["tolerances"],
                      "sets": {k: {"rows": v["new"]["rows"]} for k, v in result["sets"].items()}}
        if not result["ok"]:
            _history(settings, {"at": _now(), "event": "refused", "model_dir": str(new), "version": loaded.version,
                                "comparison": comparison, "note": note, "by": _who()})
            raise click.exceptions.Exit(REFUSED)
    record = {"model_dir": str(new), "version": loaded.version, "model_sha256": meta.get("model_sha256"),
              "promoted_at": _now(), "forced": bool(force), "by": _who(), "note": note,
              "previous": {"dir": str(current) if current else None,
                           "version": (pointer or {}).get("version") or _version_of(current)},
              "comparison": comparison}
    path = model_pointer(settings)
    _write_json(path, record)
    _history(settings, {"at": record["promoted_at"], "event": "promoted", **{k: v for k, v in record.items()
                                                                             if k != "promoted_at"}})
    click.echo(f"promoted {loaded.version} ({new}){' with --force: no comparison' if force else ''}; "
               f"the service switches to it within a second ({path})")
    if wait_url:
        _wait(wait_url, loaded.version, timeout)


def _version_of(d: Path | None) -> str | None:
    if d is None:
        return None
    try:
        return json.loads((Path(d) / "metadata.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _who() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"


def _history(settings, entry: dict) -> None:
    """One line per promotion (or refusal) in instance/model-history.jsonl."""
    path = Path(settings.instance_dir) / "model-history.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None


def _wait(url: str, version: str, timeout: float) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    streak, last = 0, None
    while time.monotonic() < deadline:
        body: dict = {}
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/readyz", timeout=5) as r:
                body = json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:  # 503 (not ready) still names the model
            try:
                body = json.loads(exc.read().decode("utf-8") or "{}")
            except ValueError:
                pass
        except (OSError, ValueError):  # not answering (yet)
            pass
        last = body.get("model_version")
        streak = streak + 1 if last == version and not body.get("model_promoted") else 0
        if streak >= 5:  # several answers in a row (they come from different workers)
            click.echo(f"the service answers with {version} in force")
            return
        time.sleep(0.2)
    raise click.ClickException(f"the service did not switch to {version} within {timeout:g}s (last seen: {last}); "
                               "see /readyz")


@model.command("current")
def current() -> None:
    """The model the service runs (configured, or promoted since) and the last promotions."""
    settings = _settings()
    d, pointer = _in_force(settings)
    click.echo(f"configured: {settings.model_dir} ({_version_of(settings.model_dir)})")
    if pointer:
        click.echo(f"promoted:   {pointer['model_dir']} ({pointer.get('version')}) at {pointer.get('promoted_at')}"
                   f"{' (forced)' if pointer.get('forced') else ''}")
    else:
        click.echo("promoted:   none (the configured model is in force)")
    path = Path(settings.instance_dir) / "model-history.jsonl"
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()[-5:]
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            click.echo(f"  {e.get('at')} {e.get('event')} {e.get('version')}{' forced' if e.get('forced') else ''}")
    sys.stdout.flush()
