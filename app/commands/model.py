"""`smsguard train`, `smsguard evaluate` and `smsguard fit-decision`: the trained classifier's life cycle."""
from __future__ import annotations

from pathlib import Path

import click

from app.config import DEFAULT_MODEL_NAME, PROJECT_ROOT

COMMANDS = ("train", "evaluate", "fit_decision")

_DEFAULT_OUT = PROJECT_ROOT / "models" / DEFAULT_MODEL_NAME


def _progress(it, desc="", unit="it", **kw):
    from tqdm import tqdm
    return tqdm(it, desc=desc, unit=unit, leave=False, dynamic_ncols=True, mininterval=0.5)


@click.command("train")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=_DEFAULT_OUT,
              show_default=True, help="model directory to write")
@click.option("--seed", type=int, default=13, show_default=True, help="seed of the split, folds and solvers")
@click.option("--train-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="shared corpora folder (default ../shared/data/train; env SMSGUARD_TRAIN_DIR)")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the project's own labelled data (default data/; env SMSGUARD_DATA_DIR)")
@click.option("--rules-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="rules folder whose keyword lexicons become the jieba user dictionary")
@click.option("--with-decisions", "with_decisions", is_flag=True,
              help="also train on the labelled examples made by reviewer decisions (smsguard export-training), "
                   "training side only; recorded in the metadata and the model card")
@click.option("--database", "database_url", default=None, metavar="URL",
              help="with --with-decisions: the database to export from (default SMSGUARD_DATABASE_URL)")
@click.option("--decisions-since", "decisions_since", default=None, metavar="DATE",
              help="with --with-decisions: only decisions made at or after this date (default: all)")
def train(out: Path, seed: int, train_dir, data_dir, rules_dir, with_decisions: bool = False,
          database_url: str | None = None, decisions_since: str | None = None) -> None:
    """Train the classifier and write the model, metadata, EVALUATION.md and MODEL_CARD.md."""
    from app.training.evaluate import table_lines
    from app.training.train import train_model

    extra = {}
    if with_decisions:
        extra = _decisions(database_url, decisions_since)
    elif database_url is not None or decisions_since is not None:
        raise click.UsageError("--database and --decisions-since go with --with-decisions")
    meta, report = train_model(out, seed=seed, train_dir=train_dir, data_dir=data_dir, rules_dir=rules_dir,
                       progress=_progress, log=lambda m: click.echo(m, err=True), **extra)
    click.echo(f"model {meta['version']} -> {out}")
    click.echo("thresholds (propose for rules/policy.yaml classifier:):")
    for lab, t in meta["thresholds"].items():
        click.echo(f"  {lab}: {t}")
    for line in table_lines(report):
        click.echo(line)
    click.echo(f"report: {Path(out) / 'EVALUATION.md'}; card: {Path(out) / 'MODEL_CARD.md'}")


def _decisions(database_url: str | None, since_text: str | None) -> dict:
    """train_model's ``decisions`` and ``decisions_info`` from the database (one-line errors)."""
    import datetime as _dt

    from app.training import decisions as dec

    since = None
    if since_text is not None:
        try:
            since = dec.parse_since(since_text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--decisions-since'") from None
    if database_url is None:
        from app.config import Settings

        database_url = Settings.from_env().database_url
    exp = dec.export(database_url, since)
    click.echo(f"decisions: {exp.summary()}", err=True)
    if not exp.rows:
        raise click.ClickException("no reviewer decisions to train with" + (f" since {since_text}" if since_text else ""))
    info = {"since": since.isoformat() if since else None, "counts": exp.counts,
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return {"decisions": exp.rows, "decisions_info": info}


@click.command("evaluate")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=_DEFAULT_OUT, show_default=True, help="model directory")
@click.option("--train-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--engine", "engine", is_flag=True,
              help="also run the full Moderator (keywords + patterns + classifier + policy) on the split")
@click.option("--rules-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=PROJECT_ROOT / "rules", show_default=True, help="rules for --engine")
@click.option("--choose-thresholds", "choose", is_flag=True,
              help="re-choose the thresholds on validation and rewrite metadata.json and MODEL_CARD.md")
@click.option("--exclude-val-of", "exclude_val_of", type=int, default=None, metavar="SEED",
              help="leave out validation rows that the split with this seed also holds out (a clean estimate "
                   "for a model trained with another seed)")
@click.option("--by-source", "by_source", is_flag=True,
              help="leave one source out: for each source, train without it and score it with the full engine "
                   "(ignores --model)")
@click.option("--sources", default=None, metavar="A,B",
              help="with --by-source: the sources to hold out (corpus names such as spam800k, data/FILE, "
                   "or writer:ID for the rows of data/ by one writer; A+B: held out together, one fold); "
                   "default every SMS source")
@click.option("--dump", "dump_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="with --by-source: write every held-out row's probabilities and hits here (JSON lines; "
                   "what `smsguard fit-decision` fits on)")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="with --by-source: write the table as Markdown here")
@click.option("--seed", type=int, default=13, show_default=True, help="with --by-source: seed of the recipe")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="with --by-source: a training recipe setting other than the shipped one (a key of "
                   "app/training/train.py DEFAULTS, e.g. project_weight=6): try a recipe on sources held out "
                   "whole before adopting it; repeatable")
@click.option("--blind", "blind_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="score this labelled set (JSON lines: text, labels, kind, lang) with the full engine and --model")
@click.option("--misses", "misses_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="with --by-source or --blind: write the legitimate rows that were not allowed (and, with --blind, "
                   "the prohibited rows that were) here (JSON lines)")
def evaluate(model_dir: Path, train_dir, data_dir, engine: bool, rules_dir: Path, choose: bool,
             exclude_val_of: int | None, by_source: bool, sources: str | None, report_path: Path | None,
             seed: int, misses_path: Path | None, blind_path: Path | None, dump_path: Path | None,
             settings: tuple[str, ...] = ()) -> None:
    """Evaluate a model on its validation split: per-category P/R/F1, false rejects, confusion.
    With --by-source: leave one source out (what predicts traffic the model never saw)."""
    from app.engine.classifier import ModelMismatchError
    from app.training.evaluate import evaluate_model, table_lines

    if blind_path is not None:
        if by_source or choose or exclude_val_of is not None or engine or dump_path is not None:
            raise click.UsageError("--blind cannot be combined with --by-source, --choose-thresholds, "
                                   "--exclude-val-of, --engine or --dump")
        _blind(blind_path, model_dir, rules_dir, misses_path)
        return
    if by_source:
        if choose or exclude_val_of is not None or engine:
            raise click.UsageError("--by-source cannot be combined with --choose-thresholds, --exclude-val-of or --engine")
        _by_source(rules_dir, train_dir, data_dir, sources, report_path, seed, misses_path, dump_path,
                   _recipe_settings(settings))
        return
    if sources is not None or report_path is not None or misses_path is not None or dump_path is not None:
        raise click.UsageError("--sources, --report, --misses and --dump go with --by-source")
    if settings:
        raise click.UsageError("--set goes with --by-source")
    if choose and exclude_val_of is not None:
        raise click.UsageError("--choose-thresholds cannot be combined with --exclude-val-of")
    try:
        report = evaluate_model(model_dir, train_dir=train_dir, data_dir=data_dir, progress=_progress,
                                log=lambda m: click.echo(m, err=True), engine_rules=rules_dir if engine else None,
                                choose=choose, exclude_val_of=exclude_val_of)
    except ModelMismatchError as exc:
        raise click.ClickException(str(exc)) from None
    for line in table_lines(report):
        click.echo(line)
    click.echo(f"report: {Path(model_dir) / 'EVALUATION.md'}")


def _recipe_settings(settings: tuple[str, ...]) -> dict:
    """``--set KEY=VALUE`` pairs as training overrides, each value of its default's type."""
    from app.training.train import DEFAULTS

    out: dict = {}
    for item in settings:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or key not in DEFAULTS or key == "seed":
            raise click.UsageError(f"--set {item}: expected KEY=VALUE with KEY one of "
                                   f"{', '.join(k for k in DEFAULTS if k != 'seed')} (the seed is --seed)")
        default = DEFAULTS[key]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                value = text.lower() == "true"
            else:
                value = type(default)(text)
        except ValueError:
            kind = {bool: "true or false", int: "a whole number", float: "a number"}[type(default)]
            raise click.UsageError(f"--set {item}: {key} takes {kind} (shipped: {default})") from None
        out[key] = value
    return out


def _by_source(rules_dir: Path, train_dir, data_dir, sources: str | None, report_path: Path | None, seed: int,
               misses_path: Path | None, dump_path: Path | None = None, overrides: dict | None = None) -> None:
    import shlex
    import sys

    from app.training import by_source as bs

    names = None
    if sources is not None:
        names = [x.strip() for x in sources.split(",") if x.strip()]
        if not names:
            raise click.UsageError("--sources: no source named")
    misses: list | None = [] if misses_path is not None else None
    dump: list | None = [] if dump_path is not None else None
    try:
        result = bs.evaluate_by_source(rules_dir, train_dir=train_dir, data_dir=data_dir, sources=names, seed=seed,
                                       progress=_progress, log=lambda m: click.echo(m, err=True), misses=misses,
                                       dump=dump, **(overrides or {}))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for line in bs.table_lines(result):
        click.echo(line)
    try:  # the table is printed first: a path that cannot be written loses no figure
        if misses_path is not None:
            _write_lines(misses_path, misses)
        if dump_path is not None:
            _write_lines(dump_path, dump)
        if report_path is not None:
            command = "smsguard " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            bs.write_report(report_path, result, command)
            click.echo(f"report: {report_path}")
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None


def _write_lines(path: Path, rows: list) -> None:
    """JSON lines to ``path``; an unwritable path is a one-line error."""
    import json

    try:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None


def _blind(path: Path, model_dir: Path, rules_dir: Path, misses_path: Path | None = None) -> None:
    from app.engine.moderator import Moderator
    from app.training import blind

    try:
        rows = blind.read_set(path)
        moderator = Moderator.from_paths(rules_dir, model_dir, watch=False)
    except Exception as exc:  # a broken set, rules or model: one line
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    try:
        result = blind.score_set(moderator, rows)
    finally:
        moderator.close()
    for line in blind.table_lines(result):
        click.echo(line)
    if misses_path is not None:
        _write_lines(misses_path, blind.misses(result))


@click.command("fit-decision")
@click.option("--dump", "dump_paths", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              required=True, help="a dump of `smsguard evaluate --by-source --dump` (repeatable)")
@click.option("--rules-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=PROJECT_ROOT / "rules", show_default=True, help="the policy to fit within")
@click.option("--max-rejected", type=float, default=0.45, show_default=True,
              help="budget: percent of a source's normal messages rejected")
@click.option("--max-flagged", type=float, default=2.0, show_default=True,
              help="budget: percent of a source's normal messages rejected or sent to review")
@click.option("--min-normals", type=int, default=1000, show_default=True,
              help="sources with fewer normal messages are shown but not held to the budgets")
@click.option("--C", "C", type=float, default=1.0, show_default=True, help="inverse L2 strength of the fit")
def fit_decision(dump_paths: tuple[Path, ...], rules_dir: Path, max_rejected: float, max_flagged: float,
                 min_normals: int, C: float) -> None:
    """Fit the second-level decision on held-out signals and choose its thresholds: prints the
    prohibited_head block for rules/policy.yaml and per source the figures it was chosen on."""
    from app.engine.ruleset import RuleError, RuleSetManager
    from app.training import decision_fit as df

    if not (0 <= max_rejected <= 100 and 0 <= max_flagged <= 100) or not C > 0 or min_normals < 1:
        raise click.UsageError("budgets are percents from 0 to 100, C a positive number, --min-normals at least 1")
    try:
        rows = df.load_dump(dump_paths)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        manager = RuleSetManager(rules_dir, watch=False)
    except RuleError as exc:
        raise click.ClickException(f"rules: {exc}") from None
    try:
        policy = manager.current.policy
    finally:
        manager.close()
    click.echo(f"{len(rows)} rows from {len({r['source'] for r in rows})} sources", err=True)
    fitted = df.fit(rows, policy, C=C)
    result = df.choose(rows, policy, fitted, budget_rejected=max_rejected, budget_flagged=max_flagged,
                       min_normals=min_normals, progress=_progress)

    def pct(x):
        return "-" if x is None else f"{x:.2f}%"
    click.echo("| source | normals | rejected | flagged | prohibited | rejected | (policy as it stands: "
               "rejected / flagged / prohibited rejected) |")
    click.echo("|---|---:|---:|---:|---:|---:|---|")
    for s, b in result["baseline"].items():
        f = (result["sources"] or {}).get(s, {})
        click.echo(f"| {s} | {b['normals']} | {pct(f.get('normal_rejected'))} | {pct(f.get('normal_flagged'))} | "
                   f"{b['prohibited']} | {pct(f.get('prohibited_rejected'))} | {pct(b['normal_rejected'])} / "
                   f"{pct(b['normal_flagged'])} / {pct(b['prohibited_rejected'])} |")
    if result["choice"] is None:
        raise click.ClickException(f"no thresholds keep every source within {max_rejected}% rejected and "
                                   f"{max_flagged}% flagged")
    click.echo(f"mean share of prohibited rows rejected: {result['objective']:.2f}% "
               f"(policy as it stands: {result['baseline_objective']:.2f}%)")
    click.echo(df.policy_yaml(fitted, result["choice"]))
