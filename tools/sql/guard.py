"""The guard: decides whether a query may run, before any database sees it.

It parses the query with sqlglot in the database's dialect and refuses anything but one
SELECT (``WITH``, ``UNION`` ...) over the readable tables, calling known-safe functions
only. Each refusal is a :class:`~tools.errors.ToolError` that says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokenizer_core import TokenType

from tools.errors import ToolError
from tools.sql.results import first_line

__all__ = ["SQLITE_SYSTEM_TABLES", "SqlDialect", "SqlGuard", "is_denied", "is_system"]

SqlDialect = Literal["postgres", "sqlite"]

_MAX_QUERY_CHARS = 20_000
_MAX_NAMES_LISTED = 40

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
SQLITE_SYSTEM_TABLES = frozenset(
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
            raise ToolError(f"the query could not be parsed: {first_line(exc)}") from None
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
        if is_system(schema, name):
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
        if is_denied(name):
            raise ToolError(f"function '{name}' is not allowed")
        if name not in _SAFE_UNKNOWN_FUNCTIONS:
            raise ToolError(f"function '{name}' is not in the list of allowed functions")
        return
    for name in (*(n.lower() for n in type(node).sql_names()), node.key):
        if is_denied(name):
            raise ToolError(f"function '{name}' is not allowed")


def is_denied(name: str) -> bool:
    return name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES)


def is_system(schema: str, name: str) -> bool:
    schema, name = schema.lower(), name.lower()
    return (
        schema in _SYSTEM_SCHEMAS
        or schema.startswith("pg_")
        or name.startswith(("pg_", "sqlite_"))
        or name in SQLITE_SYSTEM_TABLES
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
