"""Read-only SQL over PostgreSQL or SQLite, as tools the model can call.

:func:`make_sql_tools` turns a :class:`SqlDatabase` into ``run_sql`` and
``describe_database``. The model writes the query; which database, which tables and how
many rows come from the operator's settings, never from the model.

A query is kept read-only by three independent layers:

1. :class:`SqlGuard` (:mod:`tools.sql.guard`) parses it with sqlglot in the database's
   dialect and refuses anything but one SELECT over the readable tables, calling known-safe
   functions only. Each refusal is a :class:`~tools.errors.ToolError` that says what to
   change.
2. The runners (:mod:`tools.sql.runners`) execute the checked text in a way that cannot
   write: a read-only transaction and server-side cursor on PostgreSQL, a read-only file
   with an authorizer on SQLite, both under a time limit.
3. At most ``row_limit + 1`` rows are ever fetched.

A refused or failed query is a :class:`~tools.errors.ToolError` (one line, for the model);
a database that cannot be opened or reached is a :class:`~tools.errors.SqlUnavailableError`,
which ends the run.

Modules: :mod:`~tools.sql.guard` (the parser check), :mod:`~tools.sql.runners` (engines and
read-only execution), :mod:`~tools.sql.database` (:class:`SqlDatabase`: tables, schema
description, running a query), :mod:`~tools.sql.describe` (the description types),
:mod:`~tools.sql.results` (values and messages), :mod:`~tools.sql.tool` (the tools).
"""

from tools.errors import SqlUnavailableError
from tools.sql.database import SqlDatabase
from tools.sql.describe import (
    ColumnDescription,
    DatabaseDescription,
    ForeignKey,
    TableDescription,
)
from tools.sql.guard import SqlDialect, SqlGuard
from tools.sql.tool import make_sql_tools

__all__ = [
    "ColumnDescription",
    "DatabaseDescription",
    "ForeignKey",
    "SqlDatabase",
    "SqlDialect",
    "SqlGuard",
    "SqlUnavailableError",
    "TableDescription",
    "make_sql_tools",
]
