"""What-if: run the same messages through a second engine (other rules and/or another model)
and list the messages whose verdict would change, with both verdicts.

Each change is one JSON line in ``<findings stem>.changes.jsonl``:

    {"id": ..., "account": ..., "text": "...",
     "before": {"verdict": "allow", "categories": [], "score": 0.0, "rules": []},
     "after":  {"verdict": "reject", "categories": ["gambling"], "score": 10.0, "rules": ["KW_..."]}}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

__all__ = ["changes_path", "diff_verdicts", "read_changes", "describe"]


def changes_path(out: Path) -> Path:
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.changes.jsonl")


def _brief(v) -> dict:
    return {"verdict": v.verdict, "categories": list(v.categories), "score": round(float(v.score), 4),
            "rules": [h.rule for h in v.reasons]}


def diff_verdicts(records: Sequence[Any], before: Sequence[Any], after: Sequence[Any]) -> tuple[list[bytes], list[str]]:
    """(JSON lines of the changed messages, their transitions such as "allow->reject")."""
    from app.audit.work import dumps_line  # work imports this module

    lines: list[bytes] = []
    transitions: list[str] = []
    for rec, a, b in zip(records, before, after):
        if a.verdict == b.verdict:
            continue
        transitions.append(f"{a.verdict}->{b.verdict}")
        lines.append(dumps_line({"id": rec.id, "account": rec.account, "text": rec.text,
                                 "before": _brief(a), "after": _brief(b)}))
    return lines, transitions


def describe(compare_rules: str | None, compare_model: str | None) -> str:
    parts = []
    if compare_rules is not None:
        parts.append(f"rules {compare_rules}")
    if compare_model is not None:
        parts.append(f"model {compare_model}")
    return " + ".join(parts)


def read_changes(path: Path, limit: int | None = None) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line))
            if limit is not None and len(out) >= limit:
                break
    return out
