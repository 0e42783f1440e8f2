"""Database: one SQLAlchemy engine per process, sessions as context managers."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is broken)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    """Wraps the engine; `session()` commits on success and rolls back on error."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", self._sqlite_begin)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # read-then-write units of work take the write lock up front on SQLite (BEGIN IMMEDIATE),
        # so two processes cannot both read the old state and both act on it
        self._immediate_factory = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

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

    def dispose(self) -> None:
        self.engine.dispose()


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
