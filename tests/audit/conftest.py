"""Fixtures for the audit tests: small sent logs written from the project's own example
messages, the shipped rules, and the shipped model when it exists (model none otherwise)."""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

RULES = PROJECT_ROOT / "rules"
_MODEL = PROJECT_ROOT / "models" / "smsguard-zh-en"
MODEL = str(_MODEL) if (_MODEL / "metadata.json").exists() else "none"

# a keyword rule with a reject action: rejected with or without the model
REJECT_TEXT = "澳门百家乐上线，首充送88%彩金，官网 www.example-bet.cc"
NORMAL = [
    "【京东】您的订单已发货，预计明日送达，请保持电话畅通。",
    "您的验证码为482913，5分钟内有效，请勿告知他人。",
    "Your package is out for delivery today between 9:00 and 12:00.",
    "明天下午三点开会，请准时参加。",
]


def sample_texts(n: int = 120) -> list[str]:
    """n messages: the project's labelled examples (prohibited and normal), round-robin by file."""
    files = sorted((PROJECT_ROOT / "data").glob("*.jsonl"))
    per_file = []
    for f in files:
        rows = []
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rows.append(json.loads(line)["text"])
                if len(rows) >= n:
                    break
        per_file.append(rows)
    out = [REJECT_TEXT] + NORMAL
    i = 0
    while len(out) < n and any(per_file):
        for rows in per_file:
            if i < len(rows) and len(out) < n:
                out.append(rows[i])
        i += 1
    return out[:n]


def rows_for(texts: list[str]) -> list[dict]:
    return [{"id": f"m{i:05d}", "account": f"ACCT{i % 7}", "sent_at": f"2026-11-2{i % 3}T{i % 24:02d}:15:00",
             "text": t} for i, t in enumerate(texts)]


def write_jsonl(path: Path, rows: list, gz: bool = False, extra_lines: dict | None = None) -> Path:
    """rows are dicts (JSON-encoded) or str (written verbatim); extra_lines {index: raw line}
    inserts raw lines before row `index`."""
    extra_lines = extra_lines or {}
    buf = io.StringIO()
    for i, r in enumerate(rows):
        if i in extra_lines:
            buf.write(extra_lines[i] + "\n")
        buf.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    data = buf.getvalue().encode("utf-8")
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_csv(path: Path, rows: list[dict], fields=("id", "account", "sent_at", "text")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields)
        for r in rows:
            w.writerow([r.get(f, "") for f in fields])
    return path


def read_findings(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture
def config(tmp_path):
    """AuditConfig factory with the shipped rules and model, in-process by default (fast)."""
    from app.audit import AuditConfig

    def make(inputs, out=None, **kw):
        kw.setdefault("workers", 0)
        kw.setdefault("rules_dir", str(RULES))
        kw.setdefault("model_dir", MODEL)
        kw.setdefault("progress", False)
        kw.setdefault("log", lambda m: None)
        return AuditConfig(inputs=[str(p) for p in inputs], out=out or tmp_path / "findings.jsonl", **kw)

    return make
