"""The per-message statements, run straight on the SQLite driver.

Why: a borrower turn is about ten small statements. Through `Connection.execute` each cost
≈ 25–35 µs of SQLAlchemy bookkeeping around ≈ 4 µs of SQLite (measured on this project's
machines, docs/benchmarks.md), and at one conversation at a time that bookkeeping is on the
borrower's critical path. A `Prepared` statement is still a SQLAlchemy Core statement: it is
compiled once per dialect by SQLAlchemy, and its parameters and rows go through the same
type processors (UTCDateTime, JSON, Boolean) as every other query of the store, so the SQL
and the values are the ones `Connection.execute` would have used. Driver errors are raised
as SQLAlchemy's own exception classes (IntegrityError, OperationalError, ...), so callers
catch the same things either way. Other databases (PostgreSQL) go through
`Connection.execute` unchanged: there the network, not the bookkeeping, is the cost.

Events such as `before_cursor_execute` do not see these statements; nothing in the gateway
listens to them.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

from handoff.store.engine import driver_error

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # parameter names in placeholder order (qmark)
    binds: tuple[Processor, ...]
    fixed: dict[str, Any]  # values the statement carries itself (e.g. the 1 of last_seq + 1)
    row_type: Any  # a namedtuple class, or None for statements without rows
    results: tuple[Processor, ...]


class Prepared:
    """A Core statement plus its compiled SQLite form, built on first use."""

    def __init__(self, statement: ClauseElement, *, column_keys: Sequence[str] | None = None,
                 name: str = "row") -> None:
        self.statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._name = name
        self._plan: _Plan | None = None

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=self._column_keys)
        names = tuple(compiled.positiontup or ())
        binds = tuple(
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names
        )
        fixed = {n: compiled.binds[n].effective_value for n in names
                 if not compiled.binds[n].required}
        # SELECTs and text().columns(...) name their columns; INSERT/UPDATE/DELETE have none.
        columns = list(getattr(self.statement, "selected_columns", ()) or ())
        row_type: Any = None
        results: tuple[Processor, ...] = ()
        if columns:
            row_type = _row_class(self._name, [c.key for c in columns])
            results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                            for c in columns)
        return _Plan(compiled.string, names, binds, fixed, row_type, results)

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Plan | None]:
        dialect = conn.dialect
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            return conn.execute(self.statement, dict(params)), None
        plan = self._plan
        if plan is None:
            plan = self._plan = self._compile(dialect)
        values = []
        for n, p in zip(plan.names, plan.binds, strict=True):
            v = params[n] if n in params else plan.fixed[n]
            values.append(v if p is None else p(v))
        try:
            return conn.connection.dbapi_connection.execute(plan.sql, values), plan
        except dialect.dbapi.Error as exc:
            raise driver_error(conn, plan.sql, values, exc) from exc

    def _row(self, plan: _Plan, raw: Sequence[Any]) -> Any:
        return plan.row_type(*(v if p is None else p(v)
                               for v, p in zip(raw, plan.results, strict=True)))

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row (attribute access like SQLAlchemy's Row), or None."""
        cursor, plan = self._run(conn, params)
        if plan is None:
            return cursor.first()
        raw = cursor.fetchone()
        cursor.close()
        return None if raw is None else self._row(plan, raw)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        cursor, plan = self._run(conn, params)
        if plan is None:
            return list(cursor)
        rows = [self._row(plan, raw) for raw in cursor.fetchall()]
        cursor.close()
        return rows

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a statement without rows; returns the row count."""
        cursor, plan = self._run(conn, params)
        count = int(cursor.rowcount)
        cursor.close()
        return count


def _row_class(name: str, keys: list[str]) -> Any:
    """Rows with attribute access, as the flows read SQLAlchemy's Row."""
    return namedtuple(name, keys)
