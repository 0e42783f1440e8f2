"""Labelled examples made by the reviewers' decisions: ``smsguard export-training`` and the
extra training source of ``smsguard train --with-decisions`` (docs/evaluation.md, "Learning from
decisions").

Every example is one line of the ../shared/data format::

    {"text": "...", "labels": ["gambling"], "lang": "zh", "source": "template", "orig": "template:12:reject"}

Where they come from:

- **templates and signatures** decided by a person (the latest decision on the item whose actor
  is not the system: ``approve``, ``reject``, or ``withdraw`` of an approved item, which counts as
  a rejection). A template's text is its content with every ``${var}`` masked the way the
  review engine reads it (``template_lint.mask``: 验证码${code} -> 验证码482915); a signature's
  is its name. Approved: labels ``[]``, or ``["marketing"]`` for a promotional template.
  Rejected: the prohibited categories of the decision (when the decision row carries
  ``categories``), else those of the stored verdict, plus ``marketing`` for a promotional
  template. A rejection with no prohibited category cannot be labelled: it is skipped and
  counted (``unlabelled``).
- **the training store** (``training_examples`` of app/store/records.py, filled when a
  reviewer accepts feedback; docs/checks.md): its rows as they are (``source`` = its origin,
  ``orig`` = its ref).

Lines are deduplicated on the text: the latest decision wins (``conflicts`` counts texts that
were decided both ways, ``duplicates`` the repeats). ``--since`` keeps the decisions made at or
after that time (a date is midnight UTC).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Iterable

from app.engine.classifier import INFORMATIONAL, LABELS

#: the source every exported example takes in training (one extra source, training side only)
SOURCE = "decisions"
PROHIBITED_IDS = frozenset(c for c in LABELS if c not in INFORMATIONAL)


@dataclass
class Export:
    """The exported lines (oldest decision first) and what was counted on the way."""

    rows: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {
        "templates": 0, "signatures": 0, "training_examples": 0, "unlabelled": 0, "duplicates": 0,
        "conflicts": 0})

    def summary(self) -> str:
        c = self.counts
        labels: dict[str, int] = {}
        for r in self.rows:
            for lab in r["labels"] or ["normal"]:
                labels[lab] = labels.get(lab, 0) + 1
        labs = ", ".join(f"{k} {v}" for k, v in sorted(labels.items())) or "none"
        return (f"{len(self.rows)} examples ({labs}) from {c['templates']} templates, {c['signatures']} signatures "
                f"and {c['training_examples']} training-store rows; skipped {c['unlabelled']} rejections without "
                f"a category, {c['duplicates']} duplicates ({c['conflicts']} decided both ways: the latest kept)")


def parse_since(value: str) -> datetime:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time (naive = UTC) -> an aware datetime.
    ValueError with a one-line message otherwise."""
    v = (value or "").strip()
    try:
        if len(v) == 10:
            d = date.fromisoformat(v)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _aware(t: datetime | None) -> datetime:
    if t is None:
        return datetime.min.replace(tzinfo=UTC)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _lang(text: str) -> str:
    from app.training.dataset import _guess_lang

    return _guess_lang(text)


