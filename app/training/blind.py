"""Score a labelled set of messages with the full engine: ``smsguard evaluate --blind FILE``.

For blind sets (data/blind/): messages written by someone who had not read rules/, models/ or
data/, scored once with the engine in force and only then read (docs/evaluation.md). Each line
is JSON with ``text``, ``labels`` ([] normal, ["marketing"] legitimate marketing, or prohibited
categories) and optional ``lang``, ``kind`` (transactional, personal, marketing,
hard_negative, ...), ``scenario`` (fraud.impersonation_authority ...) and ``evasion`` (true when
written to dodge filters). The report counts rejected and sent-to-review messages per kind and
language, for legitimate rows (no prohibited label) and prohibited rows apart; prohibited rows
are also counted per category, per scenario and for the evasive ones.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from app.engine.classifier import PROHIBITED

__all__ = ["read_set", "score_set", "table_lines", "misses"]


def read_set(path: Path) -> list[dict]:
    """The rows of a JSON-lines set; ValueError (naming the line) for a malformed one."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(d, dict) or not isinstance(d.get("text"), str) or not isinstance(d.get("labels", []), list):
                raise ValueError(f"{path}:{n}: expected an object with a text and a labels list")
            rows.append(d)
    if not rows:
        raise ValueError(f"{path}: no messages")
    return rows


def score_set(moderator, rows: list[dict]) -> dict:
    """Per-row verdicts and the counts: {"groups": {(legit|prohibited, kind, lang): counts}, ...}."""
    texts = [r["text"] for r in rows]
    verdicts = [v for i in range(0, len(texts), 500) for v in moderator.check_batch(texts[i:i + 500])]
    prohibited = set(PROHIBITED)
    groups: dict[tuple, dict] = defaultdict(lambda: {"rows": 0, "rejected": 0, "review": 0})
    per_row = []
    for r, v in zip(rows, verdicts):
        cats = sorted(set(r.get("labels") or ()) & prohibited)
        side = "prohibited" if cats else "legitimate"
        kind = str(r.get("kind") or r.get("scenario") or ("marketing" if "marketing" in (r.get("labels") or ()) else "-"))
        lang = str(r.get("lang") or "-")
        kinds = {kind, "all"}
        if cats:  # prohibited rows are also counted per category, per scenario and evasion
            kinds.update(cats)
            if r.get("scenario"):
                kinds.add(str(r["scenario"]))
            if r.get("evasion") is True:
                kinds.add("evasion")
        for k in kinds:
            for key in ((side, k, lang), (side, k, "all")):
                g = groups[key]
                g["rows"] += 1
                g["rejected"] += v.verdict == "reject"
                g["review"] += v.verdict == "review"
        per_row.append({"text": r["text"], "side": side, "kind": kind, "lang": lang, "verdict": v.verdict,
                        "rules": [(h.rule, h.score, h.action, h.evidence) for h in v.reasons]})
    return {"groups": {k: dict(g) for k, g in sorted(groups.items())}, "rows": per_row,
            "ruleset_version": moderator.ruleset_version, "model_version": moderator.model_version}


def misses(result: dict) -> list[dict]:
    """The rows the engine got wrong: legitimate ones not allowed, prohibited ones allowed."""
    return [r for r in result["rows"] if (r["side"] == "legitimate") == (r["verdict"] != "allow")]


def table_lines(result: dict) -> list[str]:
    w = max([16] + [len(kind) + 2 for _side, kind, _lang in result["groups"]])  # scenario ids are long
    lines = [f"{'set':<12}{'kind':<{w}}{'lang':<6}{'rows':>6}{'rejected':>10}{'review':>9}{'flagged':>9}"]
    for (side, kind, lang), g in result["groups"].items():
        n = g["rows"]
        lines.append(f"{side:<12}{kind:<{w}}{lang:<6}{n:>6}{g['rejected'] / n:>10.2%}{g['review'] / n:>9.2%}"
                     f"{(g['rejected'] + g['review']) / n:>9.2%}")
    lines.append(f"ruleset {result['ruleset_version']}, model {result['model_version']}")
    return lines
