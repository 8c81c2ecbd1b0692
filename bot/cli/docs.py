"""Document commands: ``docs list``, ``docs show`` and ``docs delete``."""

from __future__ import annotations

import uuid
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.cli.common import echo_json, pass_settings, run_with_knowledge
from bot.knowledge import Knowledge
from bot.settings import Settings
from knowledge.store import DocumentInfo

__all__ = ["docs"]

_SHOWN = ("id", "collection", "title", "source", "version", "status", "chunks", "tables")


@click.group()
def docs() -> None:
    """List, show and delete documents."""


@docs.command("list")
@click.option("--collection", "-c", help="Only this collection.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def docs_list(settings: Settings, collection: str | None, as_json: bool) -> None:
    """Documents (current versions), newest first."""

    async def work(k: Knowledge) -> list[DocumentInfo]:
        if collection is not None:
            await k.store.get_collection(collection)  # a missing collection is an error
        return await k.store.list_documents(collection)

    documents = run_with_knowledge(settings, work)
    if as_json:
        echo_json([_doc_json(d) for d in documents])
        return
    table = Table(title="documents")
    for column in ("id", "collection", "title", "version", "chunks", "tables", "size"):
        table.add_column(column)
    for d in documents:
        row = (d.id, d.collection, d.title, d.version, d.chunks, d.tables, _size(d.size_bytes))
        table.add_row(*map(str, row))
    Console().print(table)


@docs.command("show")
@click.argument("document_id", type=click.UUID)
@click.option("--chunks", "with_chunks", is_flag=True, help="Also print every chunk.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def docs_show(settings: Settings, document_id: uuid.UUID, with_chunks: bool, as_json: bool) -> None:
    """One document and, with --chunks, its chunks."""

    async def work(k: Knowledge) -> tuple[DocumentInfo, list[Any]]:
        doc = await k.store.get_document(document_id)
        chunks = await k.store.document_chunks(document_id) if with_chunks else []
        return doc, chunks

    doc, chunks = run_with_knowledge(settings, work)
    data = _doc_json(doc)
    if with_chunks:
        data["chunks_list"] = [c.__dict__ for c in chunks]
    if as_json:
        echo_json(data)
        return
    for key in (*_SHOWN, "created_at"):
        click.echo(f"{key:>10}: {data[key]}")
    for c in chunks:
        where = ", ".join(p for p in (f"p. {c.page}" if c.page else "", c.section or "") if p)
        click.echo(f"\n--- chunk {c.ordinal} ({c.kind}, {c.token_count} tokens) {where}")
        click.echo(c.content)


@docs.command("delete")
@click.argument("document_id", type=click.UUID)
@pass_settings
def docs_delete(settings: Settings, document_id: uuid.UUID) -> None:
    """Delete a document, all its versions and chunks (an e-mail's attachments too)."""

    async def work(k: Knowledge) -> DocumentInfo:
        return await k.store.delete_document(document_id)

    doc = run_with_knowledge(settings, work)
    click.echo(f"deleted {doc.title or doc.source} ({doc.id}) from {doc.collection}")


def _doc_json(d: DocumentInfo) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "collection": d.collection,
        "title": d.title,
        "source": d.source,
        "mime_type": d.mime_type,
        "version": d.version,
        "status": d.status,
        "chunks": d.chunks,
        "tables": d.tables,
        "size_bytes": d.size_bytes,
        "uploaded_by": d.uploaded_by,
        "created_at": d.created_at.isoformat(),
    }


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"
