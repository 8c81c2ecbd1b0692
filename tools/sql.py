"""Read-only SQL over PostgreSQL or SQLite, as tools the model can call.

:func:`make_sql_tools` turns a :class:`SqlDatabase` into ``run_sql`` and
``describe_database``. The model writes the query; which database, which tables and how
many rows come from the operator's settings, never from the model.

A query is kept read-only by three independent layers:

1. :class:`SqlGuard` parses it with sqlglot in the database's dialect and refuses anything
   but one SELECT (``WITH``, ``UNION`` ...) over the readable tables, calling known-safe
   functions only. Each refusal is a :class:`~tools.base.ToolError` that says what to change.
2. The executor runs the checked text in a way that cannot write. PostgreSQL: a server-side
   cursor (``DECLARE ... CURSOR FOR``, which accepts a single SELECT or VALUES only, sent over
   the extended protocol, which refuses stacked statements) inside a ``READ ONLY``
   transaction with ``statement_timeout``, rolled back at the end. SQLite: a ``mode=ro`` URI
   with ``query_only``, no ATTACH, an authorizer that allows reading the readable tables
   only, and a progress handler for the time limit.
3. At most ``row_limit + 1`` rows are ever fetched.

Exceptions::

    ToolError                 (tools.base) the query was refused or failed; the model can
                              fix it: the message is one line
    FatalToolError            (tools.base)
    └── SqlUnavailableError   the database cannot be opened or reached
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import sqlalchemy as sa
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokenizer_core import TokenType

from tools.base import FatalToolError, Tool, ToolError, ToolOutput

__all__ = [
    "DatabaseDescription",
    "SqlDatabase",
    "SqlGuard",
    "SqlUnavailableError",
    "TableDescription",
    "make_sql_tools",
]

SqlDialect = Literal["postgres", "sqlite"]

_MAX_QUERY_CHARS = 20_000
_MAX_CELL_CHARS = 1_000
_MAX_MARKDOWN_ROWS = 30
_MAX_NAMES_LISTED = 40
_SAMPLE_ROWS = 50
_SAMPLES_PER_COLUMN = 3
_COMPACT_SCHEMA_CHARS = 3_000

# Functions sqlglot does not know (it parses them as exp.Anonymous) that are safe to call:
# pure computations on their arguments. Anything else unknown is refused.
_SAFE_UNKNOWN_FUNCTIONS = frozenset(
    """
    abs acos acosh age array_append array_cat array_dims array_lower array_ndims
    array_prepend array_remove array_replace array_upper asin asinh atan atan2 atanh bit_and
    bit_count bit_or bit_xor bool_and bool_or btrim cardinality cbrt ceil ceiling char
    char_length clock_timestamp coalesce cos cosh cot covar_samp date datetime degrees
    every factorial floor format gcd generate_series generate_subscripts glob group_concat
    hex ifnull iif instr isfinite json json_array json_array_length json_build_array
    json_build_object json_each json_each_text json_extract json_group_array
    json_group_object json_object json_object_keys json_quote json_tree json_type
    json_typeof json_valid jsonb_agg jsonb_array_length jsonb_build_array
    jsonb_build_object jsonb_each jsonb_each_text jsonb_object_keys jsonb_pretty
    jsonb_typeof julianday lcm length like likelihood likely ln log log10 log2 lower ltrim
    make_date make_timestamptz max min min_scale mod num_nonnulls num_nulls octet_length
    pi power printf quote quote_ident quote_literal quote_nullable radians regexp_count
    regexp_instr regexp_like regexp_match regexp_matches regexp_split_to_array
    regexp_split_to_table regexp_substr regr_avgx regr_avgy regr_count regr_intercept
    regr_r2 regr_slope regr_sxx regr_sxy regr_syy round row_to_json rtrim scale sha224
    sha384 sha512 sign sin sinh soundex sqrt statement_timestamp strftime string_to_table
    substr substring tan tanh time timeofday timezone to_ascii to_json to_jsonb total
    transaction_timestamp trim trim_scale trunc typeof unhex unicode unistr unixepoch
    unlikely upper
    """.split()  # noqa: SIM905 - a word list reads better than 150 quoted strings
)

# Refused even where sqlglot knows them: they read files or server state, sleep, write,
# run SQL given as text, or touch other databases.
_DENIED_FUNCTIONS = frozenset(
    """
    benchmark copy current_catalog current_database current_organization_user
    current_role current_schema current_schemas current_setting current_user
    current_user_id current_version currval edit fts3_tokenizer inet_client_addr
    inet_client_port inet_server_addr inet_server_port lastval load_extension nextval
    randomblob read_csv read_json read_parquet readfile session_user set_config setseed
    setval sleep to_file ts_rewrite ts_stat user version writefile zeroblob
    """.split()  # noqa: SIM905
)
_DENIED_PREFIXES = (
    "pg_",
    "lo_",
    "dblink",
    "txid_",
    "sqlite_",
    "has_",
    "query_to_xml",
    "table_to_xml",
    "cursor_to_xml",
    "schema_to_xml",
    "database_to_xml",
)

_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
_SQLITE_SYSTEM_TABLES = frozenset(
    {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"}
)

# Statement kinds that never belong in a read-only query, wherever they appear in the tree.
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    node
    for name in (  # noqa: SIM905
        "DML Insert Update Delete Merge Copy Create Drop Alter TruncateTable Command Pragma "
        "Set Grant Revoke Transaction Commit Rollback Use Describe Analyze Kill Declare "
        "Execute LoadData Cache Uncache Refresh Show Attach Detach Comment Summarize Install "
        "Export"
    ).split()
    if isinstance(node := getattr(exp, name, None), type)
)


class SqlUnavailableError(FatalToolError):
    """The SQL database cannot be opened or reached; the run cannot use it."""


# --- The guard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlGuard:
    """Decides whether a query may run: one SELECT over readable tables, safe functions.

    Args:
        dialect: ``"postgres"`` or ``"sqlite"``; the query is parsed the way that database
            reads it.
        readable: Table names as stored in the database, ``name`` (in ``default_schema``) or
            ``schema.name``. System catalogs are readable only when listed here.
        default_schema: The schema unqualified names resolve to (``public``, ``main``).
    """

    dialect: SqlDialect
    readable: frozenset[str]
    default_schema: str

    def check(self, sql: str) -> str:
        """The statement to run (trailing ``;`` and comments removed), or a :class:`ToolError`."""
        if not sql.strip():
            raise ToolError("the query is empty; send one SELECT statement")
        if len(sql) > _MAX_QUERY_CHARS:
            raise ToolError(f"the query is longer than {_MAX_QUERY_CHARS} characters")
        dialect = Dialect.get_or_raise(self.dialect)
        try:
            tokens = dialect.tokenize(sql)
            parsed = dialect.parser().parse(tokens, sql)
            # Empty statements (";;") and comment-only ones ("; -- done") are not statements.
            statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
        except SqlglotError as exc:
            raise ToolError(f"the query could not be parsed: {_first_line(exc)}") from None
        if len(statements) != 1:
            raise ToolError(f"send exactly one SQL statement, not {len(statements)}")
        root = normalize_identifiers(statements[0], dialect=dialect)
        self._check_root(root)
        for node in root.walk():
            self._check_node(node)
        self._check_tables(root)
        last = max(t.end for t in tokens if t.token_type != TokenType.SEMICOLON)
        return sql[: last + 1].strip()

    def _check_root(self, root: exp.Expr) -> None:
        query = root.unnest() if isinstance(root, exp.Subquery) else root
        if not isinstance(query, exp.Select | exp.SetOperation | exp.Values):
            kind = root.name.upper() if isinstance(root, exp.Command) else root.key.upper()
            raise ToolError(f"only SELECT queries are allowed, not {kind}")

    def _check_node(self, node: exp.Expr) -> None:
        if isinstance(node, exp.Into):
            raise ToolError("SELECT ... INTO is not allowed (it creates a table)")
        if isinstance(node, exp.Lock):
            raise ToolError("locking clauses (FOR UPDATE / FOR SHARE) are not allowed")
        if isinstance(node, _FORBIDDEN_NODES):
            kind = node.name.upper() if isinstance(node, exp.Command) else node.key.upper()
            raise ToolError(f"{kind} is not allowed, not even inside a SELECT or WITH")
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            raise ToolError("schema-qualified function calls are not allowed")
        if isinstance(node, exp.Func):
            _check_function(node)

    def _check_tables(self, root: exp.Expr) -> None:
        cte_refs = _cte_references(root)
        for table in root.find_all(exp.Table):
            if id(table) in cte_refs or isinstance(table.this, exp.Func):
                continue  # a WITH name, or a table function (checked as a function)
            if not isinstance(table.this, exp.Identifier):
                raise ToolError(f"unsupported table reference '{table.sql()}'")
            if table.catalog:
                raise ToolError(f"cross-database name '{table.sql()}' is not allowed")
            if not self._is_readable(table.db, table.name):
                raise ToolError(self._unreadable(table.db, table.name))

    def _is_readable(self, schema: str, name: str) -> bool:
        fold = str.lower if self.dialect == "sqlite" else str
        readable = {fold(n) for n in self.readable}
        schema, name = fold(schema), fold(name)
        if schema and schema != fold(self.default_schema):
            return f"{schema}.{name}" in readable
        return name in readable or f"{fold(self.default_schema)}.{name}" in readable

    def _unreadable(self, schema: str, name: str) -> str:
        shown = f"{schema}.{name}" if schema else name
        if _is_system(schema, name):
            return f"system catalog '{shown}' is not readable; query the company tables"
        names = sorted(self.readable)
        listed = ", ".join(names[:_MAX_NAMES_LISTED]) or "none"
        more = (
            f" (+{len(names) - _MAX_NAMES_LISTED} more)" if len(names) > _MAX_NAMES_LISTED else ""
        )
        return f"table '{shown}' is not readable; readable tables: {listed}{more}"


def _check_function(node: exp.Func) -> None:
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if _is_denied(name):
            raise ToolError(f"function '{name}' is not allowed")
        if name not in _SAFE_UNKNOWN_FUNCTIONS:
            raise ToolError(f"function '{name}' is not in the list of allowed functions")
        return
    for name in (*(n.lower() for n in type(node).sql_names()), node.key):
        if _is_denied(name):
            raise ToolError(f"function '{name}' is not allowed")


def _is_denied(name: str) -> bool:
    return name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES)


def _is_system(schema: str, name: str) -> bool:
    schema, name = schema.lower(), name.lower()
    return (
        schema in _SYSTEM_SCHEMAS
        or schema.startswith("pg_")
        or name.startswith(("pg_", "sqlite_"))
        or name in _SQLITE_SYSTEM_TABLES
    )


def _cte_references(root: exp.Expr) -> set[int]:
    """Ids of Table nodes that name a WITH query in scope; on any doubt, none."""
    found: set[int] = set()
    try:
        for scope in traverse_scope(root):
            for table in scope.tables:
                if not table.db and isinstance(scope.sources.get(table.alias_or_name), Scope):
                    found.add(id(table))
    except SqlglotError:
        return set()  # every name is then checked as a real table: refuse rather than guess
    return found


# --- Schema description --------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDescription:
    """One column: its type, whether it may be null, and a few values from the table."""

    name: str
    type: str
    nullable: bool
    primary_key: bool
    samples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of this table reference ``referred_columns`` of ``referred_table``."""

    columns: list[str]
    referred_table: str
    referred_columns: list[str]


