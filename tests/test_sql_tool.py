"""The read-only SQL tool against a real PostgreSQL database and a real SQLite file.

Each backend holds the same small company schema plus a ``canary`` table that is not in the
allowlist. Attacks must be refused and leave every table as it was; ordinary analytical
queries must pass; and the executor must stay read-only even when the guard is bypassed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import FreshDatabase
from tools.base import FatalToolError, ToolContext, ToolError, ToolOutput
from tools.sql import SqlDatabase, SqlGuard, SqlUnavailableError, make_sql_tools

READABLE = ["departments", "employees", "projects"]

_DDL = """
CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    department_id INTEGER REFERENCES departments (id),
    manager_id INTEGER REFERENCES employees (id),
    salary NUMERIC(10, 2),
    hired_on DATE,
    photo {blob}
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    department_id INTEGER REFERENCES departments (id),
    budget NUMERIC(12, 2),
    started_at TIMESTAMP
);
CREATE TABLE canary (id INTEGER PRIMARY KEY, secret TEXT NOT NULL);
INSERT INTO departments VALUES (1, 'Engineering'), (2, 'Sales'), (3, 'Support');
INSERT INTO employees VALUES
    (1, 'Ada', 1, NULL, 9000.50, '2019-03-01', NULL),
    (2, 'Alan', 1, 1, 7000.00, '2020-07-15', NULL),
    (3, 'Grace', 1, 1, 7200.00, '2021-01-04', NULL),
    (4, 'Bob', 2, 1, 4800.00, '2020-02-10', NULL),
    (5, 'Carol', 2, 4, 4100.00, '2022-09-30', NULL),
    (6, 'Dan', 3, 1, 3900.00, '2023-05-02', NULL),
    (7, 'Eve', 3, 6, 3700.00, '2023-11-20', NULL),
    (8, 'Ann', 2, 4, 4300.00, '2024-01-08', NULL);
INSERT INTO projects VALUES
    (1, 'Billing', 1, 120000.00, '2023-01-10 09:00:00'),
    (2, 'Search', 1, 80000.00, '2023-06-01 10:30:00'),
    (3, 'Expansion', 2, 5000.00, '2024-02-01 08:00:00'),
    (4, 'Helpdesk', 3, 15000.00, '2024-03-15 14:00:00');
INSERT INTO canary VALUES (1, 'the-canary-secret');
"""


@dataclass
class Company:
    """One backend with the company schema: the tool's database and a way to fingerprint it."""

    backend: str
    db: SqlDatabase
    fingerprint: Callable[[], str]


def _pg_fingerprint(url: str) -> str:
    digest = hashlib.sha256()
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        digest.update(repr(tables).encode())
        for schema, table in tables:
            rows = conn.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1').fetchall()
            digest.update(repr(rows).encode())
        digest.update(repr(conn.execute("SELECT last_value FROM canary_seq").fetchone()).encode())
    return digest.hexdigest()


def _sqlite_fingerprint(path: Path) -> str:
    files = sorted(p.name for p in path.parent.iterdir())
    return hashlib.sha256(path.read_bytes() + repr(files).encode()).hexdigest()


def _make_pg_company(url: str, **options: Any) -> Company:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_DDL.format(blob="BYTEA"))
        conn.execute("CREATE SEQUENCE canary_seq")
        conn.execute("UPDATE employees SET photo = '\\xdeadbeef'::bytea WHERE id = 1")
    options.setdefault("allowed_tables", READABLE)
    db = SqlDatabase(url, row_limit=50, timeout=5.0, **options)
    return Company("postgres", db, lambda: _pg_fingerprint(url))


def _make_sqlite_company(path: Path, **options: Any) -> Company:
    with sqlite3.connect(path) as conn:
        conn.executescript(_DDL.format(blob="BLOB"))
        conn.execute("UPDATE employees SET photo = x'deadbeef' WHERE id = 1")
    conn.close()
    options.setdefault("allowed_tables", READABLE)
    db = SqlDatabase(f"sqlite:///{path}", row_limit=50, timeout=5.0, **options)
    return Company("sqlite", db, lambda: _sqlite_fingerprint(path))


