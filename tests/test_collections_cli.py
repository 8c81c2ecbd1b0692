"""``deskbot collections``: who may read a collection, set from the command line.

The CLI runs in-process (the command's work, not the process start, is under test) on a
fresh database; the effect is checked through the same :class:`Scope` search uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from click.testing import CliRunner, Result

from bot.cli import cli as deskbot
from bot.ingesting import ingest_files
from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import Database
from knowledge.search import Scope
from knowledge.store import CollectionInfo
from knowledge.store._records import collection_info
from tests.conftest import FreshDatabase

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, fresh_database: FreshDatabase) -> Run:
    env = {"DESKBOT_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": fresh_database.url}

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(deskbot, list(args), env=env, input=input)

    with psycopg.connect(fresh_database.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO collections (name, visibility, embedding_model, embedding_dim)"
            " VALUES ('hr', 'public', 'test/model', 4)"
        )
    return invoke


def _info(result: Result) -> CollectionInfo:
    """The ``--json`` output as the value search's :class:`Scope` checks."""
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    row = SimpleNamespace(**data, id=None, description="", chunk_count=0, lexical_terms=0)
    return collection_info(row)


def test_private_collection_opened_to_a_role_and_a_channel(run: Run) -> None:
    hr = _info(run("collections", "access", "hr", "--private", "--allow-role", "U1", "--json"))
    assert (hr.visibility, hr.allowed_roles, hr.allowed_channels) == ("private", ["U1"], [])
    assert Scope(user_id="U1", roles=frozenset({"U1"}), private_conversation=True).can_read(hr)
    assert not Scope(user_id="U2", roles=frozenset({"U2"}), private_conversation=True).can_read(hr)
    assert not Scope(channel_id="C9", roles=frozenset({"U1"})).can_read(hr)  # not in a DM

    hr = _info(
        run(
            "collections", "access", "hr",
            "--allow-channel", "C9", "--allow-role", "U2", "--allow-role", "U2",
            "--remove-role", "U1", "--json",
        )
    )  # fmt: skip
    assert (hr.allowed_roles, hr.allowed_channels) == (["U2"], ["C9"])
    assert Scope(channel_id="C9", roles=frozenset({"U7"})).can_read(hr)
    assert not Scope(user_id="U1", roles=frozenset({"U1"}), private_conversation=True).can_read(hr)

    shown = run("collections", "access", "hr")
    assert shown.output == "hr: private: in a DM by U2; anyone in C9\n"
    listed = run("collections", "list", "--json")
    assert [(c["name"], c["allowed_roles"]) for c in json.loads(listed.output)] == [("hr", ["U2"])]


def test_public_with_channels_is_read_only_there(run: Run) -> None:
    hr = _info(run("collections", "access", "hr", "--allow-channel", "C1", "--json"))
    assert hr.visibility == "public"
    assert Scope(channel_id="C1").can_read(hr)
    assert not Scope(channel_id="C2").can_read(hr)
    assert run("collections", "access", "hr", "--remove-channel", "C1").output == (
        "hr: public, everywhere\n"
    )


def test_bad_input_is_one_line_and_changes_nothing(run: Run) -> None:
    missing = run("collections", "access", "nope", "--private")
    assert missing.exit_code != 0
    assert missing.output.strip().splitlines() == ["deskbot: no collection named 'nope'"]
    bad_id = run("collections", "access", "hr", "--allow-role", "U1, U2")
    assert bad_id.exit_code == 2
    assert "is not an id" in bad_id.output
    assert "Traceback" not in missing.output + bad_id.output
    hr = _info(run("collections", "access", "hr", "--json"))
    assert (hr.visibility, hr.allowed_roles) == ("public", [])


def test_delete_asks_first(run: Run) -> None:
    kept = run("collections", "delete", "hr", input="n\n")
    assert kept.exit_code != 0
    assert json.loads(run("collections", "list", "--json").output)[0]["name"] == "hr"
    gone = run("collections", "delete", "hr", "--yes")
    assert gone.output == "deleted collection hr (0 chunks)\n"
    assert json.loads(run("collections", "list", "--json").output) == []


async def test_a_new_private_collection_is_readable_by_its_uploader(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    knowledge = make_knowledge(make_settings(), database)
    try:
        await ingest_files(knowledge, "legal", [], private=True, user="U5")
        await ingest_files(knowledge, "legal", [], private=True, user="U6")  # not added
        legal = await knowledge.store.get_collection("legal")
    finally:
        await knowledge.ingestor.aclose()
    assert (legal.visibility, legal.allowed_roles) == ("private", ["U5"])
    assert Scope(user_id="U5", roles=frozenset({"U5"}), private_conversation=True).can_read(legal)
    assert not Scope(roles=frozenset({"U6"}), private_conversation=True).can_read(legal)