@dataclass(frozen=True)
class TableDescription:
    """One readable table or view."""

    name: str
    columns: list[ColumnDescription]
    primary_key: list[str]
    foreign_keys: list[ForeignKey]

    def line(self, *, types: bool = True) -> str:
        """``name(col type PK, col type -> other.col, ...)`` on one line."""
        refs = {
            c: f"{fk.referred_table}.{r}"
            for fk in self.foreign_keys
            for c, r in zip(fk.columns, fk.referred_columns, strict=False)
        }
        parts = []
        for column in self.columns:
            text = f"{column.name} {column.type}" if types else column.name
            if column.primary_key:
                text += " PK"
            if column.name in refs:
                text += f" -> {refs[column.name]}"
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class DatabaseDescription:
    """The readable tables of one database, for the model."""

    dialect: SqlDialect
    tables: list[TableDescription]

    def compact(self, max_chars: int = _COMPACT_SCHEMA_CHARS) -> str:
        """One line per table, shortened to fit ``max_chars`` (for a tool description)."""
        for types in (True, False):
            text = "\n".join(t.line(types=types) for t in self.tables)
            if len(text) <= max_chars:
                return text
        lines: list[str] = []
        for index, table in enumerate(self.tables):
            line = table.line(types=False)
            rest = f"... and {len(self.tables) - index} more tables (see describe_database)"
            if sum(len(x) + 1 for x in lines) + len(line) + len(rest) + 1 > max_chars:
                lines.append(rest)
                break
            lines.append(line)
        return "\n".join(lines)

    def text(self) -> str:
        """Tables, columns, keys and sample values, as plain text."""
        blocks = []
        for table in self.tables:
            lines = [table.line()]
            for column in table.columns:
                if column.samples:
                    shown = ", ".join(_short(repr(v), 40) for v in column.samples)
                    lines.append(f"  {column.name}: {shown}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) or "(no readable tables)"


# --- The database --------------------------------------------------------------------------


@dataclass
class _Rows:
    columns: list[str]
    rows: list[tuple[Any, ...]]


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
            self._engine = _sqlite_engine(parsed.database or "")
        elif backend in {"postgresql", "postgres"}:
            self.dialect = "postgres"
            self.schema = schema or str(parsed.query.get("schema") or "public")
            self._engine = _postgres_engine(parsed.difference_update_query(["schema"]), timeout)
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
        rows = [[_json_safe(v) for v in row] for row in result.rows[: self.row_limit]]
        data = {
            "columns": result.columns,
            "rows": rows,
            "row_count": len(rows),
            "truncated": truncated,
        }
        return ToolOutput(data, _markdown_table(result.columns, rows, truncated=truncated))

    async def guard(self) -> SqlGuard:
        """The guard for this database (lists the tables on first use if none were given)."""
        if self._guard is None:
            readable, existing = await asyncio.to_thread(self._readable_tables)
            self._guard = SqlGuard(self.dialect, frozenset(readable), self.schema)
            folded = {n.lower().removeprefix(f"{self.schema}.") for n in readable}
            self._hidden = frozenset({n.lower() for n in existing} - folded) | _SQLITE_SYSTEM_TABLES
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
            raise SqlUnavailableError(f"SQL database unreachable: {_db_message(exc)}") from None

    def _readable_tables(self) -> tuple[list[str], list[str]]:
        """The readable tables (allowlist resolved to stored names) and every existing one."""
        with self._connect() as conn:
            inspector = sa.inspect(conn)
            names = inspector.get_table_names(self._inspect_schema) + inspector.get_view_names(
                self._inspect_schema
            )
        if not self._allowed:
            return [n for n in names if not _is_system(self.schema, n)], names
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
                value = _json_safe(row[index]) if index < len(row) else None
                if value is not None and value not in seen:
                    seen.append(_short(value, 60) if isinstance(value, str) else value)
                if len(seen) == _SAMPLES_PER_COLUMN:
                    break
            columns.append(dataclasses.replace(column, samples=seen))
        return dataclasses.replace(table, columns=columns)

    # -- execution --

    async def _fetch(self, statement: str, max_rows: int) -> _Rows:
        """Run ``statement`` read-only and fetch at most ``max_rows`` rows (no guard here)."""
        await self.guard()  # the SQLite authorizer needs to know the tables
        run = self._fetch_postgres if self.dialect == "postgres" else self._fetch_sqlite
        return await asyncio.to_thread(run, statement, max_rows)

    def _fetch_postgres(self, statement: str, max_rows: int) -> _Rows:
        import psycopg
        from psycopg import sql

        with self._connect() as conn:
            raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
            try:
                raw.rollback()  # so SET TRANSACTION opens a fresh transaction, whatever came before
                with raw.cursor() as setup:
                    setup.execute("SET TRANSACTION READ ONLY")
                    millis = str(max(1, int(self.timeout * 1000)))
                    path = sql.SQL("pg_catalog, {}").format(sql.Identifier(self.schema))
                    setup.execute(
                        "SELECT set_config('statement_timeout', %s, true),"
                        " set_config('lock_timeout', %s, true),"
                        " set_config('search_path', %s, true),"
                        " set_config('standard_conforming_strings', 'on', true)",
                        (millis, millis, path.as_string(raw)),
                    )
                with raw.cursor(name=f"deskbot_sql_{uuid.uuid4().hex[:8]}") as cursor:
                    cursor.execute(statement)
                    columns = [d.name for d in cursor.description or []]
                    rows = [tuple(r) for r in cursor.fetchmany(max_rows)]
                return _Rows(columns, rows)
            except psycopg.errors.QueryCanceled:
                raise ToolError(_timed_out(self.timeout)) from None
            except psycopg.Error as exc:
                if raw.closed:
                    conn.invalidate()
                    raise SqlUnavailableError(
                        f"SQL database connection lost: {_first_line(exc)}"
                    ) from None
                raise ToolError(f"the database refused the query: {_pg_message(exc)}") from None
            finally:
                if not raw.closed:
                    raw.rollback()

    def _fetch_sqlite(self, statement: str, max_rows: int) -> _Rows:
        deadline = time.monotonic() + self.timeout
        with self._connect() as conn:
            raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
            raw.set_authorizer(_sqlite_authorizer(self._readable_folded(), self._hidden))
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            try:
                cursor = raw.execute(statement)
                columns = [d[0] for d in cursor.description or []]
                rows = [tuple(r) for r in cursor.fetchmany(max_rows)]
                cursor.close()
                return _Rows(columns, rows)
            except sqlite3.OperationalError as exc:
                if "interrupted" in str(exc):
                    raise ToolError(_timed_out(self.timeout)) from None
                raise ToolError(f"the database refused the query: {_first_line(exc)}") from None
            except sqlite3.Error as exc:
                raise ToolError(f"the database refused the query: {_first_line(exc)}") from None
            finally:
                raw.set_authorizer(None)
                raw.set_progress_handler(None, 0)
                raw.rollback()


def _postgres_engine(url: sa.URL, timeout: float) -> sa.Engine:
    url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(
        url,
        pool_size=2,
        max_overflow=4,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(2, math.ceil(timeout))},
    )


