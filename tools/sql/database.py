"""One database the model may query read-only, and what it may read there."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa

from tools.base import ToolOutput
from tools.errors import SqlUnavailableError, ToolError
from tools.sql.describe import ColumnDescription, DatabaseDescription, ForeignKey, TableDescription
from tools.sql.guard import SQLITE_SYSTEM_TABLES, SqlDialect, SqlGuard, is_system
from tools.sql.results import db_message, json_safe, markdown_table, short
from tools.sql.runners import (
    Rows,
    fetch_postgres,
    fetch_sqlite,
    postgres_engine,
    sqlite_engine,
)

__all__ = ["SqlDatabase"]

_SAMPLE_ROWS = 50
_SAMPLES_PER_COLUMN = 3


class SqlDatabase:
    """A database the model may query read-only: PostgreSQL or a SQLite file.

    Args:
        url: SQLAlchemy URL: ``postgresql://...`` (``postgres://`` and
            ``postgresql+psycopg://`` too) or ``sqlite:///path/to/file.db``. A ``schema``
            query parameter on a PostgreSQL URL sets ``schema``.
        allowed_tables: Readable tables, ``name`` or ``schema.name``; empty means every
            table and view of ``schema``.
        row_limit: Most rows one query returns.
        timeout: Seconds one query may run.
        schema: PostgreSQL schema that unqualified names resolve to (default ``public``).
    """

    def __init__(
        self,
        url: str,
        *,
        allowed_tables: Sequence[str] = (),
        row_limit: int = 200,
        timeout: float = 10.0,
        schema: str | None = None,
    ) -> None:
        if row_limit < 1:
            raise ValueError("row_limit must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.row_limit = row_limit
        self.timeout = timeout
        self._allowed = tuple(t.strip() for t in allowed_tables if t.strip())
        self._guard: SqlGuard | None = None
        self._hidden: frozenset[str] = frozenset()  # existing tables that are not readable
        self._description: DatabaseDescription | None = None
        parsed = sa.make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            self.dialect: SqlDialect = "sqlite"
            self.schema = "main"
            self._engine = sqlite_engine(parsed.database or "")
        elif backend in {"postgresql", "postgres"}:
            self.dialect = "postgres"
            self.schema = schema or str(parsed.query.get("schema") or "public")
            self._engine = postgres_engine(parsed.difference_update_query(["schema"]), timeout)
        else:
            raise ValueError(f"unsupported SQL URL scheme {parsed.drivername!r}")

    @property
    def description(self) -> DatabaseDescription | None:
        """The last :meth:`describe` result, if any."""
        return self._description

    async def run(self, query: str) -> ToolOutput:
        """Check ``query`` with the guard, run it read-only and return its rows."""
        statement = (await self.guard()).check(query)
        result = await self._fetch(statement, self.row_limit + 1)
        truncated = len(result.rows) > self.row_limit
        rows = [[json_safe(v) for v in row] for row in result.rows[: self.row_limit]]
        data = {
            "columns": result.columns,
            "rows": rows,
            "row_count": len(rows),
            "truncated": truncated,
        }
        return ToolOutput(data, markdown_table(result.columns, rows, truncated=truncated))

    async def guard(self) -> SqlGuard:
        """The guard for this database (lists the tables on first use if none were given)."""
        if self._guard is None:
            readable, existing = await asyncio.to_thread(self._readable_tables)
            self._guard = SqlGuard(self.dialect, frozenset(readable), self.schema)
            folded = {n.lower().removeprefix(f"{self.schema}.") for n in readable}
            self._hidden = frozenset({n.lower() for n in existing} - folded) | SQLITE_SYSTEM_TABLES
        return self._guard

    async def describe(self) -> DatabaseDescription:
        """Readable tables with columns, types, keys and three sample values per column."""
        guard = await self.guard()
        tables = await asyncio.to_thread(self._inspect, sorted(guard.readable))
        described = []
        for table in tables:
            described.append(await self._with_samples(table))
        self._description = DatabaseDescription(self.dialect, described)
        return self._description

    async def close(self) -> None:
        """Close pooled connections."""
        await asyncio.to_thread(self._engine.dispose)

    # -- introspection (blocking; run in a thread) --

    def _connect(self) -> sa.Connection:
        try:
            return self._engine.connect()
        except sa.exc.DBAPIError as exc:
            raise SqlUnavailableError(f"SQL database unreachable: {db_message(exc)}") from None

    def _readable_tables(self) -> tuple[list[str], list[str]]:
        """The readable tables (allowlist resolved to stored names) and every existing one."""
        with self._connect() as conn:
            inspector = sa.inspect(conn)
            names = inspector.get_table_names(self._inspect_schema) + inspector.get_view_names(
                self._inspect_schema
            )
        if not self._allowed:
            return [n for n in names if not is_system(self.schema, n)], names
        by_lower: dict[str, list[str]] = {}
        for name in names:
            by_lower.setdefault(name.lower(), []).append(name)
        resolved = []
        for entry in self._allowed:
            matches = by_lower.get(entry.lower(), [])
            resolved.append(matches[0] if entry not in names and len(matches) == 1 else entry)
        return resolved, names

    def _readable_folded(self) -> frozenset[str]:
        readable = self._guard.readable if self._guard else frozenset()
        return frozenset(n.lower().removeprefix(f"{self.schema}.") for n in readable)

    @property
    def _inspect_schema(self) -> str | None:
        return None if self.dialect == "sqlite" else self.schema

    def _inspect(self, names: Iterable[str]) -> list[TableDescription]:
        tables = []
        with self._connect() as conn:
            inspector = sa.inspect(conn)
            for full in names:
                schema, _, name = full.rpartition(".")
                schema_arg = schema or self._inspect_schema
                if not inspector.has_table(name, schema_arg):
                    continue
                pk = inspector.get_pk_constraint(name, schema_arg).get("constrained_columns") or []
                columns = [
                    ColumnDescription(
                        c["name"], str(c["type"]).lower(), bool(c["nullable"]), c["name"] in pk
                    )
                    for c in inspector.get_columns(name, schema_arg)
                ]
                fks = [
                    ForeignKey(
                        fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]
                    )
                    for fk in inspector.get_foreign_keys(name, schema_arg)
                ]
                tables.append(TableDescription(full, columns, list(pk), fks))
        return tables

    async def _with_samples(self, table: TableDescription) -> TableDescription:
        preparer = self._engine.dialect.identifier_preparer
        quoted = ".".join(preparer.quote(part) for part in table.name.split("."))
        try:
            result = await self._fetch(f"SELECT * FROM {quoted}", _SAMPLE_ROWS)
        except ToolError:
            return table  # e.g. a view that fails; the columns are still worth showing
        columns = []
        for index, column in enumerate(table.columns):
            seen: list[Any] = []
            for row in result.rows:
                value = json_safe(row[index]) if index < len(row) else None
                if value is not None and value not in seen:
                    seen.append(short(value, 60) if isinstance(value, str) else value)
                if len(seen) == _SAMPLES_PER_COLUMN:
                    break
            columns.append(dataclasses.replace(column, samples=seen))
        return dataclasses.replace(table, columns=columns)

    # -- execution --

    async def _fetch(self, statement: str, max_rows: int) -> Rows:
        """Run ``statement`` read-only and fetch at most ``max_rows`` rows (no guard here)."""
        await self.guard()  # the SQLite authorizer needs to know the tables
        return await asyncio.to_thread(self._fetch_blocking, statement, max_rows)

    def _fetch_blocking(self, statement: str, max_rows: int) -> Rows:
        with self._connect() as conn:
            if self.dialect == "postgres":
                run = partial(fetch_postgres, timeout=self.timeout, schema=self.schema)
            else:
                readable, hidden = self._readable_folded(), self._hidden
                run = partial(fetch_sqlite, timeout=self.timeout, readable=readable, hidden=hidden)
            return run(conn, statement, max_rows)
