"""The ``run_sql`` and ``describe_database`` tools over one :class:`SqlDatabase`."""

from __future__ import annotations

import dataclasses

from tools.base import Tool, ToolOutput
from tools.sql.database import SqlDatabase
from tools.sql.describe import DatabaseDescription

__all__ = ["make_sql_tools"]


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
