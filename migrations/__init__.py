"""Alembic revisions for every package's tables (run through ``bot.migrate``)."""