def _sqlite_engine(path: str) -> sa.Engine:
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


_SQLITE_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE})


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
        if action == sqlite3.SQLITE_FUNCTION and not _is_denied((column or "").lower()):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


# --- Values and rendering ------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """A JSON-serialisable version of a database value."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _short(value, _MAX_CELL_CHARS)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return f"<{len(data)} bytes: {data[:16].hex()}{'...' if len(data) > 16 else ''}>"
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return _short(str(value), _MAX_CELL_CHARS)


def _markdown_table(columns: list[str], rows: list[list[Any]], *, truncated: bool) -> str:
    if not columns:
        return "_The query returned no columns._"

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return _short(text.replace("\n", " ").replace("|", "\\|"), 60)

    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:_MAX_MARKDOWN_ROWS]),
    ]
    shown = min(len(rows), _MAX_MARKDOWN_ROWS)
    note = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if shown < len(rows):
        note += f", first {shown} shown"
    if truncated:
        note += " (row limit reached: more rows exist)"
    return "\n".join(lines) + f"\n\n_{note}_"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _pg_message(exc: Any) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    hint = getattr(diag, "message_hint", None)
    message = str(primary) if primary else _first_line(exc)
    return f"{message} (hint: {_first_line(Exception(hint))})" if hint else message


def _db_message(exc: sa.exc.DBAPIError) -> str:
    return _first_line(exc.orig) if exc.orig is not None else _first_line(exc)