@pytest.fixture
async def pg_company(fresh_database: FreshDatabase) -> AsyncIterator[Company]:
    company = _make_pg_company(fresh_database.url)
    yield company
    await company.db.close()


@pytest.fixture
async def sqlite_company(tmp_path: Path) -> AsyncIterator[Company]:
    folder = tmp_path / "sqlite"
    folder.mkdir()
    company = _make_sqlite_company(folder / "company.db")
    yield company
    await company.db.close()


@pytest.fixture(params=["postgres", "sqlite"])
def company(request: pytest.FixtureRequest) -> Company:
    """The company database on each backend in turn."""
    name = "pg_company" if request.param == "postgres" else "sqlite_company"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


# --- The attack set ------------------------------------------------------------------------

ATTACKS: dict[str, str] = {
    "stacked-drop": "SELECT * FROM employees; DROP TABLE canary",
    "stacked-delete": "SELECT 1; DELETE FROM canary",
    "stacked-after-block-comment": "SELECT 1 /* harmless */; UPDATE canary SET secret = 'x'",
    "stacked-after-line-comment": "SELECT 1 -- comment\n; DELETE FROM canary",
    "statement-after-comment": "/* ; */ DELETE FROM canary",
    "stacked-select-canary": "SELECT * FROM employees; -- trailing\nSELECT * FROM canary",
    "quote-breakout": "SELECT * FROM employees WHERE name = '' OR 1=1; DROP TABLE canary --'",
    "nested-comment": "SELECT 1 /* /* */ ; DELETE FROM canary; /* */",
    "insert": "INSERT INTO canary VALUES (2, 'x')",
    "update": "UPDATE canary SET secret = 'pwned'",
    "delete": "DELETE FROM employees",
    "drop": "DROP TABLE canary",
    "truncate": "TRUNCATE canary",
    "alter": "ALTER TABLE canary ADD COLUMN x INTEGER",
    "create": "CREATE TABLE stolen (id INTEGER)",
    "grant": "GRANT ALL ON canary TO PUBLIC",
    "merge": "MERGE INTO canary c USING employees e ON c.id = e.id WHEN MATCHED THEN DELETE",
    "select-into": "SELECT * INTO stolen FROM employees",
    "for-update": "SELECT * FROM employees FOR UPDATE",
    "for-share": "SELECT * FROM employees FOR SHARE",
    "cte-delete": "WITH gone AS (DELETE FROM canary RETURNING *) SELECT * FROM gone",
    "cte-insert": "WITH x AS (INSERT INTO canary VALUES (3, 'y') RETURNING id) SELECT * FROM x",
    "cte-shadows-readable-name": "WITH employees AS (SELECT * FROM canary) SELECT * FROM employees",
    "pg-sleep": "SELECT pg_sleep(10)",
    "pg-sleep-in-subquery": "SELECT (SELECT pg_sleep(5)) AS x FROM employees",
    "pg-read-file": "SELECT * FROM employees WHERE EXISTS (SELECT pg_read_file('/etc/passwd'))",
    "pg-ls-dir": "SELECT * FROM pg_ls_dir('.')",
    "lo-import": "SELECT lo_import('/etc/passwd')",
    "dblink": "SELECT * FROM dblink('host=example.com', 'SELECT 1') AS t(x INTEGER)",
    "set-config": "SELECT set_config('statement_timeout', '0', false)",
    "current-setting": "SELECT current_setting('data_directory')",
    "version": "SELECT version()",
    "nextval": "SELECT nextval('canary_seq')",
    "txid": "SELECT txid_current()",
    "query-to-xml": "SELECT query_to_xml('SELECT * FROM canary', true, true, '')",
    "load-extension": "SELECT load_extension('/tmp/evil.so')",
    "schema-qualified-function": "SELECT pg_catalog.pg_sleep(1)",
    "unknown-function": "SELECT my_secret_function(1)",
    "copy-to-file": "COPY canary TO '/tmp/canary.csv'",
    "copy-program": "COPY (SELECT 1) TO PROGRAM 'id'",
    "information-schema": "SELECT * FROM information_schema.tables",
    "pg-catalog": "SELECT * FROM pg_catalog.pg_tables",
    "pg-shadow": "SELECT usename, passwd FROM pg_shadow",
    "pg-stat-activity": "SELECT query FROM pg_stat_activity",
    "sqlite-master": "SELECT * FROM sqlite_master",
    "sqlite-schema": "SELECT sql FROM sqlite_schema",
    "attach": "ATTACH DATABASE '/tmp/evil.db' AS evil",
    "pragma": "PRAGMA writable_schema = 1",
    "pragma-function": "SELECT * FROM pragma_table_info('canary')",
    "unallowlisted-table": "SELECT * FROM canary",
    "schema-qualified-table": "SELECT * FROM public.canary",
    "union-into-canary": "SELECT name FROM employees UNION SELECT secret FROM canary",
    "subquery-into-canary": "SELECT * FROM employees WHERE id IN (SELECT id FROM canary)",
    "join-canary": "SELECT * FROM employees e JOIN canary c ON c.id = e.id",
    "lateral-canary": "SELECT * FROM employees e, LATERAL (SELECT secret FROM canary) c",
    "scalar-subquery-canary": "SELECT (SELECT max(secret) FROM canary) FROM employees",
    "table-shorthand": "TABLE canary",
    "call": "CALL do_something()",
    "do-block": "DO $$ BEGIN DELETE FROM canary; END $$",
    "execute": "EXECUTE stolen_plan",
    "prepare": "PREPARE p AS DELETE FROM canary",
    "set": "SET statement_timeout = 0",
    "explain-analyze": "EXPLAIN ANALYZE DELETE FROM canary",
    "lock": "LOCK TABLE employees",
    "vacuum": "VACUUM",
    "commit": "COMMIT",
    "notify": "NOTIFY deskbot, 'hello'",
    "empty": "  ;  ",
}


