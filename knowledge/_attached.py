"""A message's attachments stored as documents of their own, named after the message.

The ingest stores a message first, then each attachment its parse found
(:mod:`knowledge._attachments`) under the source ``<message source>#<name>``
(``mail.eml#report.pdf``), with ``attachment_of`` in its metadata naming the message. An
attachment whose bytes are unchanged since its stored version is left alone; one that was
refused is reported like a refused file; those the message's new version no longer has are
deleted. Re-ingesting an unchanged message stops before parsing, so it costs nothing here,
and deleting the message deletes its attachments (:meth:`KnowledgeStore.delete_document`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from knowledge._batch import FileResult, StepError, refused, step, unchanged
from knowledge.documents import Attachment, ParsedDocument
from knowledge.errors import ParseError
from knowledge.store import CollectionInfo, KnowledgeStore

__all__ = ["store_attachments"]

logger = logging.getLogger("knowledge.ingest")

StoreOne = Callable[..., Awaitable[FileResult]]  # (doc, current, *, source, digest, ...)


async def store_attachments(
    store: KnowledgeStore,
    collection: CollectionInfo,
    attachments: list[Attachment],
    parent: str,
    shown: str,
    store_one: StoreOne,
) -> list[FileResult]:
    """One result per attachment, in the message's order."""
    results = []
    for attachment in attachments:
        began = time.perf_counter()
        result = await _store_attachment(
            store, collection, attachment, parent, f"{shown}#{attachment.name}", store_one
        )
        results.append(replace(result, seconds=time.perf_counter() - began))
    kept = {f"{parent}#{attachment.name}" for attachment in attachments}
    try:
        await store.delete_attachments(collection, parent, keep=kept)
    except Exception:  # the message and its attachments are stored; a stale one stays
        logger.warning("%s: cannot delete its former attachments", shown, exc_info=True)
    return results


async def _store_attachment(
    store: KnowledgeStore,
    collection: CollectionInfo,
    attachment: Attachment,
    parent: str,
    shown: str,
    store_one: StoreOne,
) -> FileResult:
    began = time.perf_counter()
    if attachment.error is not None or attachment.document is None:
        error = attachment.error or ParseError("not parsed", reason="crashed")
        return refused(shown, error, began)
    source = f"{parent}#{attachment.name}"
    try:
        with step("looking up the current version"):
            current = await store.active_document(collection, source)
        if current is not None and current.content_hash == attachment.digest:
            return unchanged(shown, current, began)
        document: ParsedDocument = attachment.document
        extra: dict[str, Any] = {"attachment_of": parent}
        return await store_one(
            document,
            current,
            source=source,
            digest=attachment.digest,
            size_bytes=attachment.size_bytes,
            shown=shown,
            meta=extra,
        )
    except (ParseError, StepError) as exc:
        return refused(shown, exc, began)
