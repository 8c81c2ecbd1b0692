"""``search_documents``: hybrid search over the knowledge base, within the caller's scope.

The scope (which collections the caller may read) comes from the run context; the model
only chooses the query and how many passages. Each passage carries a citation number that
stays the same for the whole run, so the answer can cite it as [n].
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from knowledge.search import Searcher, SearchResult
from tools.base import Tool, ToolContext, ToolOutput
from tools.errors import ToolError

__all__ = ["PassageAnswers", "make_document_tools"]

_PASSAGE_CHARS = 1_500
_MAX_K = 10


def make_document_tools(searcher: Searcher) -> list[Tool]:
    """The document tools, bound to ``searcher``."""

    async def search_documents(
        ctx: ToolContext, query: str, k: Annotated[int, Field(ge=1, le=_MAX_K)] = 5
    ) -> ToolOutput:
        """Search the company documents (policies, guides, manuals, reports) the user may read.

        Returns the most relevant passages, each with a citation number to cite as [n],
        its document title, page and section. An empty list means the documents do not
        cover the question.

        Args:
            query: What to look for, in the user's language (Korean or English); keep the
                key terms of the question.
            k: How many passages to return.
        """
        if not query.strip():
            raise ToolError("query is empty: pass the words to search for")
        results = await searcher.search(query, ctx.scope, k=k)
        passages = [_passage(ctx, result) for result in results]
        data: dict[str, Any] = {"query": query, "passages": passages}
        if not passages:
            data["note"] = "No passage the user may read is relevant to this query."
        return ToolOutput(data, markdown=_markdown(passages))

    return [Tool.from_function(search_documents, timeout=30.0)]


def _passage(ctx: ToolContext, result: SearchResult) -> dict[str, Any]:
    citation = result.citation
    content = result.content
    if len(content) > _PASSAGE_CHARS:
        content = content[: _PASSAGE_CHARS - 1].rstrip() + "…"
    return {
        "citation": ctx.citations.cite(citation),
        "title": citation.title,
        "page": citation.page,
        "section": citation.section,
        "collection": citation.collection,
        "content": content,
        "score": round(result.score, 4),
    }


def _markdown(passages: list[dict[str, Any]]) -> str:
    if not passages:
        return "_No relevant passages found._"
    lines = []
    for p in passages:
        where = ", ".join(
            x for x in (p["title"], f"p. {p['page']}" if p["page"] else "", p["section"]) if x
        )
        snippet = " ".join(p["content"].split())[:300]
        lines.append(f"**[{p['citation']}]** {where}  \n{snippet}")
    return "\n\n".join(lines)


@dataclass(frozen=True)
class PassageAnswers:
    """Retrieval-only answers from ``search_documents`` (for the offline chat backend).

    The question is the query; the answer is the best passage of each of the first ``k``
    sources, with its citation number, cut to ``snippet_chars``.
    """

    name: str = "search_documents"
    k: int = 3
    snippet_chars: int = 600

    def arguments(self, question: str) -> dict[str, Any]:
        """Search with the question's words, asking for room for repeated sources."""
        return {"query": question, "k": min(self.k * 2, _MAX_K)}

    def render(self, result: str) -> str:
        """The passages in ``search_documents``' JSON result, one per source."""
        try:
            passages = json.loads(result).get("passages", [])
        except (json.JSONDecodeError, AttributeError):
            passages = []
        if not passages:
            return (
                "The documents I can search contain nothing relevant to this question. "
                "/ 검색할 수 있는 문서에서 관련 내용을 찾지 못했습니다."
            )
        lines = ["The most relevant passages:"]
        shown: set[int] = set()
        for passage in passages:
            if passage["citation"] in shown or len(shown) == self.k:
                continue  # one passage per source: the best one
            shown.add(passage["citation"])
            snippet = _squash(passage.get("content", ""), self.snippet_chars)
            lines.append(f"\n[{passage['citation']}] {snippet}")
        return "\n".join(lines)


def _squash(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