@pytest.mark.unit
@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
@pytest.mark.parametrize("query", ATTACKS.values(), ids=ATTACKS.keys())
def test_guard_refuses_attack(dialect: Any, query: str) -> None:
    guard = SqlGuard(dialect, frozenset(READABLE), "public" if dialect == "postgres" else "main")
    with pytest.raises(ToolError) as refused:
        guard.check(query)
    message = str(refused.value)
    assert message and "\n" not in message


@pytest.mark.integration
async def test_attacks_are_refused_and_change_nothing(company: Company) -> None:
    before = company.fingerprint()
    executed = []
    for name, query in ATTACKS.items():
        try:
            await company.db.run(query)
        except ToolError:
            continue
        executed.append(name)
    assert executed == []
    assert company.fingerprint() == before


@pytest.mark.integration
async def test_refusals_tell_the_model_what_to_change(company: Company) -> None:
    reasons = {}
    for name in ("unallowlisted-table", "delete", "stacked-delete", "for-update", "pg-sleep"):
        with pytest.raises(ToolError) as refused:
            await company.db.run(ATTACKS[name])
        reasons[name] = str(refused.value)
    assert reasons["unallowlisted-table"] == (
        "table 'canary' is not readable; readable tables: departments, employees, projects"
    )
    assert reasons["delete"] == "only SELECT queries are allowed, not DELETE"
    assert reasons["stacked-delete"] == "send exactly one SQL statement, not 2"
    assert "FOR UPDATE" in reasons["for-update"]
    assert reasons["pg-sleep"] == "function 'pg_sleep' is not allowed"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("query", "reason"),
    [
        # PostgreSQL folds unquoted names: "Canary" (the CTE) is not canary (the table).
        ('WITH "Canary" AS (SELECT 1 AS id) SELECT * FROM Canary', "'canary' is not readable"),
        # A CTE is only visible inside its own query, not beside it.
        (
            "SELECT * FROM canary, (WITH canary AS (SELECT 1) SELECT * FROM canary) AS c",
            "'canary' is not readable",
        ),
        # Standard strings: the backslash does not escape the quote, so PostgreSQL reads on.
        ("SELECT '\\' , (SELECT secret FROM canary) --'", "'canary' is not readable"),
        ("SELECT 1 # (SELECT count(*) FROM canary)", "'canary' is not readable"),
        ("SELECT * FROM other_db.public.employees", "cross-database"),
        # Without RECURSIVE a WITH query cannot see a later one: this canary is the table.
        (
            "WITH a AS (SELECT * FROM canary), canary AS (SELECT 1) SELECT * FROM a",
            "'canary' is not readable",
        ),
        ("WITH canary AS (SELECT * FROM canary) SELECT * FROM canary", "'canary' is not readable"),
    ],
)
def test_guard_reads_postgres_the_way_postgres_does(query: str, reason: str) -> None:
    guard = SqlGuard("postgres", frozenset(READABLE), "public")
    with pytest.raises(ToolError, match=reason):
        guard.check(query)


@pytest.mark.unit
def test_guard_returns_the_statement_without_trailing_semicolons_or_comments() -> None:
    guard = SqlGuard("postgres", frozenset(READABLE), "public")
    assert guard.check("SELECT 1 ;; -- done\n") == "SELECT 1"
    assert guard.check("-- why\nSELECT name FROM employees;") == (
        "-- why\nSELECT name FROM employees"
    )
    assert guard.check("WITH canary AS (SELECT 1 AS x) SELECT x FROM canary")


# --- Valid queries -------------------------------------------------------------------------

VALID_BOTH: dict[str, tuple[str, list[list[Any]] | None]] = {
    "join": (
        "SELECT e.name, d.name AS department FROM employees e"
        " JOIN departments d ON d.id = e.department_id WHERE e.id <= 2 ORDER BY e.id",
        [["Ada", "Engineering"], ["Alan", "Engineering"]],
    ),
    "group-by-having": (
        "SELECT department_id, count(*) AS n FROM employees GROUP BY department_id"
        " HAVING count(*) > 2 ORDER BY department_id",
        [[1, 3], [2, 3]],
    ),
    "window": (
        "SELECT name, rank() OVER (PARTITION BY department_id ORDER BY salary DESC) AS r"
        " FROM employees WHERE department_id = 1 ORDER BY r",
        [["Ada", 1], ["Grace", 2], ["Alan", 3]],
    ),
    "cte": (
        "WITH big AS (SELECT * FROM projects WHERE budget > 10000) SELECT count(*) FROM big",
        [[3]],
    ),
    "recursive-cte": (
        "WITH RECURSIVE chain(id, depth) AS (SELECT id, 0 FROM employees WHERE manager_id IS NULL"
        " UNION ALL SELECT e.id, c.depth + 1 FROM employees e JOIN chain c ON e.manager_id = c.id)"
        " SELECT max(depth) FROM chain",
        [[2]],
    ),
    "union": (
        "SELECT name FROM departments WHERE id = 1 UNION SELECT name FROM projects WHERE id = 1"
        " ORDER BY name",
        [["Billing"], ["Engineering"]],
    ),
    "subquery": (
        "SELECT name FROM employees WHERE salary > (SELECT avg(salary) FROM employees)"
        " ORDER BY name",
        [["Ada"], ["Alan"], ["Grace"]],
    ),
    "exists": (
        "SELECT d.name FROM departments d WHERE NOT EXISTS"
        " (SELECT 1 FROM projects p WHERE p.department_id = d.id AND p.budget > 10000)",
        [["Sales"]],
    ),
    "like": ("SELECT name FROM employees WHERE name LIKE 'A%' ORDER BY name", None),
    "case-coalesce": (
        "SELECT name, CASE WHEN salary >= 7000 THEN 'high' ELSE 'normal' END AS band,"
        " COALESCE(manager_id, 0) AS boss FROM employees WHERE id IN (1, 5) ORDER BY id",
        [["Ada", "high", 0], ["Carol", "normal", 4]],
    ),
    "cte-named-like-a-real-table": (
        "WITH canary AS (SELECT name FROM departments) SELECT count(*) FROM canary",
        [[3]],
    ),
    "aggregates": (
        "SELECT min(hired_on) AS first, max(salary) AS top, sum(budget) AS spend"
        " FROM employees e JOIN projects p ON p.department_id = e.department_id"
        " WHERE e.id = 1",
        None,
    ),
}

