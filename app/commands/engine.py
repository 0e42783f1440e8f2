"""`smsguard check` and `smsguard rules check|test|version`: the content engine from the shell."""
from __future__ import annotations

import json
from pathlib import Path

import click

COMMANDS = ("check", "rules")


def _settings():
    from app.config import Settings

    return Settings.from_env()


def _rules_dir(rules_dir: str | None) -> Path:
    return Path(rules_dir) if rules_dir else Path(_settings().rules_dir)


def _load_lists(account: str, lists_file: str | None):
    """An account's custom lists: from --lists FILE (YAML/JSON with block, review, allow), else
    from the service's database (the lists managed through /v1/accounts/<id>/lists)."""
    from app.engine.keywords import CustomLists

    if lists_file:
        import yaml

        try:
            doc = yaml.safe_load(Path(lists_file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise click.ClickException(f"{lists_file}: {str(exc).splitlines()[0]}")
        if not isinstance(doc, dict):
            raise click.ClickException(f"{lists_file}: expected a mapping with block, review, allow")

        def pairs(items):
            out = []
            for it in items or []:
                if isinstance(it, dict):
                    out.append((str(it["term"]), it.get("category")))
                else:
                    out.append((str(it), None))
            return out

        return CustomLists(account=account, version=f"file:{Path(lists_file).stat().st_mtime_ns}",
                           block=pairs(doc.get("block")), review=pairs(doc.get("review")),
                           allow=[str(a) for a in doc.get("allow") or []])
    from app.services.moderation import AccountListCache
    from app.store.db import Database

    return AccountListCache(Database(_settings().database_url)).get(account)


def _print_verdict(v) -> None:
    head = f"{v.verdict.upper()}  score={v.score:g}"
    if v.categories:
        head += f"  categories={','.join(v.categories)}"
    if v.subcategories:
        head += f"  subcategories={','.join(v.subcategories)}"
    if v.forced_by:
        head += f"  forced_by={v.forced_by}"
    click.echo(head)
    for h in v.reasons:
        line = f"  {h.rule:<28} {h.category or '-':<18} {h.detector:<10} {h.score:>6g}"
        if h.action:
            line += f" [{h.action}]"
        if h.evidence is not None:
            line += f"  {h.evidence!r} {list(h.span) if h.span else ''}"
        if h.subcategory:
            line += f"  ({h.subcategory})"
        if h.words:
            line += f"  words={','.join(h.words)}"
        click.echo(line)
        for group, evidence, span in h.parts or ():
            click.echo(f"      {group}: {evidence!r} {list(span)}")
    click.echo(f"  ruleset {v.ruleset_version}  model {v.model_version or '-'}")


@click.command("check")
@click.argument("text")
@click.option("--account", "-a", help="apply this account's custom block/review/allow lists")
@click.option("--lists", "lists_file", type=click.Path(exists=True, dir_okay=False),
              help="the account's lists as YAML/JSON (block, review, allow)")
@click.option("--json", "as_json", is_flag=True, help="print the Verdict JSON")
@click.option("--rules-dir", type=click.Path(file_okay=False), help="default: SMSGUARD_RULES_DIR or rules/")
@click.option("--model-dir", type=click.Path(file_okay=False), help="default: SMSGUARD_MODEL_DIR when it exists")
@click.option("--no-model", is_flag=True, help="keywords, patterns and policy only")
def check(text, account, lists_file, as_json, rules_dir, model_dir, no_model):
    """Check TEXT and print the Verdict (allow / review / reject, with every reason)."""
    from app.engine.moderator import Moderator
    from app.engine.ruleset import RuleError

    if lists_file and not account:
        raise click.ClickException("--lists needs --account")
    settings = _settings()
    rules = Path(rules_dir) if rules_dir else Path(settings.rules_dir)
    mdir = None
    require = False
    if not no_model:
        if model_dir:
            mdir, require = Path(model_dir), True
        elif settings.model_dir is not None and Path(settings.model_dir).is_dir():
            mdir = Path(settings.model_dir)
    try:
        m = Moderator.from_paths(rules, model_dir=mdir, watch=False, require_model=require)
    except RuleError as exc:
        raise click.ClickException(str(exc))
    except Exception as exc:
        raise click.ClickException(f"cannot load the model from {mdir}: {exc}")
    try:
        lists = _load_lists(account, lists_file) if account else None
        v = m.check(text, account_lists=lists)
    finally:
        m.close()
    if as_json:
        click.echo(json.dumps(v.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_verdict(v)


@click.group("rules")
def rules() -> None:
    """Validate and self-test the rule files under rules/."""


@rules.command("check")
@click.option("--rules-dir", type=click.Path(file_okay=False), help="default: SMSGUARD_RULES_DIR or rules/")
def rules_check(rules_dir):
    """Load and validate every rule file and run its self-test examples (the same gate a reload
    passes); one-line error and exit 1 on a broken file or a failing example."""
    from app.engine.moderator import selftest_gate
    from app.engine.ruleset import RuleError, load_ruleset, load_selftests

    d = _rules_dir(rules_dir)
    try:
        rs = load_ruleset(d)
        cases = load_selftests(d, rs.categories)
        failure = selftest_gate(rs, cases)
    except RuleError as exc:
        raise click.ClickException(str(exc))
    if failure:
        raise click.ClickException(f"{d}: {failure}; `smsguard rules test --failures-only` lists them")
    s = rs.summary()
    click.echo(f"ok: {d} version {rs.version}: {s['keyword_rules']} keyword rules, {s['terms']} terms "
               f"({s['automaton_keys']} automaton keys, {s['pinyin_keys']} pinyin keys), "
               f"{s['allow_phrases']} allow phrases, {s['pattern_rules']} patterns, "
               f"{len(cases)} self-test examples passed, built in {s['build_seconds']:.2f}s")
    for w in rs.warnings:
        click.echo(f"warning: {w}", err=True)


@rules.command("test")
@click.option("--rules-dir", type=click.Path(file_okay=False), help="default: SMSGUARD_RULES_DIR or rules/")
@click.option("--failures-only", "-f", is_flag=True, help="print only the failing examples")
def rules_test(rules_dir, failures_only):
    """Run the must-match / must-not-match examples of rules/selftest/ (exit 1 on a failure)."""
    from app.engine.moderator import Moderator, run_selftests
    from app.engine.ruleset import RuleError

    d = _rules_dir(rules_dir)
    try:
        m = Moderator.from_paths(d, watch=False, selftest=False)  # list the failures, not refuse
    except RuleError as exc:
        raise click.ClickException(str(exc))
    try:
        results = run_selftests(m)
    except RuleError as exc:
        raise click.ClickException(str(exc))
    finally:
        m.close()
    failed = [r for r in results if not r.ok]
    for r in results:
        if r.ok and failures_only:
            continue
        click.echo(r.message)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise click.ClickException(f"{len(failed)} self-test example(s) failed")


@rules.command("version")
@click.option("--rules-dir", type=click.Path(file_okay=False))
def rules_version(rules_dir):
    """Print the ruleset_version of the rule files."""
    from app.engine.ruleset import RuleError, load_ruleset

    try:
        click.echo(load_ruleset(_rules_dir(rules_dir)).version)
    except RuleError as exc:
        raise click.ClickException(str(exc))
