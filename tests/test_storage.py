"""Storage on SQLite and (when configured) PostgreSQL: migrations, models, the event log."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.services import accounts, events, keys
from app.store import migrate
from app.store.db import Database
from app.store.models import (
    Account,
    AccountStateChange,
    Complaint,
    Event,
    OptOut,
    ReviewDecision,
    Signature,
    Template,
)

TABLES = {"accounts", "api_keys", "request_nonces", "users", "signatures", "templates",
          "review_decisions", "complaints", "opt_outs", "account_state_changes", "daily_volumes",
          "custom_terms", "audit_runs", "events", "alembic_version"}


def test_migrations_build_the_schema_from_an_empty_database(db_url):
    assert migrate.current_revision(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    tables = set(sa.inspect(sa.create_engine(db_url)).get_table_names())
    assert TABLES <= tables


def test_migrations_downgrade_to_empty_and_back(migrated_url):
    migrate.downgrade(migrated_url, "base")
    assert migrate.current_revision(migrated_url) is None
    assert "accounts" not in sa.inspect(sa.create_engine(migrated_url)).get_table_names()
    migrate.upgrade(migrated_url)
    assert migrate.current_revision(migrated_url) == migrate.head_revision()


def test_models_match_the_migrations(migrated_url):
    """A model change without a migration shows up here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from app.store.models import Base

    engine = sa.create_engine(migrated_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(url)
    db = Database(url)
    with db.session() as s:
        assert s.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_served_process_checkpoints_the_wal_in_the_background_not_on_commit(tmp_path, monkeypatch):
    """start_checkpointer (gunicorn's post_fork): this process's connections no longer
    checkpoint inside a COMMIT (which held the write lock every writer queues on while it copied
    the log and synced), and a thread copies what they wrote into the database instead. Other
    processes keep SQLite's own checkpoints; dispose() ends the thread."""
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate.upgrade(url)
    plain = Database(url)
    with plain.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000

    db = Database(url)
    seen = []
    original = Database.checkpoint

    def spy(self):
        res = original(self)
        seen.append(res)
        return res

    monkeypatch.setattr(Database, "checkpoint", spy)
    assert db.start_checkpointer(interval_s=0.05)
    with db.engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        conn.exec_driver_sql("CREATE TABLE scratch (b BLOB)")
        for _ in range(1500):  # ~1,500 pages of log: past SQLite's 1,000-page autocheckpoint
            conn.exec_driver_sql("INSERT INTO scratch VALUES (randomblob(3000))")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(r and r[0] == 0 and r[1] > 1000 and r[2] == r[1] for r in seen):
        time.sleep(0.05)
    assert any(r and r[0] == 0 and r[1] > 1000 and r[2] == r[1] for r in seen), seen[-3:]
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 1500
    db.dispose()
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "smsguard-wal-checkpoint"]
    assert Database("postgresql+psycopg://u:p@127.0.0.1:9/x").start_checkpointer() is False


def test_a_review_workflow_round_trip(migrated_url):
    db = Database(migrated_url)
    with db.session() as s:
        accounts.create(s, "ACME", "Acme Ltd")
        sig = Signature(account_id="ACME", name="阿克米")
        s.add(sig)
        s.flush()
        tpl = Template(account_id="ACME", signature_id=sig.id, type="verification",
                       content="您的验证码是${code}，5分钟内有效。", variables={"code": "code"})
        s.add(tpl)
        s.flush()
        s.add(ReviewDecision(subject_type="template", subject_id=tpl.id, decision="approve",
                             actor="user:ann", verdict={"verdict": "allow"}, reason="ok"))
        tid = tpl.id
    with db.session() as s:
        tpl = s.get(Template, tid)
        assert tpl.signature.name == "阿克米"
        assert tpl.variables == {"code": "code"}
        assert [d.decision for d in tpl.decisions] == ["approve"]
        assert tpl.created_at.tzinfo is not None


def test_complaint_external_id_is_unique_per_source(migrated_url):
    db = Database(migrated_url)
    with db.session() as s:
        accounts.create(s, "ACME")
    with db.session() as s:
        s.add(Complaint(account_id="ACME", phone="13800138000", source="carrier", external_id="c-1"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Complaint(account_id="ACME", phone="13800138000", source="carrier", external_id="c-1"))
    with db.session() as s:  # the same id from another source is another complaint
        s.add(Complaint(account_id="ACME", phone="13800138000", source="user", external_id="c-1"))
        assert s.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 2


def test_opt_out_is_unique_per_account_and_phone(migrated_url):
    db = Database(migrated_url)
    with db.session() as s:
        accounts.create(s, "ACME")
        s.add(OptOut(account_id="ACME", phone="13800138000", source="reply"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(OptOut(account_id="ACME", phone="13800138000", source="complaint"))


def test_state_changes_keep_their_evidence(migrated_url):
    db = Database(migrated_url)
    with db.session() as s:
        accounts.create(s, "ACME")
        s.add(AccountStateChange(account_id="ACME", from_status="active", to_status="suspended",
                                 rule="ACCT_COMPLAINT_RATE", rate=0.31,
                                 evidence={"complaints": [1, 2, 3]}, actor="system"))
    with db.session() as s:
        ch = s.scalar(sa.select(AccountStateChange))
        assert ch.evidence == {"complaints": [1, 2, 3]} and ch.rate == pytest.approx(0.31)


def test_event_log_is_append_only(migrated_url):
    db = Database(migrated_url)
    with db.session() as s:
        events.record(s, "test.happened", "test", None, subject="x", n=1)
    with pytest.raises(DBAPIError), db.session() as s:
        s.execute(sa.update(Event).values(kind="rewritten"))
    with pytest.raises(DBAPIError), db.session() as s:
        s.execute(sa.delete(Event))
    with db.session() as s:
        ev = s.scalar(sa.select(Event))
        assert ev.kind == "test.happened" and ev.data == {"n": 1}


def test_failed_unit_of_work_leaves_nothing_behind(migrated_url):
    db = Database(migrated_url)
    with pytest.raises(RuntimeError), db.session() as s:
        accounts.create(s, "HALF")
        raise RuntimeError("crash mid-way")
    with db.session() as s:
        assert s.get(Account, "HALF") is None


def test_keys_store_what_verification_needs(migrated_url):
    db = Database(migrated_url)
    with db.session() as s:
        k = keys.create(s, "ACME", "tenant")
    with db.session() as s:
        rows = keys.list_keys(s, "ACME")
        assert [r.public_key for r in rows] == [k.public_key]
        assert rows[0].created_at <= datetime.now(UTC)
