"""Running a checked query so that it cannot write, on PostgreSQL or SQLite.

PostgreSQL: a server-side cursor (``DECLARE ... CURSOR FOR``, which accepts a single SELECT
or VALUES only, sent over the extended protocol, which refuses stacked statements) inside a
``READ ONLY`` transaction with ``statement_timeout``, rolled back at the end. SQLite: a
``mode=ro`` URI with ``query_only``, no ATTACH, an authorizer that allows reading the
readable tables only, and a progress handler for the time limit. Both fetch at most the
rows asked for. These functions block; callers run them in a thread.
"""

from __future__ import annotations

import math
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from tools.errors import SqlUnavailableError, ToolError
from tools.sql.guard import is_denied
from tools.sql.results import first_line, pg_message, timed_out

__all__ = ["Rows", "fetch_postgres", "fetch_sqlite", "postgres_engine", "sqlite_engine"]

_SQLITE_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE})


@dataclass
class Rows:
    """Column names and the rows fetched, as the driver returned them."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def postgres_engine(url: sa.URL, timeout: float) -> sa.Engine:
    """A small pool on ``url`` through psycopg, giving up connecting after ``timeout``."""
    url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(
        url,
        pool_size=2,
        max_overflow=4,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(2, math.ceil(timeout))},
    )


def sqlite_engine(path: str) -> sa.Engine:
    """Connections to the SQLite file at ``path`` that cannot write or attach."""
    if not path or path == ":memory:":
        raise ValueError("a SQLite URL must name a database file: sqlite:///path/to/file.db")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise SqlUnavailableError(f"SQL database file not found: {file}")
    uri = f"file:{quote(str(file))}?mode=ro"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.execute("PRAGMA query_only = ON")
        return conn

    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.QueuePool)


def fetch_postgres(
    conn: sa.Connection, statement: str, max_rows: int, *, timeout: float, schema: str
) -> Rows:
    """Run ``statement`` in a read-only transaction through a server-side cursor."""
    import psycopg

    raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        raw.rollback()  # so SET TRANSACTION opens a fresh transaction, whatever came before
        _read_only_transaction(raw, timeout, schema)
        with raw.cursor(name=f"deskbot_sql_{uuid.uuid4().hex[:8]}") as cursor:
            cursor.execute(statement)
            columns = [d.name for d in cursor.description or []]
            rows = [tuple(r) for r in cursor.fetchmany(max_rows)]
        return Rows(columns, rows)
    except psycopg.errors.QueryCanceled:
        raise ToolError(timed_out(timeout)) from None
    except psycopg.Error as exc:
        if raw.closed:
            conn.invalidate()
            raise SqlUnavailableError(f"SQL database connection lost: {first_line(exc)}") from None
        raise ToolError(f"the database refused the query: {pg_message(exc)}") from None
    finally:
        if not raw.closed:
            raw.rollback()


def _read_only_transaction(raw: Any, timeout: float, schema: str) -> None:
    from psycopg import sql

    with raw.cursor() as setup:
        setup.execute("SET TRANSACTION READ ONLY")
        millis = str(max(1, int(timeout * 1000)))
        path = sql.SQL("pg_catalog, {}").format(sql.Identifier(schema))
        setup.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('lock_timeout', %s, true),"
            " set_config('search_path', %s, true),"
            " set_config('standard_conforming_strings', 'on', true)",
            (millis, millis, path.as_string(raw)),
        )


def fetch_sqlite(
    conn: sa.Connection,
    statement: str,
    max_rows: int,
    *,
    timeout: float,
    readable: frozenset[str],
    hidden: frozenset[str],
) -> Rows:
    """Run ``statement`` under an authorizer that reads ``readable`` tables only."""
    deadline = time.monotonic() + timeout
    raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    raw.set_authorizer(_sqlite_authorizer(readable, hidden))
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        cursor = raw.execute(statement)
        columns = [d[0] for d in cursor.description or []]
        rows = [tuple(r) for r in cursor.fetchmany(max_rows)]
        cursor.close()
        return Rows(columns, rows)
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise ToolError(timed_out(timeout)) from None
        raise ToolError(f"the database refused the query: {first_line(exc)}") from None
    except sqlite3.Error as exc:
        raise ToolError(f"the database refused the query: {first_line(exc)}") from None
    finally:
        raw.set_authorizer(None)
        raw.set_progress_handler(None, 0)
        raw.rollback()


def _sqlite_authorizer(
    readable: frozenset[str], hidden: frozenset[str]
) -> Callable[[int, str | None, str | None, str | None, str | None], int]:
    """Allow SELECT, reads of readable tables (and of WITH queries) and allowed functions.

    SQLite reports reading a WITH query, and ``count(*)`` over a table, as a read of that
    name with no database, so such a read is allowed unless the name is an existing table
    that is not readable. A view's base tables must be readable themselves.
    """

    def authorize(
        action: int, table: str | None, column: str | None, db: str | None, _source: str | None
    ) -> int:
        if action in _SQLITE_ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            name = (table or "").lower()
            if (db in {"main", None} and name in readable) or (db is None and name not in hidden):
                return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and not is_denied((column or "").lower()):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize
