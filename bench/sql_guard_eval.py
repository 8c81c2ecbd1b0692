"""The SQL tool against real injection payloads and real analyst queries.

    .venv/bin/python bench/sql_guard_eval.py --data /work/shared/data [--json]

1. Loads the Chinook schema (``chinook/.../Chinook_PostgreSql.sql``) into a fresh embedded
   PostgreSQL, adds a ``canary`` table outside the allowlist (the 11 Chinook tables), and
   fingerprints every table, schema, function, role and large object.
2. Sends every payload of ``sqli_payloadbox`` through the real :class:`SqlDatabase` three
   ways: as the whole query, inside a string literal (``WHERE name = '<payload>'``) and
   after a numeric condition (``WHERE track_id = 1 <payload>``). Counts what the guard
   blocked, what ran, what the database rejected, what changed anything (fingerprint) and
   what read outside the allowlist (the canary's secret in a result, or the canary's scan
   counters in ``pg_stat_user_tables`` moving).
3. Takes the gold SELECTs of ``spider_dev_sql`` and reports how many pass the guard: those
   whose tables all exist in Chinook (checked and run against Chinook), and every query
   against its own Spider schema (``tables.json``) in the SQLite and PostgreSQL dialects,
   with the reasons for each refusal.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from bot.embedded_pg import EmbeddedPostgres
from tools.base import ToolError
from tools.sql import SqlDatabase, SqlGuard, SqlUnavailableError

CHINOOK_TABLES = [
    "album",
    "artist",
    "customer",
    "employee",
    "genre",
    "invoice",
    "invoice_line",
    "media_type",
    "playlist",
    "playlist_track",
    "track",
]
CANARY_SECRET = "canary-secret-5f0c2b"
EVAL_DB = "chinook_eval"
CONTEXTS = {
    "whole": "{p}",
    "string": "SELECT * FROM artist WHERE name = '{p}'",
    "numeric": "SELECT name FROM track WHERE track_id = 1 {p}",
}


# --- Chinook in an embedded PostgreSQL -------------------------------------------------------


def load_chinook(admin_url: str, url: str, script: Path) -> None:
    """A fresh ``chinook_eval`` database with Chinook, a canary table and a sequence."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{EVAL_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{EVAL_DB}"')
    text = script.read_text(encoding="utf-8")
    body = text.split("\\c chinook;", 1)[1]  # the script creates and enters its own database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(body)
        conn.execute("CREATE TABLE canary (id INTEGER PRIMARY KEY, secret TEXT NOT NULL)")
        conn.execute("INSERT INTO canary VALUES (1, %s)", (CANARY_SECRET,))
        conn.execute("CREATE SEQUENCE canary_seq")
        conn.execute("ANALYZE")


def fingerprint(url: str) -> str:
    """Every user table's content plus schemas, functions, roles, sequences, large objects."""
    parts: list[Any] = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        parts.append(tables)
        for schema, table in tables:
            parts.append(
                conn.execute(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                    f' FROM "{schema}"."{table}" t'
                ).fetchone()
            )
        for query in (
            "SELECT nspname FROM pg_namespace ORDER BY 1",
            "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE nspname = 'public' ORDER BY 1",
            "SELECT rolname, rolsuper FROM pg_roles ORDER BY 1",
            "SELECT count(*) FROM pg_largeobject_metadata",
            "SELECT last_value, is_called FROM canary_seq",
            "SELECT extname FROM pg_extension ORDER BY 1",
        ):
            parts.append(conn.execute(query).fetchall())
    return repr(parts)


def canary_scans(url: str) -> int:
    """How often the canary table has been scanned (sequential + index) so far."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE relname = 'canary'"
        ).fetchone()
    return int(row[0]) if row else 0


# --- Payloads ------------------------------------------------------------------------------


def read_payloads(folder: Path) -> tuple[int, list[str]]:
    """Total payload lines and the unique payloads (``__TIME__`` set to 5 seconds)."""
    lines: list[str] = []
    for path in sorted(folder.rglob("*.txt")):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        lines += [line.rstrip("\r\n") for line in text.splitlines() if line.strip()]
    unique = list(dict.fromkeys(line.replace("__TIME__", "5") for line in lines))
    return len(lines), unique


def reason_kind(message: str) -> str:
    """A short class for a refusal message, for the histogram."""
    for pattern, kind in (
        (r"could not be parsed", "unparseable"),
        (r"exactly one SQL statement", "not exactly one statement"),
        (r"only SELECT", "not a SELECT"),
        (r"system catalog", "system catalog"),
        (r"table '.*' is not readable", "table outside allowlist"),
        (r"function '.*' is not allowed", "denied function"),
        (r"not in the list of allowed functions", "unknown function"),
        (r"INTO", "SELECT INTO"),
        (r"locking clauses", "locking clause"),
        (r"not allowed, not even inside", "statement inside query"),
        (r"empty", "empty"),
    ):
        if re.search(pattern, message):
            return kind
    return message[:60]


@dataclass
class PayloadReport:
    """What happened to the payloads."""

    payload_lines: int = 0
    unique_payloads: int = 0
    attempts: int = 0
    blocked_by_guard: int = 0
    executed: int = 0
    executed_ok: int = 0
    rejected_by_database: int = 0
    changed_anything: int = 0
    read_outside_allowlist: int = 0
    canary_scans_during_run: int = 0
    payloads_blocked_in_every_context: int = 0
    by_context: dict[str, dict[str, int]] = field(default_factory=dict)
    refusal_reasons: dict[str, int] = field(default_factory=dict)
    database_errors: dict[str, int] = field(default_factory=dict)
    executed_examples: list[str] = field(default_factory=list)


async def run_payloads(db: SqlDatabase, url: str, payloads: list[str]) -> PayloadReport:
    report = PayloadReport(unique_payloads=len(payloads))
    guard = await db.guard()
    reasons: collections.Counter[str] = collections.Counter()
    db_errors: collections.Counter[str] = collections.Counter()
    blocked_per_payload: collections.Counter[int] = collections.Counter()
    before = fingerprint(url)
    await asyncio.sleep(1.5)  # let the fingerprint's own scans reach the statistics
    scans_before = canary_scans(url)
    for name, template in CONTEXTS.items():
        counts = collections.Counter[str]()
        for index, payload in enumerate(payloads):
            query = template.replace("{p}", payload)
            report.attempts += 1
            try:
                guard.check(query)
            except ToolError as refused:
                report.blocked_by_guard += 1
                counts["blocked"] += 1
                blocked_per_payload[index] += 1
                reasons[reason_kind(str(refused))] += 1
                continue
            report.executed += 1
            counts["executed"] += 1
            try:
                output = await db.run(query)
            except ToolError as failed:
                report.rejected_by_database += 1
                db_errors[re.sub(r'"[^"]*"', '"…"', str(failed))[:90]] += 1
                continue
            report.executed_ok += 1
            if len(report.executed_examples) < 8:
                report.executed_examples.append(query[:120])
            if CANARY_SECRET in json.dumps(output.data):
                report.read_outside_allowlist += 1
        report.by_context[name] = dict(counts)
    await db.close()  # backends exit and flush their statistics
    await asyncio.sleep(1.5)
    report.canary_scans_during_run = canary_scans(url) - scans_before
    report.read_outside_allowlist += report.canary_scans_during_run
    report.changed_anything = int(fingerprint(url) != before)
    report.payloads_blocked_in_every_context = sum(
        1 for i in range(len(payloads)) if blocked_per_payload[i] == len(CONTEXTS)
    )
    report.refusal_reasons = dict(reasons.most_common())
    report.database_errors = dict(db_errors.most_common(10))
    return report


# --- Spider --------------------------------------------------------------------------------


def read_spider(folder: Path) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """(db_id, query) pairs of the dev set, and each Spider database's table names."""
    text = (folder / "evaluation_examples" / "dev.sql").read_text(encoding="utf-8")
    pairs = re.findall(r"^Question \d+:.*\|\|\| (\S+)\s*\nSQL:\s+(.+)$", text, flags=re.M)
    schemas = json.loads((folder / "evaluation_examples" / "examples" / "tables.json").read_text())
    tables = {s["db_id"]: list(s["table_names_original"]) for s in schemas}
    return [(db_id, sql.strip()) for db_id, sql in pairs], tables


def tables_of(query: str, dialect: str) -> set[str] | None:
    """Lower-case names of the real tables a query reads (WITH names excluded)."""
    try:
        tree = Dialect.get_or_raise(dialect).parse(query)[0]
    except Exception:
        return None
    if tree is None:
        return None
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table) if t.name.lower() not in ctes}


async def run_spider(
    db: SqlDatabase, pairs: list[tuple[str, str]], schemas: dict[str, list[str]]
) -> dict[str, Any]:
    chinook = set(CHINOOK_TABLES)
    fits = [(d, q) for d, q in pairs if (names := tables_of(q, "sqlite")) and names <= chinook]
    chinook_guard = await db.guard()
    passed, ran, refused = 0, 0, []
    for _, query in fits:
        try:
            chinook_guard.check(query)
        except ToolError as exc:
            refused.append({"query": query, "reason": str(exc)})
            continue
        passed += 1
        try:
            await db.run(query)
            ran += 1
        except ToolError:
            pass  # Spider's columns differ from Chinook's; the guard is what is measured
    own: dict[str, Any] = {}
    for dialect in ("sqlite", "postgres"):
        reasons: collections.Counter[str] = collections.Counter()
        examples: dict[str, str] = {}
        ok = 0
        for db_id, query in pairs:
            own_tables = schemas.get(db_id, [])
            if dialect == "postgres":  # tables created from unquoted names are stored folded
                guard = SqlGuard("postgres", frozenset(n.lower() for n in own_tables), "public")
            else:
                guard = SqlGuard("sqlite", frozenset(own_tables), "main")
            try:
                guard.check(query)
                ok += 1
            except ToolError as exc:
                kind = reason_kind(str(exc))
                reasons[kind] += 1
                examples.setdefault(kind, f"{query[:110]} -> {exc}")
        own[dialect] = {
            "passed": ok,
            "refused": len(pairs) - ok,
            "reasons": dict(reasons),
            "examples": examples,
        }
    return {
        "dev_queries": len(pairs),
        "chinook_db_ids_in_dev": sorted({d for d, _ in pairs if "chinook" in d.lower()}),
        "fit_chinook_tables": len(fits),
        "fit_chinook_passed_guard": passed,
        "fit_chinook_ran_on_chinook": ran,
        "fit_chinook_refused": refused,
        "own_schema": own,
    }


# --- Main ----------------------------------------------------------------------------------


async def evaluate(data: Path, workdir: Path) -> dict[str, Any]:
    pg = EmbeddedPostgres(workdir)
    pg.start()
    try:
        admin = pg.url("postgres", driver=None)
        url = pg.url(EVAL_DB, driver=None)
        script = data / "chinook/ChinookDatabase/DataSources/Chinook_PostgreSql.sql"
        load_chinook(admin, url, script)
        total, payloads = read_payloads(data / "sqli_payloadbox" / "Intruder")
        db = SqlDatabase(url, allowed_tables=CHINOOK_TABLES, row_limit=50, timeout=2.0)
        report = await run_payloads(db, url, payloads)
        report.payload_lines = total
        pairs, schemas = read_spider(data / "spider_dev_sql")
        spider_db = SqlDatabase(url, allowed_tables=CHINOOK_TABLES, row_limit=50, timeout=2.0)
        try:
            spider = await run_spider(spider_db, pairs, schemas)
        finally:
            await spider_db.close()
        return {"payloads": report.__dict__, "spider": spider}
    finally:
        pg.stop()


def summary(result: dict[str, Any]) -> str:
    p, s = result["payloads"], result["spider"]
    lines = [
        f"payloads: {p['payload_lines']} lines, {p['unique_payloads']} unique,"
        f" {p['attempts']} attempts ({len(CONTEXTS)} contexts)",
        f"  blocked by guard: {p['blocked_by_guard']}   executed: {p['executed']}"
        f" (ok {p['executed_ok']}, rejected by database {p['rejected_by_database']})",
        f"  changed anything: {p['changed_anything']}"
        f"   read outside allowlist: {p['read_outside_allowlist']}"
        f" (canary scans {p['canary_scans_during_run']})",
        f"  by context: {p['by_context']}",
        f"  refusal reasons: {p['refusal_reasons']}",
        f"spider dev: {s['dev_queries']} queries;"
        f" chinook db ids among them: {s['chinook_db_ids_in_dev'] or 'none'}",
        f"  tables all in Chinook: {s['fit_chinook_tables']}, passed guard:"
        f" {s['fit_chinook_passed_guard']}, ran on Chinook: {s['fit_chinook_ran_on_chinook']}",
    ]
    for item in s["fit_chinook_refused"]:
        lines.append(f"    refused: {item['query']} -> {item['reason']}")
    for dialect, own in s["own_schema"].items():
        lines.append(
            f"  own schema ({dialect}): passed {own['passed']}, refused {own['refused']}"
            f" {own['reasons']}"
        )
        for kind, example in own["examples"].items():
            lines.append(f"    {kind}: {example}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args()
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" noise
    with tempfile.TemporaryDirectory(prefix="sql-guard-eval-") as workdir:
        try:
            result = asyncio.run(evaluate(args.data, Path(workdir)))
        except SqlUnavailableError as exc:
            raise SystemExit(f"error: {exc}") from None
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else summary(result))


if __name__ == "__main__":
    main()
