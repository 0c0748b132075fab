"""Engine set-up for SQLite (WAL, serialized writers) and PostgreSQL.

Why `BEGIN IMMEDIATE` on SQLite: a deferred transaction that reads and then writes can fail
with "database is locked" when another writer got in between; taking the write lock up front
makes concurrent writers queue (busy_timeout) instead. Read-only work uses `read()`.

Outages: a database that cannot be reached (PostgreSQL restarting, a dropped connection)
surfaces as `StoreUnavailable` from `write()`/`read()`, so callers send a clear error and
nothing counts as stored. `pool_pre_ping` replaces dead pooled connections on the next
checkout, so the gateway recovers by itself once the database is back (docs/gateway.md,
"Faults").

Why a kept connection pool and an in-process writer lock on SQLite files (measured in
docs/benchmarks.md): SQLAlchemy 1.4 gives SQLite files a NullPool, so every transaction opened
a connection, re-ran the pragmas and, closing the last one, checkpointed the WAL — about 15 ms
per service call. SQLite has one writer at a time anyway; queueing the gateway's worker threads
on a lock instead of SQLite's busy handler (which sleeps 1..100 ms between retries) keeps the
wait to the writer ahead. Other processes on the same file still queue through busy_timeout.
Since writes are serialised by that lock anyway, they all go through one kept connection: a
pool checkout, a reset-on-return and a fresh Connection per transaction were a fifth of the
store's CPU per borrower turn (measured with a loop of record + reply turns: 0.71 → 0.58 ms
together with sending BEGIN to the driver directly).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import QueuePool, StaticPool

from handoff.errors import ConfigError, StoreUnavailable
from handoff.store.schema import metadata

_READ_OPTION = "handoff_read_only"
log = logging.getLogger(__name__)
# Connections kept open per gateway process (its worker pool has 32 threads; most only read).
SQLITE_POOL_SIZE = 8
SQLITE_MAX_OVERFLOW = 32


class Store:
    """Owns the engine; hands out transactions. All queries live in handoff.store.repo."""

    def __init__(self, url: str, *, create_tables: bool = True) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"bad database URL {url!r}: {exc}") from None
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.engine: Engine = self._make_engine(parsed)
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        # SQLite: the one connection that writes, kept open (used only under _write_lock).
        self._writer: Connection | None = None
        if create_tables:
            metadata.create_all(self.engine)

    def _make_engine(self, parsed: Any) -> Engine:
        # hide_parameters: a database error's text (which ends up in logs and tracebacks) must
        # not carry the message texts it was inserting, personal numbers and all.
        if not self.is_sqlite:
            return create_engine(parsed, future=True, pool_pre_ping=True, hide_parameters=True)
        database = parsed.database
        in_memory = not database or database == ":memory:"
        if in_memory:
            engine = create_engine(
                parsed, future=True, poolclass=StaticPool, hide_parameters=True,
                connect_args={"check_same_thread": False},
            )
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                parsed, future=True, hide_parameters=True, poolclass=QueuePool,
                pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_MAX_OVERFLOW,
                connect_args={"check_same_thread": False, "timeout": 30},
            )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see "begin" below)
            cursor = dbapi_conn.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Straight to the driver: a statement through SQLAlchemy costs more than BEGIN does.
            # Inside write() the driver's transaction is already open (_driver_transaction):
            # SQLAlchemy's own, begun by a statement it runs, joins it.
            raw = conn.connection.dbapi_connection
            if raw.in_transaction:
                return
            on_driver(conn, raw.execute,
                       "BEGIN" if conn.get_execution_options().get(_READ_OPTION)
                       else "BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        if self._write_lock is None:
            with unavailable_as_error(), self.engine.begin() as conn:
                yield conn
            return
        with unavailable_as_error(), self._write_lock:
            conn = self._writer
            if conn is None or conn.closed or conn.invalidated:
                conn = self._writer = self.engine.connect()
            try:
                with _driver_transaction(conn):
                    yield conn
            except DBAPIError:
                # A connection-level failure may leave it unusable: open a fresh one next time.
                self._writer = None
                conn.close()
                raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (no write lock on SQLite)."""
        with unavailable_as_error(), self.engine.connect() as conn:
            conn.execution_options(**{_READ_OPTION: True})
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        if self._write_lock is not None:
            with self._write_lock:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
        self.engine.dispose()


def on_driver(conn: Connection, call: Any, *args: Any) -> Any:
    """A call on the SQLite driver, its errors raised as SQLAlchemy's classes (what
    `Connection.execute` would raise), so callers and `unavailable_as_error` see no
    difference. SQLAlchemy does not wrap what runs outside its own statements."""
    try:
        return call(*args)
    except conn.dialect.dbapi.Error as exc:
        sql = args[0] if args and isinstance(args[0], str) else getattr(call, "__name__", "")
        raise driver_error(conn, sql, (), exc) from exc


def driver_error(conn: Connection, sql: str, params: Any, exc: Exception) -> DBAPIError:
    """A driver's error as SQLAlchemy raises it for its own statements: its class, parameter
    values hidden, and the dialect's judgement of a closed or lost connection (which
    `unavailable_as_error` turns into StoreUnavailable)."""
    dialect = conn.dialect
    try:
        lost = bool(dialect.is_disconnect(exc, conn.connection.dbapi_connection, None))
    except Exception:  # noqa: BLE001 - no judgement: not a disconnect
        lost = False
    return DBAPIError.instance(sql, params, exc, dialect.dbapi.Error, hide_parameters=True,
                               dialect=dialect, connection_invalidated=lost)


@contextmanager
def _driver_transaction(conn: Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` … `COMMIT` sent to the SQLite driver, not through SQLAlchemy's
    Transaction objects and events (half of the Python calls of a store call, measured in
    docs/benchmarks.md, session 8). Committed on success, rolled back on any exception.
    A statement run through `Connection.execute` makes SQLAlchemy begin its own transaction,
    which joins this one (the "begin" listener sends nothing then); it is then ended through
    SQLAlchemy, so the Connection's state stays right."""
    raw = conn.connection.dbapi_connection
    on_driver(conn, raw.execute, "BEGIN IMMEDIATE")
    try:
        yield
        if conn.in_transaction():
            conn.commit()
        else:
            on_driver(conn, raw.commit)
    except BaseException:
        # Also when COMMIT itself failed: SQLite keeps the transaction open then (a deferred
        # constraint, a full disk), and the next BEGIN on this connection would fail.
        _roll_back(conn, raw)
        raise


def _roll_back(conn: Connection, raw: Any) -> None:
    """End both SQLAlchemy's view of the transaction and the driver's. A rollback that fails
    raises (chained to the error that caused it) as SQLAlchemy's own DBAPIError, so write()
    drops the connection instead of keeping one with a transaction still open."""
    if conn.in_transaction():
        conn.rollback()
    # Asked through on_driver too: a closed driver connection raises on the question itself.
    if on_driver(conn, getattr, raw, "in_transaction"):
        on_driver(conn, raw.rollback)


@contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Connection-level database failures → StoreUnavailable (constraint errors and bugs
    pass through unchanged: those are not outages)."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        log.warning("database unavailable: %s", exc.orig)
        raise StoreUnavailable(f"database unavailable: {exc.orig!r}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            log.warning("database connection lost: %s", exc.orig)
            raise StoreUnavailable(f"database connection lost: {exc.orig!r}") from exc
        raise
