"""The ingest pipeline: load -> parse -> chunk -> analyze -> embed -> write, file by file.

Each step has one job. Files are read and parsed in the ingestor's worker processes
(:mod:`knowledge._loading`), up to ``parse_ahead`` files ahead of the file being embedded:
on a small machine the parsers then keep the cores busy while the model runs. Folder
walking, chunking, lexical analysis and embedding run in threads, never on the event loop.
A file whose bytes are unchanged since its current version is skipped before parsing:
nothing is embedded or written. A changed file becomes a new version; its chunks whose
content did not change reuse their stored vectors. Chunks are cut so that the model reads
all of what it embeds (title, section and content together fit its input length).

With ``defer_vectors`` (the app's default), each file is stored without vectors, searchable
by its words at once, and the model reads the batch's chunks after the last file, in one
fill (:meth:`Ingestor.fill_vectors`) whose failure loses no file.

A batch outlives its worst file: a file that cannot be read, parsed, chunked, embedded or
written is refused with one line (its traceback goes to the debug log), the version write
is one transaction so nothing half-written stays, and the next file goes on. Only errors
that concern the whole collection (another embedder filled it) end the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from knowledge._attached import store_attachments
from knowledge._batch import (
    FileResult,
    Progress,
    StepError,
    expand_paths,
    refused,
    step,
)
from knowledge._loading import FileLoader, Item, Loaded
from knowledge.analysis import analyze_many
from knowledge.chunking import ChunkDraft, chunk_document, embedding_input
from knowledge.documents import ParsedDocument
from knowledge.embedders import Embedder
from knowledge.errors import ParseError, Refusal
from knowledge.reindex import fill_vectors
from knowledge.store import (
    CollectionInfo,
    DocumentInfo,
    KnowledgeStore,
    NewChunk,
    check_embedder,
    content_hash,
)

__all__ = ["FileResult", "Ingestor", "Progress", "Refusal", "expand_paths"]

_EMBED_BATCH = 32

logger = logging.getLogger(__name__)


class Ingestor:
    """Puts files into a collection; :meth:`aclose` stops its parser processes."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        *,
        max_bytes: int = 50 * 1024 * 1024,
        parse_timeout: float = 120.0,
        parse_memory_mb: int | None = 2048,
        chunk_tokens: int = 350,
        overlap_tokens: int = 40,
        parse_ahead: int = 4,
        parse_workers: int = 2,
        defer_vectors: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        # Store every file first (searchable by its words, and by meaning through the
        # search's vectors on demand), then embed the batch's chunks: see ``ingest_paths``.
        self.defer_vectors = defer_vectors
        self.max_bytes = max_bytes
        self.parse_timeout = parse_timeout
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.parse_ahead = max(1, parse_ahead)
        self._loader = FileLoader(
            store,
            max_bytes=max_bytes,
            parse_timeout=parse_timeout,
            parse_memory_mb=parse_memory_mb,
            parse_ahead=parse_ahead,
            parse_workers=parse_workers,
        )

    async def aclose(self) -> None:
        """Stop the parser processes (started again if the ingestor is used after)."""
        await self._loader.aclose()

    async def ingest_paths(
        self,
        paths: Iterable[Path],
        collection: CollectionInfo,
        *,
        uploaded_by: str | None = None,
        progress: Progress | None = None,
        sources: Mapping[Path, str] | None = None,
    ) -> list[FileResult]:
        """Ingest every file; one refused file never stops the others.

        A document is known by its source: the file's resolved path, or the name
        ``sources`` gives a file (an upload's file name, so that uploading the same file
        again finds it unchanged wherever it was downloaded to).

        Files are read and parsed (in ``parse_workers`` child processes) up to
        ``parse_ahead`` files ahead of the one being embedded and written, so that parsing
        keeps the cores busy while the model runs, whatever the mix of small and large files.

        Raises:
            KnowledgeError: The collection cannot take these files (another embedder).
        """
        progress = progress or Progress()
        files = await asyncio.to_thread(lambda: list(expand_paths(paths)))
        loaded: asyncio.Queue[Item] = asyncio.Queue(maxsize=self.parse_ahead)
        names = dict(sources or {})
        loader = asyncio.create_task(self._loader.load_all(files, collection, loaded, names))
        results: list[FileResult] = []
        try:
            for index, path in enumerate(files):
                progress.file_started(str(path), index, len(files))
                item = await loaded.get()
                if isinstance(item, Exception):  # the collection's error, not one file's
                    raise item
                result = await self._finish(item, collection, uploaded_by, progress)
                progress.file_finished(result)
                results.append(result)
                if isinstance(item, Loaded) and result.status == "stored":
                    results.extend(await self._attachments(item, collection, uploaded_by, progress))
        finally:
            if not loader.done():  # stopped early: do not leave a parser running
                loader.cancel()
            await asyncio.gather(loader, return_exceptions=True)
        if self.defer_vectors and any(r.embedded for r in results):
            # Also takes what an earlier, failed fill left; an unchanged batch costs nothing.
            await self.fill_vectors(collection, progress)
        return results

    async def fill_vectors(
        self, collection: CollectionInfo, progress: Progress | None = None
    ) -> int:
        """Embed the chunks of ``collection`` still without a vector; how many were filled.

        A deferred ingest that stored new chunks ends with this. Its files are already
        stored, so a failure here (the model, the database) loses nothing: it is logged,
        searches embed the chunks they find on demand, and the next such ingest's fill, or
        ``deskbot reindex --missing``, takes the rest.
        """
        progress = progress or Progress()
        try:
            return await fill_vectors(
                self.store,
                self.embedder,
                collection.name,
                on_progress=progress.vectors,
            )
        except Exception as exc:  # the files are stored; only their vectors wait
            logger.warning(
                "%s: vectors left for later (%s: %s)", collection.name, type(exc).__name__, exc
            )
            logger.debug("fill failed", exc_info=exc)
            return 0

    async def _finish(
        self,
        loaded: Loaded | FileResult,
        collection: CollectionInfo,
        uploaded_by: str | None,
        progress: Progress,
    ) -> FileResult:
        if isinstance(loaded, FileResult):
            return loaded
        began = time.perf_counter()
        try:
            result = await self._store(
                loaded.doc,
                collection,
                loaded.current,
                source=loaded.source,
                digest=loaded.digest,
                size_bytes=loaded.size_bytes,
                uploaded_by=uploaded_by,
                progress=progress,
                shown=loaded.shown,
                embed=not self.defer_vectors,
            )
        except (ParseError, StepError) as exc:
            result = refused(loaded.shown, exc, began)
        return replace(result, seconds=loaded.seconds + time.perf_counter() - began)

    async def _attachments(
        self,
        mail: Loaded,
        collection: CollectionInfo,
        uploaded_by: str | None,
        progress: Progress,
    ) -> list[FileResult]:
        async def store(doc: ParsedDocument, current: DocumentInfo | None, **kw: Any) -> FileResult:
            return await self._store(
                doc,
                collection,
                current,
                uploaded_by=uploaded_by,
                progress=progress,
                embed=not self.defer_vectors,
                **kw,
            )

        return await store_attachments(
            self.store, collection, mail.doc.attachments, mail.source, mail.shown, store
        )

    async def store_parsed(
        self,
        doc: ParsedDocument,
        collection: CollectionInfo,
        *,
        source: str,
        digest: str,
        size_bytes: int,
        uploaded_by: str | None = None,
        embed: bool = True,
    ) -> FileResult:
        """Chunk, analyze, embed (reusing unchanged vectors) and write a parsed document.

        ``embed=False`` stores the chunks without vectors: searchable by their words, and
        by meaning once a search or :meth:`fill_vectors` embeds them.

        Raises:
            ParseError: The document has no text to index.
            Exception: Whatever the embedder or the database raised.
        """
        current = await self.store.active_document(collection, source)
        try:
            return await self._store(
                doc,
                collection,
                current,
                source=source,
                digest=digest,
                size_bytes=size_bytes,
                uploaded_by=uploaded_by,
                progress=Progress(),
                shown=source,
                embed=embed,
            )
        except StepError as exc:
            raise exc.error from None

    async def _store(
        self,
        doc: ParsedDocument,
        collection: CollectionInfo,
        current: DocumentInfo | None,
        *,
        source: str,
        digest: str,
        size_bytes: int,
        uploaded_by: str | None,
        progress: Progress,
        shown: str,
        embed: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> FileResult:
        check_embedder(collection, self.embedder)
        with step("chunking"):
            drafts = await asyncio.to_thread(self._chunk, doc)
        if not drafts:
            raise ParseError("no text to index", reason="no_text")
        with step("reading the stored vectors"):
            reusable = await self.store.vectors_by_content(current.id) if current else {}
        chunks, embedded = await self._prepare(doc, drafts, reusable, progress, shown, embed)
        with step("storing"):  # one transaction: nothing half-written stays
            stored = await self.store.write_version(
                collection,
                source=source,
                title=doc.title,
                mime_type=doc.mime_type,
                digest=digest,
                size_bytes=size_bytes,
                chunks=chunks,
                uploaded_by=uploaded_by,
                meta={**({"pages": doc.pages} if doc.pages else {}), **(meta or {})},
            )
        return FileResult(
            shown,
            "stored",
            chunks=stored.chunks,
            tables=sum(1 for d in drafts if d.kind == "table" and d.meta.get("part", 1) == 1),
            embedded=embedded,
            version=stored.version,
            document_id=str(stored.id),
        )

    def _chunk(self, doc: ParsedDocument) -> list[ChunkDraft]:
        # Never more than the model reads (MiniLM stops at 256 tokens, e5 at 512), title,
        # section and special tokens included: a chunk's tail past that would get no vector.
        budget = min(self.chunk_tokens, self.embedder.max_tokens - self.embedder.count_tokens(""))
        return chunk_document(
            doc,
            self.embedder.count_tokens,
            max_tokens=budget,
            overlap_tokens=min(self.overlap_tokens, budget // 4),
            with_heading=True,
        )

    async def _prepare(
        self,
        doc: ParsedDocument,
        drafts: list[ChunkDraft],
        reusable: dict[str, np.ndarray[Any, Any]],
        progress: Progress,
        shown: str,
        embed: bool,
    ) -> tuple[list[NewChunk], int]:
        hashes = [content_hash(d.kind, d.content, d.embed_text) for d in drafts]
        # Lexical analysis (Kiwi for Korean: the costly part) runs while the model embeds. It
        # reads the document title and section with the chunk: a question often names the
        # document ("the travel policy's hotel cap"), rarely in its chunks' own words
        # (KorQuAD: lexical Recall@1 0.924 -> 0.938 with the title). The model reads a
        # table's rows compactly (headers once); the words indexed are the rows as shown.
        inputs = [embedding_input(doc.title, d.section, d.embed_text or d.content) for d in drafts]
        displayed = [embedding_input(doc.title, d.section, d.content) for d in drafts]
        analyzing = asyncio.create_task(asyncio.to_thread(analyze_many, displayed))
        try:
            with step("embedding"):
                vectors, embedded = await self._embed(
                    inputs, drafts, hashes, reusable, progress, shown, embed
                )
            with step("analyzing the words"):
                lexical = await analyzing
        finally:
            if not analyzing.done():  # the model failed: do not leave the analysis behind
                analyzing.cancel()
                await asyncio.gather(analyzing, return_exceptions=True)
        chunks = [
            NewChunk(draft=d, content_hash=h, lexical_terms=terms, embedding=v)
            for d, h, terms, v in zip(drafts, hashes, lexical, vectors, strict=True)
        ]
        return chunks, embedded

    async def _embed(
        self,
        inputs: list[str],
        drafts: list[ChunkDraft],
        hashes: list[str],
        reusable: dict[str, np.ndarray[Any, Any]],
        progress: Progress,
        shown: str,
        embed: bool,
    ) -> tuple[list[np.ndarray[Any, Any] | None], int]:
        """Each draft's vector, and how many the model made (the others reuse stored ones)."""
        vectors: list[np.ndarray[Any, Any] | None] = [reusable.get(h) for h in hashes]
        # A table's Markdown chunk is for display, citation and lexical search; its rows
        # chunks carry the same cells with their headers, and those are what get a vector.
        todo = [i for i, v in enumerate(vectors) if v is None and drafts[i].kind != "table"]
        # Batches of similar length: the model pads each batch to its longest text.
        if not embed:  # stored without: a deferred ingest's fill embeds them next
            return vectors, len(todo)
        todo.sort(key=lambda i: len(inputs[i]))
        progress.chunks_total(shown, len(todo))
        for start in range(0, len(todo), _EMBED_BATCH):
            batch = todo[start : start + _EMBED_BATCH]
            embedded = await self.embedder.embed_documents([inputs[i] for i in batch])
            for i, vector in zip(batch, embedded, strict=True):
                vectors[i] = vector
            progress.chunks_done(shown, len(batch))
        return vectors, len(todo)
