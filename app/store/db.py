"""Database: one SQLAlchemy engine per process, sessions as context managers."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

log = logging.getLogger("smsguard.db")

# SQLite: how often a served process's checkpointer copies the write-ahead log into the database
CHECKPOINT_INTERVAL_S = 1.0


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is broken)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _guarded_pool(unwritable):
    """A QueuePool that refuses to hand out connections while the SQLite files are not writable
    (made immutable, a read-only remount): every write would fail, and closing or opening a
    connection then makes SQLite touch its shared-memory map, which kills the process with
    SIGBUS. The pooled connections are left alone (not closed) and serve again the moment the
    files are writable. The refusal is a driver OperationalError: a 503, the pre-send fail mode."""
    import sqlite3

    class GuardedQueuePool(QueuePool):
        def connect(self):
            reason = unwritable()
            if reason:
                raise sqlite3.OperationalError(f"readonly database: {reason}")
            return super().connect()

    return GuardedQueuePool


class Database:
    """Wraps the engine; `session()` commits on success and rolls back on error.

    A SQLite file is opened read-write, never created (``mode=rw``): the schema is made by the
    migrations (``smsguard db upgrade``, run by ``smsguard serve``), never implicitly at run
    time. Every connection remembers the file it opened (device and inode) and is checked on
    each checkout: a database file deleted or replaced under the running service invalidates
    the pooled connections instead of writing to a file nobody will read again, and a fresh
    connection to a missing file fails ("unable to open database file": a 503, the pre-send
    check's fail mode). While the files are read-only no connection is handed out (the same
    503, see _guarded_pool); they serve again as soon as the files are writable, no restart."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        self.sqlite_path: Path | None = None
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:" and not path.startswith("file:"):
                self.sqlite_path = Path(path)
                db = self.sqlite_path
                self._sqlite_files = tuple(str(p) for p in (
                    db.parent, db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")))
                self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                kwargs["creator"] = self._open_existing
                kwargs["poolclass"] = _guarded_pool(self.unwritable)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", self._sqlite_begin)
            if self.sqlite_path is not None:
                event.listen(self.engine, "connect", self._remember_file)
                event.listen(self.engine, "checkout", self._same_file)
                event.listen(self.engine, "connect", self._checkpoint_mode)
        self._checkpointer_pid: int | None = None
        self._checkpointer_stop = threading.Event()
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # read-then-write units of work take the write lock up front on SQLite (BEGIN IMMEDIATE),
        # so two processes cannot both read the old state and both act on it
        self._immediate_factory = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # -- SQLite: the file must exist and stay the one each connection opened
    def _open_existing(self):
        import sqlite3

        return sqlite3.connect(f"file:{self.sqlite_path}?mode=rw", uri=True, check_same_thread=False, timeout=10)

    def _file_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.sqlite_path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _remember_file(self, _dbapi_conn, record) -> None:
        record.info["sqlite_file"] = self._file_id()

    def _same_file(self, _dbapi_conn, record, _proxy) -> None:
        now = self._file_id()
        if now is None or now != record.info.get("sqlite_file"):
            raise exc.DisconnectionError(f"database file {self.sqlite_path} is gone or was replaced")

    @staticmethod
    def _sqlite_begin(conn) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @contextlib.contextmanager
    def session(self, immediate: bool = False) -> Iterator[Session]:
        """A unit of work. `immediate=True` takes the write lock at the start on SQLite (use it
        for read-then-write sequences; on PostgreSQL lock the rows with SELECT ... FOR UPDATE)."""
        s = (self._immediate_factory if immediate else self._factory)()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def unwritable(self) -> str | None:
        """Why this database cannot take writes now, or None. SQLite: the file, its -wal and
        -shm companions and its folder must be writable (a read-only mount or files made
        immutable answer reads but fail every write); PostgreSQL: not a standby, not read-only
        by default. /readyz uses it: an instance whose writes fail is not ready."""
        if self.sqlite_path is not None:
            for p in self._sqlite_files:  # on every checkout: one access() per file, exists() only on a refusal
                if not os.access(p, os.W_OK) and os.path.exists(p):
                    return f"{p} is not writable"
            return None
        if self.is_sqlite:
            return None
        with self.engine.connect() as conn:
            standby, read_only = conn.execute(text(
                "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")).one()
        if standby:
            return "the PostgreSQL server is a standby (in recovery)"
        if read_only == "on":
            return "the PostgreSQL database is read-only (default_transaction_read_only)"
        return None

    def dispose(self) -> None:
        self._checkpointer_stop.set()
        self.engine.dispose()

    # -- SQLite: write-ahead log checkpoints off the write path
    def start_checkpointer(self, interval_s: float = CHECKPOINT_INTERVAL_S) -> bool:
        """In a serving process (gunicorn's post_fork): this process's connections stop
        checkpointing on commit (``wal_autocheckpoint=0``) and a daemon thread runs a PASSIVE
        checkpoint every ``interval_s`` instead. By default SQLite checkpoints inside the COMMIT
        that takes the log past 1,000 pages: that request copies the log and syncs the file
        while it still holds the write lock every pre-send check queues on (app/store/hotpath.py),
        which made the served pre-send check ~10% slower and left a core idle. A PASSIVE
        checkpoint takes no write lock. Call it before this process opens connections (after
        ``engine.dispose``); other processes (the CLI, tests) keep SQLite's own. False when
        there is nothing to do (not a SQLite file)."""
        if self.sqlite_path is None:
            return False
        self._checkpointer_pid = os.getpid()
        self._checkpointer_stop = stop = threading.Event()
        ref = weakref.ref(self)

        def run() -> None:
            while not stop.wait(interval_s):
                db = ref()
                if db is None:
                    return
                db.checkpoint()
                del db

        threading.Thread(target=run, name="smsguard-wal-checkpoint", daemon=True).start()
        return True

    def _checkpoint_mode(self, dbapi_conn, _record) -> None:
        if self._checkpointer_pid == os.getpid():
            dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> tuple | None:
        """One PASSIVE checkpoint on a pooled connection: (busy, log frames, checkpointed
        frames), or None when no connection could be had (the files unwritable or gone: the
        pool refuses, see _guarded_pool) or the checkpoint failed (logged; the next one retries)."""
        try:
            fairy = self.engine.raw_connection()
        except Exception:  # noqa: BLE001 - unavailable now; the next tick tries again
            return None
        try:
            cur = fairy.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            row = cur.fetchone()
            cur.close()
            return tuple(row) if row is not None else None
        except Exception as exc:  # noqa: BLE001
            log.warning("WAL checkpoint failed: %s", exc)
            return None
        finally:
            fairy.close()


def unavailable(exc: BaseException) -> bool:
    """The database is down, unreachable, locked past its busy timeout or out of pooled
    connections (not a constraint violation or a bug in a statement). ``exc``: SQLAlchemy's
    wrapper or the driver's own exception (the pre-send hot path uses the driver directly)."""
    import sqlite3

    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool limit reached
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    if isinstance(exc, sqlite3.OperationalError):
        msg = str(exc).lower()
        return any(w in msg for w in ("unable to open", "disk i/o", "locked", "readonly", "malformed"))
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
