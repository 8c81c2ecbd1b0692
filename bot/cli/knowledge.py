"""Knowledge commands: ``ingest``, ``search``, ``docs``, ``reindex`` and ``eval retrieval``.

Tables and progress bars go to the terminal; ``--json`` prints one JSON document on stdout
for scripts. Exit codes: 0 success, 1 when some file was refused or a thing was not found,
2 for usage and configuration errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.knowledge import Knowledge, make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.ingest import FileResult
from knowledge.ingest import Progress as IngestProgress
from knowledge.search import Mode, Scope, SearchResult

__all__ = ["register"]

T = TypeVar("T")
MODES = ("hybrid", "dense", "lexical")


@asynccontextmanager
async def _knowledge(settings: Settings) -> AsyncIterator[Knowledge]:
    database = await open_database(settings)
    try:
        yield make_knowledge(settings, database)
    finally:
        await database.close()


def _run(settings: Settings, work: Callable[[Knowledge], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        async with _knowledge(settings) as knowledge:
            return await work(knowledge)

    return asyncio.run(go())


class _Bars(IngestProgress):
    """Rich progress: one bar for the files, one for the current file's chunks."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.files = progress.add_task("files", total=None)
        self.chunks = progress.add_task("", total=None, visible=False)

    def file_started(self, path: str, index: int, total: int) -> None:
        self.progress.update(self.files, total=total, completed=index)
        name = Path(path).name
        self.progress.update(self.chunks, description=f"  {name}", completed=0, total=None)

    def chunks_total(self, path: str, total: int) -> None:
        self.progress.update(self.chunks, total=total, visible=total > 0)

    def chunks_done(self, path: str, count: int) -> None:
        self.progress.advance(self.chunks, count)

    def file_finished(self, result: FileResult) -> None:
        self.progress.advance(self.files)
        self.progress.update(self.chunks, visible=False)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _results_table(results: list[FileResult]) -> Table:
    table = Table(title="ingest", show_lines=False)
    for column in ("file", "status", "chunks", "tables", "embedded", "note"):
        table.add_column(
            column, justify="right" if column in ("chunks", "tables", "embedded") else "left"
        )
    unsupported = [r for r in results if r.reason == "unsupported"]
    folded = len(unsupported) > _MAX_UNSUPPORTED_ROWS
    for r in results:
        if folded and r.reason == "unsupported":
            continue
        note = r.detail or (f"version {r.version}" if r.version else "")
        # The name fits the terminal; --json has the full path.
        table.add_row(
            Path(r.path).name, r.status, str(r.chunks), str(r.tables), str(r.embedded), note
        )
    if folded:
        # A folder of images and binaries would otherwise bury the files that matter.
        kinds = Counter(Path(r.path).suffix.lower() or "(no extension)" for r in unsupported)
        listed = ", ".join(f"{kind} {count:,}" for kind, count in kinds.most_common())
        table.add_row(
            f"{len(unsupported):,} other files",
            "refused",
            "0",
            "0",
            "0",
            f"unsupported file types: {listed} (--json lists each)",
        )
    return table


_UNSUPPORTED = "unsupported file type"
_MAX_UNSUPPORTED_ROWS = 5