VALID_POSTGRES = {
    "date-functions": (
        "SELECT EXTRACT(YEAR FROM hired_on) AS y, count(*) AS n FROM employees"
        " WHERE hired_on >= DATE '2023-01-01' GROUP BY 1 ORDER BY 1",
        [[2023.0, 2], [2024.0, 1]],
    ),
    "date-trunc-interval": (
        "SELECT date_trunc('month', started_at)::date AS month FROM projects"
        " WHERE started_at > now() - interval '100 years' ORDER BY 1 LIMIT 1",
        [["2023-01-01"]],
    ),
    "string-agg-ilike": (
        "SELECT string_agg(name, ',' ORDER BY name) FROM employees WHERE name ILIKE 'a%'",
        [["Ada,Alan,Ann"]],
    ),
    "generate-series": ("SELECT g FROM generate_series(1, 3) AS g", [[1], [2], [3]]),
    "age-to-char": (
        "SELECT to_char(hired_on, 'YYYY-MM'), age(DATE '2024-01-01', hired_on) IS NOT NULL"
        " FROM employees WHERE id = 1",
        [["2019-03", True]],
    ),
}

VALID_SQLITE = {
    "date-functions": (
        "SELECT strftime('%Y', hired_on) AS y, count(*) AS n FROM employees"
        " WHERE hired_on >= '2023-01-01' GROUP BY y ORDER BY y",
        [["2023", 2], ["2024", 1]],
    ),
    "julianday-ifnull": (
        "SELECT CAST(julianday('2019-03-11') - julianday(hired_on) AS INTEGER),"
        " ifnull(manager_id, -1) FROM employees WHERE id = 1",
        [[10, -1]],
    ),
    "group-concat": (
        "SELECT group_concat(name, ',') FROM (SELECT name FROM employees"
        " WHERE name LIKE 'a%' ORDER BY name)",
        [["Ada,Alan,Ann"]],
    ),
}


def _valid_cases() -> list[Any]:
    cases = []
    for backend, extra in (("postgres", VALID_POSTGRES), ("sqlite", VALID_SQLITE)):
        for name, (query, rows) in {**VALID_BOTH, **extra}.items():
            cases.append(pytest.param(backend, query, rows, id=f"{backend}-{name}"))
    return cases


@pytest.mark.integration
@pytest.mark.parametrize(("company", "query", "rows"), _valid_cases(), indirect=["company"])
async def test_valid_queries_pass(
    company: Company, query: str, rows: list[list[Any]] | None
) -> None:
    output = await company.db.run(query)
    assert isinstance(output, ToolOutput)
    assert output.data["row_count"] == len(output.data["rows"]) > 0
    assert output.data["truncated"] is False
    if rows is not None:
        assert output.data["rows"] == rows
    json.dumps(output.data)


# --- Limits, values, errors ----------------------------------------------------------------


@pytest.mark.integration
async def test_row_cap_sets_truncated(company: Company) -> None:
    company.db.row_limit = 3
    capped = await company.db.run("SELECT id FROM employees ORDER BY id")
    assert capped.data["rows"] == [[1], [2], [3]]
    assert capped.data["row_count"] == 3
    assert capped.data["truncated"] is True
    assert "row limit reached" in (capped.markdown or "")
    exact = await company.db.run("SELECT id FROM employees ORDER BY id LIMIT 3")
    assert exact.data["truncated"] is False


@pytest.mark.integration
async def test_postgres_statement_timeout_is_a_tool_error(fresh_database: FreshDatabase) -> None:
    db = SqlDatabase(fresh_database.url, allowed_tables=READABLE, timeout=0.2)
    try:
        with pytest.raises(ToolError, match=r"longer than 0\.2 s"):
            await db.run(
                "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"
            )
        assert (await db.run("SELECT 1 AS ok")).data["rows"] == [[1]]  # the pool still works
    finally:
        await db.close()


