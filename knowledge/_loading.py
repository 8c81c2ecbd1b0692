"""The loading side of an ingest: files read, hashed and parsed ahead, handed on in order.

Parsing runs in worker processes (:mod:`knowledge._parse_pool`: a parser that hangs or
crashes is killed without harming this process). A file whose bytes are unchanged since its
current version is reported unchanged before parsing.

A worker that finishes takes the next file at once, whatever is still parsing ahead of it:
waiting for the files in order left a core idle behind each large file (the 52 pdfplumber
test PDFs' parse times replayed on two workers: 62 s in lockstep, 44 s this way with four
ahead). Files loaded but not yet handed on stay under ``parse_ahead``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from knowledge._batch import (
    FileResult,
    StepError,
    printable_path,
    read_file,
    refused,
    step,
    unchanged,
)
from knowledge._parse_pool import ParsePool
from knowledge.documents import ParsedDocument
from knowledge.errors import ParseError
from knowledge.store import CollectionInfo, DocumentInfo, KnowledgeStore

__all__ = ["FileLoader", "Item", "Loaded"]


@dataclass(frozen=True)
class Loaded:
    """A file read and parsed, waiting to be embedded and written."""

    shown: str
    source: str
    digest: str
    size_bytes: int
    doc: ParsedDocument
    current: DocumentInfo | None  # the source's active version, looked up once per file
    seconds: float


# What the loader hands on for each file; an exception is the collection's, not a file's.
Item = Loaded | FileResult | Exception


class FileLoader:
    """Loads files for one ingestor; :meth:`aclose` stops its parser processes."""

    def __init__(
        self,
        store: KnowledgeStore,
        *,
        max_bytes: int,
        parse_timeout: float,
        parse_memory_mb: int | None,
        parse_ahead: int,
        parse_workers: int,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.parse_timeout = parse_timeout
        self.parse_ahead = max(1, parse_ahead)
        self.parse_workers = max(1, parse_workers)
        self._parses = ParsePool(memory_mb=parse_memory_mb)

    async def aclose(self) -> None:
        """Stop the parser processes (started again if the loader is used after)."""
        await self._parses.aclose()

    async def load_all(
        self,
        files: list[Path],
        collection: CollectionInfo,
        out: asyncio.Queue[Item],
        sources: Mapping[Path, str],
    ) -> None:
        """Load the files into ``out`` in order, ``parse_workers`` at a time; an error that
        is not one file's ends the queue (the consumer raises it)."""
        loads: dict[int, asyncio.Task[Loaded | FileResult]] = {}
        started = 0
        try:
            for index in range(len(files)):
                while True:
                    running = [task for task in loads.values() if not task.done()]
                    while (
                        started < len(files)
                        and len(running) < self.parse_workers
                        and len(loads) < self.parse_ahead
                    ):
                        path = files[started]
                        task = asyncio.create_task(self._load(path, collection, sources.get(path)))
                        loads[started] = task
                        running.append(task)
                        started += 1
                    if loads[index].done():
                        break
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                try:
                    item: Item = loads.pop(index).result()
                except Exception as exc:
                    item = exc
                await out.put(item)
                if isinstance(item, Exception):
                    return
        finally:
            for task in loads.values():  # stopped early: the parses in flight go too
                task.cancel()
            await asyncio.gather(*loads.values(), return_exceptions=True)

    async def _load(
        self, path: Path, collection: CollectionInfo, name: str | None
    ) -> Loaded | FileResult:
        """Read, hash and parse a file, or say why not (or that it is unchanged)."""
        began = time.perf_counter()
        shown = printable_path(path)
        try:
            with step("reading"):
                digest, size, source = await asyncio.to_thread(read_file, path, self.max_bytes)
            source = name or source
            with step("looking up the current version"):
                current = await self.store.active_document(collection, source)
            if current is not None and current.content_hash == digest:
                return unchanged(shown, current, began)
            with step("parsing"):
                doc = await self._parses.parse(
                    path, max_bytes=self.max_bytes, timeout=self.parse_timeout
                )
        except (ParseError, StepError) as exc:
            return refused(shown, exc, began)
        return Loaded(shown, source, digest, size, doc, current, time.perf_counter() - began)