def register(cli: click.Group, pass_settings: Callable[..., Any]) -> None:
    """Add the knowledge commands to the ``deskbot`` group."""

    @cli.command()
    @click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--collection", "-c", required=True, help="Collection to add the files to.")
    @click.option("--private", is_flag=True, help="Create the collection as private.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_settings
    def ingest(
        settings: Settings, paths: tuple[Path, ...], collection: str, private: bool, as_json: bool
    ) -> None:
        """Add files and folders (recursively) to a collection."""
        err = Console(stderr=True)

        async def work(k: Knowledge) -> list[FileResult]:
            info = await k.store.ensure_collection(
                collection, k.embedder, visibility="private" if private else None
            )
            with _progress(err) as progress:
                return await k.ingestor.ingest_paths(paths, info, progress=_Bars(progress))

        results = _run(settings, work)
        if as_json:
            click.echo(json.dumps([r.__dict__ for r in results], ensure_ascii=False, indent=2))
        else:
            Console().print(_results_table(results))
            refused = sum(r.status == "refused" for r in results)
            stored = sum(r.status == "stored" for r in results)
            click.echo(
                f"{stored} stored, {len(results) - stored - refused} unchanged, {refused} refused"
            )
        if any(r.status == "refused" for r in results):
            sys.exit(1)

    @cli.command()
    @click.argument("query")
    @click.option("--collection", "-c", "collections", multiple=True, help="Search only here.")
    @click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
    @click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_settings
    def search(
        settings: Settings,
        query: str,
        collections: tuple[str, ...],
        mode: str,
        k: int,
        as_json: bool,
    ) -> None:
        """Search the documents (the CLI reads every collection)."""

        async def work(kn: Knowledge) -> list[SearchResult]:
            return await kn.searcher.search(
                query,
                Scope.everything(),
                k=k,
                mode=cast(Mode, mode),
                collections=collections or None,
            )

        results = _run(settings, work)
        if as_json:
            click.echo(json.dumps([_result_json(r) for r in results], ensure_ascii=False, indent=2))
            return
        if not results:
            click.echo("Nothing relevant found.")
            return
        for rank, r in enumerate(results, start=1):
            c = r.citation
            where = " — ".join(
                part for part in (c.title, f"p. {c.page}" if c.page else None, c.section) if part
            )
            click.echo(f"[{rank}] {r.score:.3f}  {where}  ({c.collection})")
            click.echo(f"    {c.snippet}")

    @cli.group()
    def docs() -> None:
        """List, show and delete documents."""

    @docs.command("list")
    @click.option("--collection", "-c", help="Only this collection.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_settings
    def docs_list(settings: Settings, collection: str | None, as_json: bool) -> None:
        """Documents (current versions), newest first."""

        async def work(k: Knowledge) -> list[Any]:
            if collection is not None:
                await k.store.get_collection(collection)
            return await k.store.list_documents(collection)

        documents = _run(settings, work)
        if as_json:
            click.echo(json.dumps([_doc_json(d) for d in documents], ensure_ascii=False, indent=2))
            return
        table = Table(title="documents")
        for column in ("id", "collection", "title", "version", "chunks", "tables", "size"):
            table.add_column(column)
        for d in documents:
            table.add_row(
                str(d.id),
                d.collection,
                d.title,
                str(d.version),
                str(d.chunks),
                str(d.tables),
                _size(d.size_bytes),
            )
        Console().print(table)

    @docs.command("show")
    @click.argument("document_id", type=click.UUID)
    @click.option("--chunks", "with_chunks", is_flag=True, help="Also print every chunk.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_settings
    def docs_show(
        settings: Settings, document_id: uuid.UUID, with_chunks: bool, as_json: bool
    ) -> None:
        """One document and, with --chunks, its chunks."""

        async def work(k: Knowledge) -> tuple[Any, list[Any]]:
            doc = await k.store.get_document(document_id)
            chunks = await k.store.document_chunks(document_id) if with_chunks else []
            return doc, chunks

        doc, chunks = _run(settings, work)
        data = _doc_json(doc)
        if with_chunks:
            data["chunks_list"] = [c.__dict__ for c in chunks]
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
            return
        for key in (
            "id",
            "collection",
            "title",
            "source",
            "version",
            "status",
            "chunks",
            "tables",
            "created_at",
        ):
            click.echo(f"{key:>10}: {data[key]}")
        for c in chunks:
            where = ", ".join(p for p in (f"p. {c.page}" if c.page else "", c.section or "") if p)
            click.echo(f"\n--- chunk {c.ordinal} ({c.kind}, {c.token_count} tokens) {where}")
            click.echo(c.content)

    @docs.command("delete")
    @click.argument("document_id", type=click.UUID)
    @pass_settings
    def docs_delete(settings: Settings, document_id: uuid.UUID) -> None:
        """Delete a document, all its versions and chunks."""

        async def work(k: Knowledge) -> Any:
            return await k.store.delete_document(document_id)

        doc = _run(settings, work)
        click.echo(f"deleted {doc.title or doc.source} ({doc.id}) from {doc.collection}")

    @cli.command()
    @click.argument("collection")
    @pass_settings
    def reindex(settings: Settings, collection: str) -> None:
        """Re-embed a collection with the configured embedder."""
        from knowledge.reindex import reindex_collection

        err = Console(stderr=True)

        async def work(k: Knowledge) -> int:
            with _progress(err) as progress:
                task = progress.add_task(f"re-embedding {collection}", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                return await reindex_collection(
                    k.store, k.embedder, collection, on_progress=advance
                )

        count = _run(settings, work)
        click.echo(f"re-embedded {count} chunks of {collection} with {settings.embedder}")

    @cli.group("eval")
    def eval_group() -> None:
        """Evaluate retrieval quality on a labelled dataset."""

    @eval_group.command("retrieval")
    @click.option("--format", "fmt", type=click.Choice(("trec", "beir", "korquad")), required=True)
    @click.argument("path", type=click.Path(exists=True, path_type=Path))
    @click.option("--mode", type=click.Choice((*MODES, "all")), default="all", show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print {mode: {metric: value}}.")
    @pass_settings
    def eval_retrieval(settings: Settings, fmt: str, path: Path, mode: str, as_json: bool) -> None:
        """Build a throwaway collection from a dataset and score every query."""
        from knowledge.evaluation import METRICS, load_dataset
        from knowledge.retrieval_eval import run_retrieval_eval

        dataset = load_dataset(fmt, path)  # type: ignore[arg-type]
        modes = list(MODES) if mode == "all" else [mode]
        err = Console(stderr=True)

        async def work(k: Knowledge) -> dict[str, dict[str, float]]:
            with _progress(err) as progress:
                task = progress.add_task("", total=None)

                def report(stage: str, done: int, total: int) -> None:
                    progress.update(task, description=stage, completed=done, total=total)

                return await run_retrieval_eval(
                    dataset,
                    k.store,
                    k.searcher,  # the production searcher: what users get is what is measured
                    k.ingestor,
                    modes=modes,  # type: ignore[arg-type]
                    on_progress=report,
                )

        scores = _run(settings, work)
        if as_json:
            click.echo(json.dumps(scores, indent=2))
            return
        table = Table(
            title=f"{dataset.name}: {len(dataset.queries)} queries, "
            f"{len(dataset.documents)} documents"
        )
        table.add_column("mode")
        for metric in METRICS:
            table.add_column(metric, justify="right")
        for name, values in scores.items():
            table.add_row(name, *(f"{values[m]:.4f}" for m in METRICS))
        Console().print(table)


def _result_json(r: SearchResult) -> dict[str, Any]:
    c = r.citation
    return {
        "chunk_id": r.chunk_id,
        "kind": r.kind,
        "score": r.score,
        "dense_score": r.dense_score,
        "lexical_score": r.lexical_score,
        "content": r.content,
        "citation": {
            "document_id": str(c.document_id),
            "title": c.title,
            "source": c.source,
            "collection": c.collection,
            "page": c.page,
            "section": c.section,
            "snippet": c.snippet,
        },
    }


def _doc_json(d: Any) -> dict[str, Any]:
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
