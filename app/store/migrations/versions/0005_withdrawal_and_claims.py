"""reviewer workbench (issue 15): withdrawn status, review claims, the queue's columns

- ``signatures.status`` and ``templates.status`` may be ``withdrawn`` (an approved item taken
  back by a reviewer); a CHECK constraint now holds the allowed statuses (before, only the code
  did: ``REVIEW_STATUSES`` in app/store/models.py);
- ``review_claims``: which reviewer works on which pending item, until when (shared by every
  worker and machine);
- ``engine_verdict``, ``engine_score``, ``engine_categories``, ``risk`` and ``dup_key`` on both
  tables, derived from the stored verdict and text so that the queue sorts by risk, filters,
  groups identical submissions and pages in SQL. Existing rows are filled here, the same way
  ``app.store.models.review_index`` fills new ones (the code is repeated below on purpose: a
  migration must not change when the application code does).

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import hashlib
import json

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATUSES = ("pending", "approved", "rejected", "withdrawn")
STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"
INFORMATIONAL = frozenset({"marketing"})
BATCH = 500


def _risk(v: dict) -> int:
    outcome = v.get("verdict")
    if outcome == "reject":
        return 3
    if outcome == "review":
        return 2 if set(v.get("categories") or ()) - INFORMATIONAL else 1
    return 0


def _dup_key(kind: str, text, label, variables=None, region=None) -> str:
    doc = [kind, label or "", text or "", variables or {}, region or ""]
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _json(value):
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _index(kind: str, row) -> dict:
    v = _json(row.verdict) or {}
    if not isinstance(v, dict):
        v = {}
    cats = [str(c) for c in v.get("categories") or ()]
    try:
        score = float(v.get("score") or 0.0)
    except (TypeError, ValueError):
        score = 0.0
    if kind == "signature":
        key = _dup_key("signature", row.name, "signature")
    else:
        key = _dup_key("template", row.content, row.type, _json(row.variables) or {}, row.region)
    return {"engine_verdict": v.get("verdict"), "engine_score": score,
            "engine_categories": ("," + ",".join(cats) + ",") if cats else "",
            "risk": _risk(v), "dup_key": key}


def _backfill(kind: str) -> None:
    conn = op.get_bind()
    table = sa.table(
        f"{kind}s", sa.column("id", sa.Integer), sa.column("verdict", sa.JSON),
        *( (sa.column("name", sa.String),) if kind == "signature" else
           (sa.column("content", sa.Text), sa.column("type", sa.String), sa.column("variables", sa.JSON),
            sa.column("region", sa.String)) ),
        sa.column("engine_verdict", sa.String), sa.column("engine_score", sa.Float),
        sa.column("engine_categories", sa.Text), sa.column("risk", sa.Integer),
        sa.column("dup_key", sa.String))
    cols = [table.c.id, table.c.verdict] + (
        [table.c.name] if kind == "signature" else
        [table.c.content, table.c.type, table.c.variables, table.c.region])
    last = 0
    while True:
        rows = conn.execute(sa.select(*cols).where(table.c.id > last).order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            break
        for row in rows:
            conn.execute(table.update().where(table.c.id == row.id).values(**_index(kind, row)))
        last = rows[-1].id


def _add_columns(kind: str) -> None:
    with op.batch_alter_table(f"{kind}s", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engine_verdict", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("engine_score", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("engine_categories", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("risk", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("dup_key", sa.String(length=64), server_default="", nullable=False))
    _backfill(kind)
    with op.batch_alter_table(f"{kind}s", schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{kind}s_dup_key"), ["dup_key"], unique=False)
        batch_op.create_check_constraint(op.f(f"ck_{kind}s_status"), sa.text(STATUS_CHECK))


def upgrade() -> None:
    op.create_table(
        "review_claims",
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_type", "subject_id", name=op.f("pk_review_claims")),
    )
    with op.batch_alter_table("review_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_claims_actor"), ["actor"], unique=False)
    _add_columns("signature")
    _add_columns("template")


def downgrade() -> None:
    # withdrawn items stay withdrawn: older code treats any status but approved as not sendable
    for kind in ("template", "signature"):
        with op.batch_alter_table(f"{kind}s", schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{kind}s_status"), type_="check")
            batch_op.drop_index(batch_op.f(f"ix_{kind}s_dup_key"))
            batch_op.drop_column("dup_key")
            batch_op.drop_column("risk")
            batch_op.drop_column("engine_categories")
            batch_op.drop_column("engine_score")
            batch_op.drop_column("engine_verdict")
    with op.batch_alter_table("review_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_claims_actor"))
    op.drop_table("review_claims")