@pytest.mark.integration
async def test_sqlite_timeout_is_a_tool_error(sqlite_company: Company) -> None:
    sqlite_company.db.timeout = 0.2
    with pytest.raises(ToolError, match=r"longer than 0\.2 s"):
        await sqlite_company.db.run(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
        )


@pytest.mark.integration
async def test_database_errors_come_back_as_one_line(company: Company) -> None:
    with pytest.raises(ToolError) as failed:
        await company.db.run("SELECT no_such_column FROM employees")
    assert "no_such_column" in str(failed.value)
    assert "\n" not in str(failed.value)


@pytest.mark.integration
async def test_values_are_json_safe(company: Company) -> None:
    output = await company.db.run(
        "SELECT salary, hired_on, photo, name FROM employees WHERE id = 1"
    )
    salary, hired_on, photo, name = output.data["rows"][0]
    assert salary == 9000.5
    assert hired_on == "2019-03-01"
    assert photo == "<4 bytes: deadbeef>"
    assert name == "Ada"
    json.dumps(output.data)


@pytest.mark.integration
async def test_postgres_types_are_json_safe(pg_company: Company) -> None:
    output = await pg_company.db.run(
        "SELECT TIMESTAMP '2024-01-02 03:04:05' AS ts, interval '1 day' AS i, ARRAY[1, 2] AS a,"
        " '{\"k\": [1, 2.5]}'::jsonb AS j, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,"
        " 'NaN'::float8 AS nan, 12345678901234567890.5::numeric AS big"
    )
    ts, interval, array, document, uid, nan, big = output.data["rows"][0]
    assert ts == "2024-01-02T03:04:05"
    assert interval == "1 day, 0:00:00"
    assert array == [1, 2]
    assert document == {"k": [1, 2.5]}
    assert uid == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert nan == "nan"
    assert big == pytest.approx(1.2345678901234567e19)
    json.dumps(output.data, allow_nan=False)


# --- Defence in depth: the executor alone ---------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO canary VALUES (9, 'x')",
        "DELETE FROM canary",
        "SELECT 1; DELETE FROM canary",
        "WITH d AS (DELETE FROM canary RETURNING *) SELECT * FROM d",
        "SELECT * FROM canary FOR UPDATE",
        "SELECT nextval('canary_seq')",
        "SELECT * INTO stolen FROM canary",
    ],
)
async def test_postgres_executor_stays_read_only_without_the_guard(
    pg_company: Company, statement: str
) -> None:
    before = pg_company.fingerprint()
    with pytest.raises(ToolError, match="the database refused the query"):
        await pg_company.db._fetch(statement, 10)
    assert pg_company.fingerprint() == before
    assert (await pg_company.db.run("SELECT count(*) FROM employees")).data["rows"] == [[8]]


@pytest.mark.integration
async def test_postgres_read_only_transaction_refuses_writes(pg_company: Company) -> None:
    # DECLARE accepts this; only the READ ONLY transaction stands between it and a write.
    with pytest.raises(ToolError, match="read-only transaction"):
        await pg_company.db._fetch("SELECT nextval('canary_seq')", 10)


@pytest.mark.integration
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO canary VALUES (9, 'x')",
        "DELETE FROM canary",
        "SELECT 1; DELETE FROM canary",
        "SELECT * FROM canary",
        "SELECT * FROM sqlite_master",
        "ATTACH DATABASE 'evil.db' AS evil",
        "PRAGMA query_only = OFF",
        "SELECT load_extension('evil')",
    ],
)
async def test_sqlite_executor_stays_read_only_without_the_guard(
    sqlite_company: Company, statement: str
) -> None:
    before = sqlite_company.fingerprint()
    with pytest.raises(ToolError, match="the database refused the query"):
        await sqlite_company.db._fetch(statement, 10)
    assert sqlite_company.fingerprint() == before


# --- Describing the schema -----------------------------------------------------------------


