"""`smsguard train` and `smsguard evaluate`: the trained classifier's life cycle."""
from __future__ import annotations

from pathlib import Path

import click

from app.config import DEFAULT_MODEL_NAME, PROJECT_ROOT

COMMANDS = ("train", "evaluate")

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
def train(out: Path, seed: int, train_dir, data_dir, rules_dir) -> None:
    """Train the classifier and write the model, metadata, EVALUATION.md and MODEL_CARD.md."""
    from app.training.evaluate import table_lines
    from app.training.train import train_model

    meta, report = train_model(out, seed=seed, train_dir=train_dir, data_dir=data_dir, rules_dir=rules_dir,
                       progress=_progress, log=lambda m: click.echo(m, err=True))
    click.echo(f"model {meta['version']} -> {out}")
    click.echo("thresholds (propose for rules/policy.yaml classifier:):")
    for lab, t in meta["thresholds"].items():
        click.echo(f"  {lab}: {t}")
    for line in table_lines(report):
        click.echo(line)
    click.echo(f"report: {Path(out) / 'EVALUATION.md'}; card: {Path(out) / 'MODEL_CARD.md'}")


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
def evaluate(model_dir: Path, train_dir, data_dir, engine: bool, rules_dir: Path, choose: bool,
             exclude_val_of: int | None) -> None:
    """Evaluate a model on its validation split: per-category P/R/F1, false rejects, confusion."""
    from app.engine.classifier import ModelMismatchError
    from app.training.evaluate import evaluate_model, table_lines

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