def _categories(value: Any) -> list[str]:
    """Taxonomy ids of a list, or of a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",")]
    return [str(v).strip() for v in value if isinstance(v, str) and str(v).strip()]


def _labels_for(kind: str, item, decision) -> list[str] | None:
    """The labels of one decided item; None when a rejection cannot be labelled."""
    promotional = kind == "template" and getattr(item, "type", None) == "promotional"
    if decision.decision == "approve":
        return ["marketing"] if promotional else []
    cats = [c for c in _categories(getattr(decision, "categories", None)) if c in PROHIBITED_IDS]
    if not cats:
        cats = [c for c in _categories((item.verdict or {}).get("categories")) if c in PROHIBITED_IDS]
    if not cats:
        return None
    labels = set(cats) | ({"marketing"} if promotional else set())
    return [lab for lab in LABELS if lab in labels]


def _review_examples(session, since: datetime | None, counts: dict, rules=None) -> list[tuple[datetime, int, dict]]:
    from sqlalchemy import select

    from app.engine import template_lint as tl
    from app.store.models import ReviewDecision, Signature, Template

    q = select(ReviewDecision).where(ReviewDecision.decision.in_(("approve", "reject", "withdraw")),
                                     ~ReviewDecision.actor.startswith("system"))
    if since is not None:
        q = q.where(ReviewDecision.created_at >= since)
    latest: dict[tuple[str, int], Any] = {}
    for d in session.scalars(q.order_by(ReviewDecision.created_at, ReviewDecision.id)):
        latest[(d.subject_type, d.subject_id)] = d
    models = {"template": Template, "signature": Signature}
    items: dict[str, dict[int, Any]] = {}
    for kind, model in models.items():
        ids = [i for (k, i) in latest if k == kind]
        items[kind] = {}
        for chunk in range(0, len(ids), 500):
            for it in session.scalars(select(model).where(model.id.in_(ids[chunk:chunk + 500]))):
                items[kind][it.id] = it
    rules = rules or (tl.load() if any(k == "template" for k, _ in latest) else None)
    out = []
    for (kind, item_id), d in latest.items():
        item = items.get(kind, {}).get(item_id)
        if item is None:
            continue
        labels = _labels_for(kind, item, d)
        if labels is None:
            counts["unlabelled"] += 1
            continue
        if kind == "template":
            text = tl.mask(item.content, item.variables or {}, item.region or "cn", rules).text
            orig = f"template:{item.id}:{item.type}:{d.decision}"
        else:
            text = item.name
            orig = f"signature:{item.id}:{d.decision}"
        if not text or not text.strip():
            continue
        counts["templates" if kind == "template" else "signatures"] += 1
        out.append((_aware(d.created_at), d.id,
                    {"text": text, "labels": labels, "lang": _lang(text), "source": kind, "orig": orig}))
    return out


def _store_examples(session, since: datetime | None, counts: dict) -> list[tuple[datetime, int, dict]]:
    """Rows of the training store (``training_examples``; absent before migration 0006)."""
    import sqlalchemy as sa

    bind = session.get_bind()
    if not sa.inspect(bind).has_table("training_examples"):
        return []
    try:
        from app.store.records import TrainingExample
    except ImportError:  # pragma: no cover - the table without its model
        return []
    q = sa.select(TrainingExample)
    if since is not None:
        q = q.where(TrainingExample.decided_at >= since)
    out = []
    for r in session.scalars(q.order_by(TrainingExample.decided_at, TrainingExample.id)):
        text = r.text or ""
        labels = _categories(r.labels)
        if not text.strip() or any(lab not in LABELS for lab in labels):
            counts["unlabelled"] += 1
            continue
        counts["training_examples"] += 1
        out.append((_aware(r.decided_at), r.id,
                    {"text": text, "labels": [lab for lab in LABELS if lab in set(labels)],
                     "lang": r.lang or _lang(text), "source": r.origin or "feedback", "orig": r.ref or f"training:{r.id}"}))
    return out


def collect(session, since: datetime | None = None, rules=None) -> Export:
    """Every labelled example made by reviewer decisions at or after ``since`` (see the module
    doc), deduplicated on the text, the latest decision winning."""
    exp = Export()
    found = _review_examples(session, since, exp.counts, rules) + _store_examples(session, since, exp.counts)
    found.sort(key=lambda x: (x[0], x[2]["source"], x[1]))
    by_text: dict[str, dict] = {}
    for _at, _id, row in found:
        prev = by_text.pop(row["text"], None)  # re-inserted: the dict keeps the latest order
        if prev is not None:
            exp.counts["duplicates"] += 1
            if prev["labels"] != row["labels"]:
                exp.counts["conflicts"] += 1
        by_text[row["text"]] = row
    exp.rows = list(by_text.values())
    return exp


def export(database_url: str, since: datetime | None = None) -> Export:
    """``collect`` over a database URL."""
    from app.store.db import Database

    db = Database(database_url)
    try:
        with db.session() as s:
            return collect(s, since)
    finally:
        db.dispose()


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """JSON lines to ``path`` through a temporary file in the same folder and one rename: the
    file is complete or absent, never partial."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def lines_sha256(rows: Iterable[dict]) -> str:
    import hashlib

    h = hashlib.sha256()
    for r in rows:
        h.update((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
    return h.hexdigest()


def to_rows(lines: Iterable[dict], normalizer) -> list:
    """Exported lines -> training ``Row``s of source ``decisions`` (normalized; the line's own
    source is kept in ``meta["origin"]``)."""
    from app.training.dataset import Row

    out = []
    for d in lines:
        labels = tuple(sorted({str(x) for x in d.get("labels") or () if x in LABELS}))
        r = Row(text=d["text"], labels=labels, lang=d.get("lang") or _lang(d["text"]), source=SOURCE,
                orig=str(d.get("orig", "")), file="(database) reviewer decisions")
        r.meta["decisions"] = True
        r.meta["origin"] = d.get("source")
        r.norm = normalizer(r.text)
        out.append(r)
    return out


def near_duplicates_of(keys: list[str], ref_keys: list[str], threshold: float = 0.6, seed: int = 13):
    """Boolean per key: is it an exact or near-duplicate (MinHash estimated Jaccard >=
    ``threshold``, the method of app/training/split.py) of any of ``ref_keys``?"""
    import numpy as np

    from app.training.split import BANDS, _band_hashes, _runs, minhash_signatures

    out = np.zeros(len(keys), dtype=bool)
    if not keys or not ref_keys:
        return out
    ref_set = set(ref_keys)
    for i, k in enumerate(keys):
        out[i] = k in ref_set
    allk = list(keys) + list(ref_keys)
    sig = minhash_signatures(allk, seed=seed)
    bands = _band_hashes(sig)
    n = len(keys)
    for b in range(BANDS):
        for members in _runs(bands[:, b]):
            new = members[members < n]
            ref = members[members >= n]
            new = new[~out[new]]
            if len(new) == 0 or len(ref) == 0:
                continue
            step = max(1, 200_000 // len(ref))  # bounded memory on a crowded band
            for c in range(0, len(new), step):
                part = new[c:c + step]
                sim = (sig[part][:, None, :] == sig[ref][None, :, :]).mean(axis=2)
                out[part[(sim >= threshold).any(axis=1)]] = True
    return out
