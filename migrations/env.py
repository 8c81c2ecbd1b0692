"""Alembic environment: runs on the connection that ``bot.migrate`` hands over."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `deskbot db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=config.attributes["target_metadata"],
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
