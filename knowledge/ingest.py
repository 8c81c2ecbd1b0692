"""The ingest pipeline: load -> parse -> chunk -> analyze -> embed -> write, file by file.

Each step has one job. Parsing runs in a child process (from a forkserver, so it starts in
milliseconds and a parser that hangs or crashes is killed without harming this process),
one file at a time, up to ``parse_ahead`` files ahead of the file being embedded: on a
small machine the parser then keeps one core busy while the model runs. Embedding runs in
a thread. A file whose bytes are unchanged since its current version is skipped before
parsing: nothing is embedded or written. A changed file becomes a new version; its chunks
whose content did not change reuse their stored vectors. Chunks are cut so that the model
reads all of what it embeds (title, section and content together fit its input length).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import numpy as np

from knowledge.analysis import analyze_many
from knowledge.chunking import ChunkDraft, chunk_document, embedding_input
from knowledge.documents import ParsedDocument
from knowledge.embedders import Embedder
from knowledge.errors import KnowledgeError, ParseError, Refusal
from knowledge.store import (
    CollectionInfo,
    KnowledgeStore,
    NewChunk,
    check_embedder,
    content_hash,
)

__all__ = ["FileResult", "Ingestor", "Progress", "Refusal", "expand_paths"]

Status = Literal["stored", "unchanged", "refused"]


@dataclass(frozen=True)
class FileResult:
    """What happened to one file.

    A refused file has ``reason`` (the kind, to group and count by) and ``detail`` (one line
    a user reads: what failed and why).
    """

    path: str
    status: Status
    chunks: int = 0
    tables: int = 0
    embedded: int = 0
    version: int | None = None
    document_id: str | None = None
    reason: Refusal | None = None
    detail: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _Loaded:
    """A file read and parsed, waiting to be embedded and written."""

    shown: str
    source: str
    digest: str
    size_bytes: int
    doc: ParsedDocument
    seconds: float


class Progress:
    """Receives progress events; the CLI draws bars from them. The default ignores them."""

    def file_started(self, path: str, index: int, total: int) -> None:
        """A file is about to be processed."""

    def chunks_total(self, path: str, total: int) -> None:
        """How many chunks the file has to embed."""

    def chunks_done(self, path: str, count: int) -> None:
        """``count`` more chunks are embedded."""

    def file_finished(self, result: FileResult) -> None:
        """The file is stored, unchanged or refused."""


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files and every file under folders (recursively, sorted, hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


class Ingestor:
    """Puts files into a collection."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        *,
        max_bytes: int = 50 * 1024 * 1024,
        parse_timeout: float = 120.0,
        chunk_tokens: int = 350,
        overlap_tokens: int = 40,
        embed_batch: int = 32,
        parse_ahead: int = 4,
        parse_workers: int = 2,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.max_bytes = max_bytes
        self.parse_timeout = parse_timeout
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.embed_batch = embed_batch
        self.parse_ahead = max(1, parse_ahead)
        self.parse_workers = max(1, parse_workers)

    async def ingest_paths(
        self,
        paths: Iterable[Path],
        collection: CollectionInfo,
        *,
        uploaded_by: str | None = None,
        progress: Progress | None = None,
    ) -> list[FileResult]:
        """Ingest every file; one refused file never stops the others.

        Files are read and parsed (in ``parse_workers`` child processes) up to
        ``parse_ahead`` files ahead of the one being embedded and written, so that parsing
        keeps the cores busy while the model runs, whatever the mix of small and large files.
        """
        progress = progress or Progress()
        files = list(expand_paths(paths))
        loaded: asyncio.Queue[_Loaded | FileResult | BaseException] = asyncio.Queue(
            maxsize=self.parse_ahead
        )
        loader = asyncio.create_task(self._load_all(files, collection, loaded))
        results: list[FileResult] = []
        try:
            for index, path in enumerate(files):
                progress.file_started(str(path), index, len(files))
                item = await loaded.get()
                if isinstance(item, BaseException):
                    raise item
                result = await self._finish(item, collection, uploaded_by, progress)
                progress.file_finished(result)
                results.append(result)
        finally:
            if not loader.done():  # stopped early: do not leave a parser running
                loader.cancel()
            await asyncio.gather(loader, return_exceptions=True)
        return results

    async def _load_all(
        self,
        files: list[Path],
        collection: CollectionInfo,
        out: asyncio.Queue[_Loaded | FileResult | BaseException],
    ) -> None:
        """Load the files into ``out`` in order, ``parse_workers`` at a time; a failure (not a
        refusal) ends the queue."""

        async def load(path: Path) -> _Loaded | FileResult | BaseException:
            try:
                return await self._load(path, collection)
            except Exception as exc:  # the consumer re-raises it where it would have run
                return exc

        pending: deque[asyncio.Task[_Loaded | FileResult | BaseException]] = deque()
        upcoming = iter(files)
        try:
            while True:
                while len(pending) < self.parse_workers:
                    path = next(upcoming, None)
                    if path is None:
                        break
                    pending.append(asyncio.create_task(load(path)))
                if not pending:
                    return
                item = await pending[0]
                pending.popleft()
                await out.put(item)
                if isinstance(item, BaseException):
                    return
        finally:
            for task in pending:  # stopped early: the parses in flight go too
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def ingest_file(
        self,
        path: Path,
        collection: CollectionInfo,
        *,
        source: str | None = None,
        uploaded_by: str | None = None,
        progress: Progress | None = None,
    ) -> FileResult:
        """Ingest one file; any problem with the file comes back as a refused result."""
        loaded = await self._load(path, collection, source=source)
        return await self._finish(loaded, collection, uploaded_by, progress or Progress())

    async def _load(
        self, path: Path, collection: CollectionInfo, *, source: str | None = None
    ) -> _Loaded | FileResult:
        """Read, hash and parse a file, or say why not (or that it is unchanged)."""
        began = time.perf_counter()
        shown = str(path)
        try:
            data = await asyncio.to_thread(_read, path, self.max_bytes)
            if source is None:
                source = str(await asyncio.to_thread(path.resolve))
            digest = hashlib.sha256(data).hexdigest()
            current = await self.store.active_document(collection, source)
            if current is not None and current.content_hash == digest:
                return FileResult(
                    shown,
                    "unchanged",
                    chunks=current.chunks,
                    tables=current.tables,
                    version=current.version,
                    document_id=str(current.id),
                    seconds=time.perf_counter() - began,
                )
            doc = await parse_in_child(path, max_bytes=self.max_bytes, timeout=self.parse_timeout)
        except ParseError as exc:
            seconds = time.perf_counter() - began
            return FileResult(shown, "refused", reason=exc.reason, detail=str(exc), seconds=seconds)
        except OSError as exc:
            seconds = time.perf_counter() - began
            detail = _os_reason(exc)
            return FileResult(shown, "refused", reason="unreadable", detail=detail, seconds=seconds)
        return _Loaded(shown, source, digest, len(data), doc, time.perf_counter() - began)

    async def _finish(
        self,
        loaded: _Loaded | FileResult,
        collection: CollectionInfo,
        uploaded_by: str | None,
        progress: Progress,
    ) -> FileResult:
        if isinstance(loaded, FileResult):
            return loaded
        began = time.perf_counter()
        try:
            result = await self.store_parsed(
                loaded.doc,
                collection,
                source=loaded.source,
                digest=loaded.digest,
                size_bytes=loaded.size_bytes,
                uploaded_by=uploaded_by,
                progress=progress,
                shown=loaded.shown,
            )
        except ParseError as exc:
            result = FileResult(loaded.shown, "refused", reason=exc.reason, detail=str(exc))
        return replace(result, seconds=loaded.seconds + time.perf_counter() - began)

    async def store_parsed(
        self,
        doc: ParsedDocument,
        collection: CollectionInfo,
        *,
        source: str,
        digest: str,
        size_bytes: int,
        uploaded_by: str | None = None,
        progress: Progress | None = None,
        shown: str | None = None,
        embed: bool = True,
    ) -> FileResult:
        """Chunk, analyze, embed (reusing unchanged vectors) and write a parsed document.

        ``embed=False`` stores chunks for lexical search only (a lexical-only evaluation).
        """
        progress = progress or Progress()
        shown = shown or source
        check_embedder(collection, self.embedder)
        # Never more than the model reads (MiniLM stops at 256 tokens, e5 at 512), title,
        # section and special tokens included: a chunk's tail past that would get no vector.
        budget = min(self.chunk_tokens, self.embedder.max_tokens - self.embedder.count_tokens(""))
        drafts = chunk_document(
            doc,
            self.embedder.count_tokens,
            max_tokens=budget,
            overlap_tokens=min(self.overlap_tokens, budget // 4),
            with_heading=True,
        )
        if not drafts:
            raise ParseError("no text to index", reason="no_text")
        current = await self.store.active_document(collection, source)
        reusable = await self.store.vectors_by_content(current.id) if current else {}
        chunks, embedded = await self._prepare(doc, drafts, reusable, progress, shown, embed)
        stored = await self.store.write_version(
            collection,
            source=source,
            title=doc.title,
            mime_type=doc.mime_type,
            digest=digest,
            size_bytes=size_bytes,
            chunks=chunks,
            uploaded_by=uploaded_by,
            meta={"pages": doc.pages} if doc.pages else {},
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

    async def _prepare(
        self,
        doc: ParsedDocument,
        drafts: list[ChunkDraft],
        reusable: dict[str, np.ndarray[Any, Any]],
        progress: Progress,
        shown: str,
        embed: bool,
    ) -> tuple[list[NewChunk], int]:
        hashes = [content_hash(d.kind, d.content) for d in drafts]
        # Lexical analysis (Kiwi for Korean: the costly part) runs while the model embeds. It
        # reads what the model reads, the document title and section included: a question
        # often names the document ("the travel policy's hotel cap"), rarely in its chunks'
        # own words (KorQuAD: lexical Recall@1 0.924 -> 0.938 with the title).
        analyzing = asyncio.create_task(
            asyncio.to_thread(
                analyze_many, [embedding_input(doc.title, d.section, d.content) for d in drafts]
            )
        )
        try:
            vectors, embedded = await self._embed(
                doc, drafts, hashes, reusable, progress, shown, embed
            )
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
        doc: ParsedDocument,
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
        todo = sorted(todo, key=lambda i: len(drafts[i].content)) if embed else []
        progress.chunks_total(shown, len(todo))
        for start in range(0, len(todo), self.embed_batch):
            batch = todo[start : start + self.embed_batch]
            embedded = await self.embedder.embed_documents(
                [embedding_input(doc.title, drafts[i].section, drafts[i].content) for i in batch]
            )
            for i, vector in zip(batch, embedded, strict=True):
                vectors[i] = vector
            progress.chunks_done(shown, len(batch))
        return vectors, len(todo)


def _read(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size == 0:
        raise ParseError("empty file (0 bytes)", reason="empty")
    if size > max_bytes:
        raise ParseError(
            f"over the size limit ({size / 1048576:.1f} MB > {max_bytes / 1048576:.1f} MB)",
            reason="too_large",
        )
    return path.read_bytes()


def _failure(step: str, exc: Exception) -> str:
    """One line: what failed, the exception's class and the first line of its message."""
    lines = str(exc).strip().splitlines()
    text = f"{step} failed ({type(exc).__name__}: {lines[0]})" if lines else ""
    text = text or f"{step} failed ({type(exc).__name__})"
    return text if len(text) <= 200 else text[:197] + "..."


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return exc.strerror or type(exc).__name__


# --- parsing in a child process ----------------------------------------------------------

_context: Any = None


def _mp_context() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        # Workers run ``_serve_parses`` from this module: preload it with its imports.
        _context.set_forkserver_preload(["knowledge.ingest"])
    return _context


# Files are parsed in worker processes kept between files: a fresh process per file cost
# 0.2-0.5 s more than the parse itself (pypdf, pdfminer and their fonts warm up in each new
# process), which was most of a re-ingest. A worker is retired after _WORKER_FILES files,
# and killed when it overruns its timeout, crashes or its caller goes away.
_WORKER_FILES = 25
_idle_workers: list[_ParseWorker] = []


class _OverranError(Exception):
    """The worker did not answer within the timeout."""


class _NotStartedError(Exception):
    """The worker exited before it could serve a file."""


class _ParseWorker:
    """One child process that parses the files it is sent, one at a time."""

    def __init__(self) -> None:
        ctx = _mp_context()
        self.conn, child_end = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve_parses, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.files = 0
        self.started = False

    def parse(self, path: str, max_bytes: int, timeout: float) -> tuple[str, Any]:
        """``("ok", ParsedDocument)`` or ``("refused", reason)``; blocks.

        Raises:
            _OverranError: No answer within ``timeout``.
            _NotStartedError: The worker died before it said it was ready.
            EOFError, OSError: The worker died.
        """
        if not self.started:
            try:
                if not self.conn.poll(timeout):
                    raise _OverranError
                self.conn.recv()
            except (EOFError, OSError):
                raise _NotStartedError from None
            self.started = True
        self.files += 1
        self.conn.send((path, max_bytes))
        if not self.conn.poll(timeout):
            raise _OverranError
        reply: tuple[str, Any] = self.conn.recv()
        return reply

    def close(self, *, kill: bool) -> None:
        if kill or not self.process.is_alive():
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(5)
        self.conn.close()


def _serve_parses(conn: Connection) -> None:
    from knowledge.parsing import parse_file

    # pypdf and pdfminer log every oddity of a file as a warning; with no handler, Python
    # would print them on the user's terminal. What matters reaches the result table.
    logging.getLogger().addHandler(logging.NullHandler())
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        path, max_bytes = request
        try:
            conn.send(("ok", parse_file(Path(path), max_bytes=max_bytes)))
        except ParseError as exc:
            conn.send(("refused", exc))
        except Exception as exc:  # the parser's bug must not become the ingest's crash
            conn.send(("refused", ParseError(_failure("the parser", exc), reason="crashed")))


async def parse_in_child(path: Path, *, max_bytes: int, timeout: float) -> ParsedDocument:
    """Parse ``path`` in a worker process; a hang past ``timeout`` kills the worker.

    Raises:
        ParseError: The file was refused, the parser crashed, or it ran out of time.
    """
    while _idle_workers:
        worker = _idle_workers.pop()
        if worker.process.is_alive():
            break
        await asyncio.to_thread(worker.close, kill=True)
    else:
        worker = await asyncio.to_thread(_ParseWorker)
    healthy = False
    try:
        status, value = await asyncio.to_thread(worker.parse, str(path), max_bytes, timeout)
        healthy = True
    except _OverranError:
        message = f"parsing took longer than {timeout:g} s and was stopped"
        raise ParseError(message, reason="timeout") from None
    except _NotStartedError:
        # The usual cause: a script calling the ingest at import time. Each worker process
        # imports the script's main module again, and starts the ingest there too.
        raise ParseError(
            "the parser process exited before it started (in a script, call the ingest "
            'under `if __name__ == "__main__":`)',
            reason="crashed",
        ) from None
    except (EOFError, OSError):
        raise ParseError("the parser crashed", reason="crashed") from None
    finally:
        if healthy and worker.files < _WORKER_FILES:
            _idle_workers.append(worker)
        else:  # overran, crashed, retired, or the caller was cancelled mid-parse
            await asyncio.to_thread(worker.close, kill=not healthy)
    if status != "ok":
        raise value if isinstance(value, ParseError) else ParseError(str(value), reason="crashed")
    if not isinstance(value, ParsedDocument):
        raise KnowledgeError("the parser returned something unexpected")
    return value
