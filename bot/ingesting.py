"""Adding files to the documents: the one use-case behind every front door.

``deskbot ingest``, the chat's ``/ingest``, Slack uploads and the demo's sample documents all
call :func:`ingest_files`: make sure the collection exists (created on first use, refused if
another embedder filled it), ingest the files, and summarise what was stored, what was
unchanged, and what was refused, grouped by the refusal's :data:`~knowledge.errors.Refusal`
kind. Each front door only draws the :class:`IngestSummary` its own way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from bot.knowledge import Knowledge
from knowledge.cleaning import clean_text
from knowledge.errors import Refusal
from knowledge.ingest import FileResult, Progress
from knowledge.search import Scope
from knowledge.store import DocumentInfo

__all__ = [
    "IngestSummary",
    "file_note",
    "ingest_files",
    "readable_documents",
    "reason_label",
    "refused_before_ingest",
    "safe_file_name",
]


@dataclass(frozen=True)
class IngestSummary:
    """What one ingest did, file by file, in the order the files were taken."""

    collection: str
    files: tuple[FileResult, ...]

    @property
    def stored(self) -> list[FileResult]:
        """New documents and new versions."""
        return [r for r in self.files if r.status == "stored"]

    @property
    def unchanged(self) -> list[FileResult]:
        """Files whose current version already holds the same bytes."""
        return [r for r in self.files if r.status == "unchanged"]

    @property
    def refused(self) -> list[FileResult]:
        """Files that were not added, each with its ``reason`` and ``detail``."""
        return [r for r in self.files if r.status == "refused"]

    def refusals(self) -> dict[Refusal, list[FileResult]]:
        """The refused files grouped by reason, the most frequent reason first."""
        groups: dict[Refusal, list[FileResult]] = {}
        for result in self.refused:
            groups.setdefault(result.reason or "failed", []).append(result)
        return dict(sorted(groups.items(), key=lambda item: -len(item[1])))

    def counts(self) -> str:
        """``"2 stored, 1 unchanged, 3 refused (2 unsupported, 1 empty)"``."""
        line = f"{len(self.stored)} stored, {len(self.unchanged)} unchanged"
        line += f", {len(self.refused)} refused"
        groups = self.refusals()
        if groups:
            line += " (" + ", ".join(f"{len(g)} {reason_label(r)}" for r, g in groups.items()) + ")"
        return line


def reason_label(reason: Refusal) -> str:
    """A refusal kind as words: ``"too_large"`` -> ``"too large"``."""
    return reason.replace("_", " ")


def file_note(result: FileResult) -> str:
    """What happened to one file, after its name: ``"12 chunks, 1 tables"``, or why not."""
    if result.status == "stored":
        return f"{result.chunks} chunks, {result.tables} tables"
    if result.status == "unchanged":
        return "unchanged"
    return result.detail or "refused"


async def readable_documents(
    knowledge: Knowledge, scope: Scope, collection: str | None = None
) -> list[DocumentInfo]:
    """The documents (of ``collection``, or all) in the collections ``scope`` may search.

    What a chat's document list shows: only what the caller could search from where they
    ask, so a list in a public channel never names a private collection's files.

    Raises:
        KnowledgeError: The store could not be read.
    """
    readable = {c.name for c in await knowledge.store.list_collections() if scope.can_read(c)}
    documents = await knowledge.store.list_documents(collection)
    return [d for d in documents if d.collection in readable]


_MAX_NAME_BYTES = 200  # file systems allow 255; room for the suffix and a folder's index


def safe_file_name(name: str, *, default: str) -> str:
    """An uploaded file's name as a file can be written under, and shown.

    Its last path part (``/`` or ``\\``), without NUL, controls or lone surrogates, cut to
    200 bytes keeping the suffix; ``default`` (the platform's file id) when nothing is left.
    """
    base = PurePath(clean_text(name).replace("\\", "/")).name.strip()
    if base in {"", ".", ".."}:
        return default
    if len(base.encode()) <= _MAX_NAME_BYTES:
        return base
    suffix = PurePath(base).suffix[:16]
    room = _MAX_NAME_BYTES - len(suffix.encode())
    stem = base[: len(base) - len(suffix)].encode()[:room].decode(errors="ignore")
    return stem + suffix


def refused_before_ingest(name: str, reason: Refusal, detail: str) -> FileResult:
    """A file the front door itself refused (a failed download, an upload over the limit)."""
    return FileResult(name, "refused", reason=reason, detail=detail)


async def ingest_files(
    knowledge: Knowledge,
    collection: str,
    paths: Sequence[Path],
    *,
    private: bool = False,
    user: str | None = None,
    progress: Progress | None = None,
    refused: Sequence[FileResult] = (),
    sources: Mapping[Path, str] | None = None,
) -> IngestSummary:
    """Add files and folders (recursively) to a collection, creating it on first use.

    Args:
        knowledge: The store, embedder and ingestor to use.
        collection: The collection's name.
        paths: Files and folders; folders are walked, hidden entries skipped.
        private: Make the collection private; when it names no reader yet, ``user`` becomes
            its first.
        user: Who asked: the collection's creator and the documents' uploader.
        progress: Told about each file and its chunks as the ingest goes.
        refused: Files the front door refused before the ingest; they end the summary.
        sources: The names to know some files by instead of their paths: a chat upload is
            known by its file name, not by the temporary folder it was downloaded to.

    Raises:
        KnowledgeError: The collection's name is invalid or another embedder filled it.
    """
    info = await knowledge.store.ensure_collection(
        collection,
        knowledge.embedder,
        visibility="private" if private else None,
        created_by=user,
    )
    if private and user and not info.allowed_roles and not info.allowed_channels:
        # A private collection nobody may read yet: its uploader is its first reader (in a
        # DM). More readers: `deskbot collections access`, `/deskbot access`, `/docs access`.
        info = await knowledge.store.set_access(info.name, add_roles=[user])
    results = await knowledge.ingestor.ingest_paths(
        paths, info, uploaded_by=user, progress=progress, sources=sources
    )
    return IngestSummary(info.name, (*results, *refused))
