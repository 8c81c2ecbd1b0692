"""deskbot's hybrid search as a LangChain retriever (``langchain_core``'s ``BaseRetriever``).

:class:`DeskbotRetriever` asks :meth:`knowledge.search.Searcher.search`, the one ranking path
the bot, the CLI and the evaluation use, and turns each passage into a LangChain ``Document``
whose metadata carries its citation (title, page, section, source, collection) and score.
The caller's :class:`~knowledge.search.Scope` decides what it may read, exactly as in chat.

The searcher's database connections belong to the event loop they were opened on. The
async path (``ainvoke``) runs on that loop; the sync path (``invoke``, which LangChain runs
from worker threads) hands the search to that loop, given as ``loop``, and waits for it.

Needs the ``integrations`` extra (``langchain-core``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from knowledge.errors import KnowledgeError
from knowledge.search import Mode, Scope, Searcher, SearchResult

__all__ = ["DeskbotRetriever", "to_document"]


class DeskbotRetriever(BaseRetriever):
    """The passages a caller may read for a query, best first, as LangChain documents.

    Example:
        ``DeskbotRetriever(searcher=app.knowledge.searcher, scope=Scope(), k=4)``; then
        ``await retriever.ainvoke("hotel cap in Tokyo")``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Searcher
    """The searcher the bot builds from its settings (``app.knowledge.searcher``)."""
    scope: Scope = Field(default_factory=Scope)
    """Who is asking; the default is nobody in particular: public collections only."""
    k: int = Field(default=5, ge=1, le=100)
    mode: Mode = "hybrid"
    collections: list[str] | None = None
    """Only these collections (each must exist); ``None``: every readable one."""
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop the searcher was opened on, running in another thread; needed by the
    sync ``invoke`` only."""

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        loop = asyncio.get_running_loop()
        if self.loop is None or self.loop is loop:
            return await self._search(query)
        # Called from another loop: the search still runs where its connections live.
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._search(query), self.loop)
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.loop is None:
            raise KnowledgeError(
                "DeskbotRetriever.invoke needs loop= (the event loop the searcher was opened "
                "on, running in another thread); in async code use ainvoke"
            )
        if _running_loop() is self.loop:
            raise KnowledgeError(
                "DeskbotRetriever.invoke was called on the searcher's own event loop, which "
                "it would block; use ainvoke there"
            )
        return asyncio.run_coroutine_threadsafe(self._search(query), self.loop).result()

    async def _search(self, query: str) -> list[Document]:
        results = await self.searcher.search(
            query, self.scope, k=self.k, mode=self.mode, collections=self.collections
        )
        return [to_document(result) for result in results]


def to_document(result: SearchResult) -> Document:
    """One search result as a LangChain ``Document`` (its id is the chunk's)."""
    citation = result.citation
    metadata: dict[str, Any] = {
        "title": citation.title,
        "page": citation.page,
        "section": citation.section,
        "source": citation.source,
        "collection": citation.collection,
        "document_id": str(citation.document_id),
        "chunk_id": result.chunk_id,
        "kind": result.kind,
        "score": result.score,
        "dense_score": result.dense_score,
        "lexical_score": result.lexical_score,
    }
    return Document(page_content=result.content, metadata=metadata, id=result.chunk_id)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