@pytest.mark.integration
async def test_describe_lists_columns_keys_and_samples(company: Company) -> None:
    described = await company.db.describe()
    tables = {t.name: t for t in described.tables}
    assert set(tables) == set(READABLE)
    employees = tables["employees"]
    assert [c.name for c in employees.columns][:3] == ["id", "name", "department_id"]
    assert employees.primary_key == ["id"]
    refs = {(tuple(fk.columns), fk.referred_table) for fk in employees.foreign_keys}
    assert (("department_id",), "departments") in refs
    names = next(c for c in employees.columns if c.name == "name")
    assert len(names.samples) == 3
    assert set(names.samples) <= {"Ada", "Alan", "Grace", "Bob", "Carol", "Dan", "Eve", "Ann"}
    compact = described.compact()
    assert "department_id integer -> departments.id" in compact
    assert "canary" not in compact and "canary" not in described.text()
    assert "'Engineering'" in described.text()


@pytest.mark.unit
def test_compact_schema_fits_its_budget() -> None:
    from tools.sql import ColumnDescription, DatabaseDescription, TableDescription

    wide = [ColumnDescription(f"column_{i}", "varchar(200)", True, False) for i in range(20)]
    tables = [TableDescription(f"table_{i}", wide, [], []) for i in range(40)]
    text = DatabaseDescription("postgres", tables).compact(max_chars=1500)
    assert len(text) <= 1500
    assert text.endswith("more tables (see describe_database)")


@pytest.mark.integration
async def test_postgres_empty_allowlist_means_every_table_of_the_schema(
    fresh_database: FreshDatabase,
) -> None:
    with psycopg.connect(fresh_database.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA company")
        conn.execute("CREATE TABLE company.staff (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO company.staff VALUES (1, 'Ada')")
    db = SqlDatabase(f"{fresh_database.url}&schema=company", timeout=5)
    try:
        assert (await db.guard()).readable == frozenset({"staff"})
        assert (await db.run("SELECT name FROM staff")).data["rows"] == [["Ada"]]
        assert (await db.run("SELECT name FROM company.staff")).data["rows"] == [["Ada"]]
        with pytest.raises(ToolError, match=r"'public\.documents' is not readable"):
            await db.run("SELECT * FROM public.documents")
    finally:
        await db.close()


# --- The tools and failures of the database itself ------------------------------------------


@pytest.mark.integration
async def test_tools_run_through_the_registry_schema(company: Company) -> None:
    await company.db.describe()
    run_sql, describe_database = make_sql_tools(company.db)
    assert (run_sql.name, describe_database.name) == ("run_sql", "describe_database")
    assert "employees(id integer PK" in run_sql.description
    assert run_sql.schema()["function"]["parameters"]["required"] == ["query"]
    output = await run_sql.call(ToolContext(), {"query": "SELECT count(*) AS n FROM projects"})
    assert output.data == {"columns": ["n"], "rows": [[4]], "row_count": 1, "truncated": False}
    assert output.markdown.startswith("| n |")
    with pytest.raises(ToolError, match="not readable"):
        await run_sql.call(ToolContext(), {"query": "SELECT * FROM canary"})
    described = await describe_database.call(ToolContext(), {})
    assert {t["name"] for t in described.data["tables"]} == set(READABLE)


@pytest.mark.unit
def test_tool_description_without_a_known_schema_points_to_describe(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    run_sql, _ = make_sql_tools(SqlDatabase(f"sqlite:///{path}"))
    assert "Call describe_database" in run_sql.description


@pytest.mark.unit
def test_missing_sqlite_file_is_a_clear_fatal_error(tmp_path: Path) -> None:
    with pytest.raises(SqlUnavailableError, match="SQL database file not found"):
        SqlDatabase(f"sqlite:///{tmp_path / 'missing.db'}")
    assert issubclass(SqlUnavailableError, FatalToolError)
    with pytest.raises(ValueError, match="unsupported SQL URL scheme"):
        SqlDatabase("mysql://localhost/db")


@pytest.mark.integration
async def test_unreachable_server_is_a_clear_fatal_error(tmp_path: Path) -> None:
    db = SqlDatabase(f"postgresql://nobody@/nowhere?host={tmp_path}", timeout=1)
    try:
        with pytest.raises(SqlUnavailableError, match="SQL database unreachable") as failed:
            await db.run("SELECT 1")
        assert "\n" not in str(failed.value)
    finally:
        await db.close()
