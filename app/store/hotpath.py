"""The pre-send check's hot path on the raw DB-API connection (issue 6).

Measured on the 2-core machine: an SQLAlchemy Core transaction with one trivial statement costs
~250-300 us of Python (pool checkout, begin/commit events, compile-cache lookups, result
processing); the same transaction on the driver's connection ~40 us. The pre-send check runs on
every message, so its few fixed statements (the key, the nonce, the account state, the opt-out,
the counters, the daily volume) run here, written once in SQL that SQLite and PostgreSQL both
accept. Everything else keeps using SQLAlchemy.

A driver connection is checked out of the engine's pool for each unit of work and given back
(so ``Database.dispose()`` closes everything; a connection that failed to roll back is
invalidated). A request that runs several units of work (the pre-send check: the key read by
the /v1 guard, then the check's write transaction) holds one connection from the first to the
end of the request (``hold()`` ... ``release()``) instead of checking one out for each: a
checkout (the pool, the file checks of app/store/db.py) costs more than a statement here, and
the write transaction no longer checks one out while it holds the write lock. SQL is written
with ``:name`` parameters and converted to psycopg's ``%(name)s`` for PostgreSQL. Values come
back as the driver gives them: on SQLite datetimes are the strings SQLAlchemy stored (naive
UTC), dates 'YYYY-MM-DD'; :func:`utc` reads either.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import weakref
from datetime import UTC, date, datetime
from typing import Any, Iterator

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _rolled_back(fairy) -> bool:
    """Roll back a unit of work that failed; False when the connection is broken (the caller
    then invalidates it, so the pool never hands it out again)."""
    try:
        fairy.driver_connection.rollback()
        return True
    except Exception:  # noqa: BLE001 - any failure to roll back means the connection is unusable
        return False


class HotPath:
    def __init__(self, db):
        self.db = db
        self.dialect = db.engine.dialect.name
        self.sqlite = self.dialect == "sqlite"
        self._local = threading.local()
        self._sql: dict[str, str] = {}
        self.lock_path = None
        if self.sqlite:
            path = db.engine.url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                self.lock_path = path + ".writelock"

    # -- connection
    def hold(self) -> None:
        """Check out a driver connection for this thread's next units of work (``read``,
        ``transaction``) until ``release()``: one checkout instead of one per unit. Fails like
        a checkout (the database unavailable) and then holds nothing."""
        if getattr(self._local, "held", None) is None:
            self._local.held = self.db.engine.raw_connection()

    def release(self) -> None:
        """Give back the connection ``hold()`` took, if it still holds one."""
        fairy = getattr(self._local, "held", None)
        if fairy is not None:
            self._local.held = None
            fairy.close()

    @contextlib.contextmanager
    def _connection(self):
        """The held connection (``hold()``), else a driver connection checked out of the
        engine's pool for one unit of work and given back after it (so Database.dispose()
        still closes every connection)."""
        held = getattr(self._local, "held", None)
        if held is not None:
            try:
                yield held.driver_connection
            except BaseException:
                if not _rolled_back(held):  # a broken connection: drop it from the pool
                    self._local.held = None
                    held.invalidate()
                raise
            return
        fairy = self.db.engine.raw_connection()
        broken = False
        try:
            yield fairy.driver_connection
        except BaseException:
            broken = not _rolled_back(fairy)
            raise
        finally:
            if broken:
                fairy.invalidate()
            else:
                fairy.close()

    def sql(self, text: str) -> str:
        s = self._sql.get(text)
        if s is None:
            s = self._sql[text] = text if self.sqlite else _PARAM.sub(r"%(\1)s", text)
        return s

    # -- statements
    def fetchone(self, text: str, params: dict | None, conn):
        cur = conn.execute(self.sql(text), params or {})
        row = cur.fetchone()
        cur.close()
        return row

    def read(self, text: str, params: dict | None = None):
        """One row outside any write transaction (SQLite: autocommit read; PostgreSQL: the
        implicit transaction is ended at once so no snapshot is held)."""
        with self._connection() as conn:
            row = self.fetchone(text, params, conn)
            if not self.sqlite:
                conn.rollback()
            return row

    def _flock(self):
        """SQLite: an flock on a file beside the database, taken around the write transaction.
        SQLite's own busy handler makes a waiting writer sleep 1, 2, 5, 10 ... ms and retry, which
        under load is most of the latency; a process blocked on flock wakes the moment the
        holder releases it. (Writers that do not take it still wait in SQLite's busy handler.)"""
        loc = self._local
        if getattr(loc, "lock_pid", None) != os.getpid():
            loc.lock_fd = None
            loc.lock_pid = os.getpid()
            if self.lock_path is not None:
                loc.lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                weakref.finalize(self, _close_fd, loc.lock_fd)
        return loc.lock_fd

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Tx"]:
        """A write transaction: BEGIN IMMEDIATE on SQLite (the write lock up front, behind the
        flock above); on PostgreSQL the driver's implicit transaction (rows locked by the upserts)."""
        fd = self._flock() if self.sqlite else None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with self._connection() as conn, self._tx(conn) as tx:
                yield tx
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _tx(self, conn) -> Iterator["Tx"]:
        try:
            if self.sqlite:
                conn.execute("BEGIN IMMEDIATE")
            yield Tx(self, conn)
        except BaseException:
            if self.sqlite and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if self.sqlite:
            conn.execute("COMMIT")
        else:
            conn.commit()

    # -- values
    def stamp(self, dt: datetime) -> Any:
        """A UTC datetime as SQLAlchemy's UTCDateTime stores it."""
        if self.sqlite:
            return dt.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return dt

    def day(self, d: date) -> Any:
        return d.isoformat() if self.sqlite else d


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Tx:
    """The statements of one write transaction."""

    def __init__(self, hp: HotPath, conn):
        self.hp = hp
        self.conn = conn
        self.dialect = hp.dialect

    def fetchone(self, text: str, params: dict | None = None):
        return self.hp.fetchone(text, params, self.conn)

    def execute(self, text: str, params: dict | None = None) -> int:
        cur = self.conn.execute(self.hp.sql(text), params or {})
        n = cur.rowcount
        cur.close()
        return n


def utc(value: Any) -> datetime | None:
    """A datetime read raw (SQLite string, naive UTC; PostgreSQL aware) as an aware UTC datetime."""
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value
