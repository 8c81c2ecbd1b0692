"""Collection commands: ``collections list``, ``collections access`` and ``collections delete``.

Who may read a collection is its visibility and two lists of ids (see
:class:`knowledge.search.Scope`): a public collection is read everywhere, or only in its
allowed channels when it names some; a private one only in a DM by users holding one of its
roles (a Slack user id; a Discord user or role id), or by anyone in one of its channels.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.cli.common import echo_json, pass_settings, run_with_knowledge
from bot.knowledge import Knowledge
from bot.readers import readers
from bot.settings import Settings
from knowledge.store import CollectionInfo

__all__ = ["collections_group"]

# Slack ids (U0123ABC, C0123ABC), Discord snowflakes, and the plain names tests and small
# deployments use: letters, digits, ``_.-``; never spaces, commas or braces.
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def _ids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not _ID.fullmatch(value):
            raise click.BadParameter(
                f"{value!r} is not an id (letters, digits, '_', '.', '-'; 1 to 100)", ctx, param
            )
    return values


@click.group("collections")
def collections_group() -> None:
    """List collections, change who may read them, delete them."""


@collections_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def collections_list(settings: Settings, as_json: bool) -> None:
    """Every collection with its model, size and readers."""

    async def work(k: Knowledge) -> tuple[list[CollectionInfo], dict[uuid.UUID, int]]:
        return await k.store.list_collections(), await k.store.waiting_for_vectors()

    found, waiting = run_with_knowledge(settings, work)
    if as_json:
        echo_json([{**_json(c), "waiting_for_vectors": waiting.get(c.id, 0)} for c in found])
        return
    table = Table(title="collections")
    # Waiting: chunks a deferred ingest stored whose fill has not reached them (or failed:
    # `deskbot reindex NAME --missing`).
    for column in ("name", "chunks", "waiting for vectors", "embedder", "readers"):
        table.add_column(column)
    for c in found:
        count = str(waiting.get(c.id, 0))
        table.add_row(c.name, str(c.chunk_count), count, c.embedding_model, readers(c))
    Console().print(table)


@collections_group.command("access")
@click.argument("name")
@click.option("--public", "visibility", flag_value="public", help="Readable by everyone.")
@click.option("--private", "visibility", flag_value="private", help="Readable by its roles.")
@click.option("--allow-role", multiple=True, callback=_ids, help="User or role id (repeat).")
@click.option("--remove-role", multiple=True, callback=_ids, help="Take a role off (repeat).")
@click.option("--allow-channel", multiple=True, callback=_ids, help="Channel id (repeat).")
@click.option("--remove-channel", multiple=True, callback=_ids, help="Take a channel off.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def collections_access(
    settings: Settings,
    name: str,
    visibility: str | None,
    allow_role: tuple[str, ...],
    remove_role: tuple[str, ...],
    allow_channel: tuple[str, ...],
    remove_channel: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show or change who may read collection NAME.

    Without options, prints who may read it now. A private collection is read in a DM by
    users holding one of its roles, or by anyone in one of its channels; a public one
    everywhere, or only in its channels when it names some.
    """
    changes = visibility or allow_role or remove_role or allow_channel or remove_channel

    async def work(k: Knowledge) -> CollectionInfo:
        if not changes:
            return await k.store.get_collection(name)
        return await k.store.set_access(
            name,
            visibility=visibility,
            add_roles=allow_role,
            remove_roles=remove_role,
            add_channels=allow_channel,
            remove_channels=remove_channel,
        )

    found = run_with_knowledge(settings, work)
    if as_json:
        echo_json(_json(found))
    else:
        click.echo(f"{found.name}: {readers(found)}")


@collections_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def collections_delete(settings: Settings, name: str, yes: bool) -> None:
    """Delete collection NAME with every document and chunk in it."""

    async def count(k: Knowledge) -> CollectionInfo:
        return await k.store.get_collection(name)

    found = run_with_knowledge(settings, count)
    if not yes:
        click.confirm(f"delete {name} and its {found.chunk_count} chunks?", abort=True)

    async def work(k: Knowledge) -> None:
        await k.store.delete_collection(name)

    run_with_knowledge(settings, work)
    click.echo(f"deleted collection {name} ({found.chunk_count} chunks)")


def _json(c: CollectionInfo) -> dict[str, Any]:
    return {
        "name": c.name,
        "visibility": c.visibility,
        "allowed_roles": c.allowed_roles,
        "allowed_channels": c.allowed_channels,
        "embedding_model": c.embedding_model,
        "embedding_dim": c.embedding_dim,
        "chunks": c.chunk_count,
        "created_at": c.created_at.isoformat(),
    }