def _timed_out(timeout: float) -> str:
    return f"the query ran longer than {timeout:g} s and was cancelled; add filters or a LIMIT"


# --- Tools ---------------------------------------------------------------------------------


def make_sql_tools(
    db: SqlDatabase, *, description: DatabaseDescription | None = None
) -> list[Tool]:
    """The ``run_sql`` and ``describe_database`` tools over ``db``.

    ``run_sql``'s description lists the readable tables when a description is known:
    ``description``, or the last ``await db.describe()``.
    """

    async def run_sql(query: str) -> ToolOutput:
        """Run one read-only SQL SELECT on the company database and return the rows.

        Only a single SELECT (WITH, UNION, joins, subqueries) over the readable tables is
        allowed; statements that change data, system catalogs and server functions are
        refused with the reason. Results are capped; ``truncated`` says more rows exist.

        Args:
            query: One SELECT statement in the database's SQL dialect.
        """
        return await db.run(query)

    async def describe_database() -> ToolOutput:
        """Describe the readable tables: columns, types, keys and sample values."""
        described = await db.describe()
        return ToolOutput(dataclasses.asdict(described), described.text())

    run_tool = Tool.from_function(run_sql, timeout=db.timeout + 5)
    known = description or db.description
    dialect = "PostgreSQL" if db.dialect == "postgres" else "SQLite"
    extra = f"\n\nDialect: {dialect}. At most {db.row_limit} rows come back."
    if known is not None:
        extra += f" Readable tables:\n{known.compact()}"
    else:
        extra += " Call describe_database to see the tables."
    run_tool = dataclasses.replace(run_tool, description=run_tool.description + extra)
    return [run_tool, Tool.from_function(describe_database, timeout=db.timeout * 2 + 5)]
