"""Knowledge commands: ``ingest``, ``search``, ``reindex`` and ``eval retrieval``.

Tables and progress bars go to the terminal (progress on stderr); ``--json`` prints one
JSON document on stdout for scripts. ``ingest`` exits 1 when some file was refused.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bot.cli.common import echo_json, pass_settings, progress_bars, run_with_knowledge
from bot.cli.exits import ExitCode
from bot.ingesting import IngestSummary, ingest_files
from bot.knowledge import Knowledge
from bot.rendering import ranked_sources, source_line
from bot.settings import Settings
from knowledge.ingest import FileResult
from knowledge.ingest import Progress as IngestProgress
from knowledge.search import Mode, Scope, SearchResult

__all__ = ["eval_group", "ingest", "reindex", "search"]

MODES = ("hybrid", "dense", "lexical")
_MAX_UNSUPPORTED_ROWS = 5
_NUMBERS = ("chunks", "tables", "embedded")


# --- ingest -----------------------------------------------------------------------------


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

    def vectors(self, done: int, total: int) -> None:
        # Every file is stored and searchable; the batch's chunks get their vectors now.
        label = "  vectors (the files are searchable already)"
        self.progress.update(self.chunks, description=label, completed=done, total=total)
        self.progress.update(self.chunks, visible=done < total)


def _results_table(results: list[FileResult]) -> Table:
    """One row per file; more than a few unsupported files fold into one row by type."""
    table = Table(title="ingest", show_lines=False)
    for column in ("file", "status", *_NUMBERS, "note"):
        table.add_column(column, justify="right" if column in _NUMBERS else "left")
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
        note = f"unsupported file types: {listed} (--json lists each)"
        table.add_row(f"{len(unsupported):,} other files", "refused", "0", "0", "0", note)
    return table


@click.command()
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

    async def work(k: Knowledge) -> IngestSummary:
        with progress_bars(err) as progress:
            return await ingest_files(
                k, collection, paths, private=private, progress=_Bars(progress)
            )

    summary = run_with_knowledge(settings, work)
    if as_json:
        echo_json([r.__dict__ for r in summary.files])
    else:
        Console().print(_results_table(list(summary.files)))
        click.echo(summary.counts())
    if summary.refused:
        sys.exit(ExitCode.FAILED)


# --- search -----------------------------------------------------------------------------


@click.command()
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

    results = run_with_knowledge(settings, work)
    if as_json:
        echo_json([_result_json(r) for r in results])
        return
    if not results:
        click.echo("Nothing relevant found.")
        return
    for result, source in zip(results, ranked_sources(results), strict=True):
        click.echo(f"{source_line(source)}  ({result.citation.collection}, {result.score:.3f})")
        click.echo(f"    {result.citation.snippet}")


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


# --- reindex ----------------------------------------------------------------------------


@click.command()
@click.argument("collection")
@click.option(
    "--missing",
    is_flag=True,
    help="Only embed the chunks still without a vector (what a failed fill left).",
)
@pass_settings
def reindex(settings: Settings, collection: str, missing: bool) -> None:
    """Re-embed a collection with the configured embedder."""
    from knowledge.reindex import fill_vectors, reindex_collection

    err = Console(stderr=True)
    run = fill_vectors if missing else reindex_collection

    async def work(k: Knowledge) -> int:
        with progress_bars(err) as progress:
            label = "embedding what is missing in" if missing else "re-embedding"
            task = progress.add_task(f"{label} {collection}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return await run(k.store, k.embedder, collection, on_progress=advance)

    count = run_with_knowledge(settings, work)
    verb = "embedded" if missing else "re-embedded"
    click.echo(f"{verb} {count} chunks of {collection} with {settings.embedder}")


# --- eval retrieval ---------------------------------------------------------------------


@click.group("eval")
def eval_group() -> None:
    """Evaluate retrieval quality on a labelled dataset."""


@eval_group.command("retrieval")
@click.option("--format", "fmt", type=click.Choice(("trec", "beir", "korquad")), required=True)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--mode", type=click.Choice((*MODES, "all")), default="all", show_default=True)
@click.option(
    "--deferred",
    is_flag=True,
    help="Score search as a deferred ingest leaves it before its fill: no stored vectors, "
    "hybrid embeds its best lexical candidates on demand.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {mode: {metric: value}}.")
@pass_settings
def eval_retrieval(
    settings: Settings, fmt: str, path: Path, mode: str, deferred: bool, as_json: bool
) -> None:
    """Build a throwaway collection from a dataset and score every query."""
    from knowledge.evaluation import METRICS, load_dataset
    from knowledge.retrieval_eval import run_retrieval_eval

    dataset = load_dataset(fmt, path)  # type: ignore[arg-type]
    modes = list(MODES) if mode == "all" else [mode]
    err = Console(stderr=True)

    async def work(k: Knowledge) -> dict[str, dict[str, float]]:
        with progress_bars(err) as progress:
            task = progress.add_task("", total=None)

            def report(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage, completed=done, total=total)

            return await run_retrieval_eval(
                dataset,
                k.store,
                k.searcher,  # the production searcher: what users get is what is measured
                k.ingestor,
                modes=modes,  # type: ignore[arg-type]
                deferred=deferred,
                on_progress=report,
            )

    scores = run_with_knowledge(settings, work)
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    table = Table(
        title=f"{dataset.name}: {len(dataset.queries)} queries, {len(dataset.documents)} documents"
    )
    table.add_column("mode")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for name, values in scores.items():
        table.add_row(name, *(f"{values[m]:.4f}" for m in METRICS))
    Console().print(table)
