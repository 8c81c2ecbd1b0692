"""How answers' sources look, once, for every surface.

An answer cites passages as ``[n]``; a search ranks them. Either way each surface shows a
numbered list of sources, and what a source's line holds is decided here: the title (the
file or URL when the document has none), the page, the section when it is not the title
again, and where the document lives when that says more than the title. Each surface then
only draws these :class:`Source` values its own way:

- plain text (:func:`source_line`): the CLI and the terminal chat, which print it with rich;
- Slack mrkdwn (:func:`bot.slack.format.answer_messages`): the title links to an http(s)
  source, and the location is not repeated beside the link.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from knowledge.search import Citation, SearchResult

__all__ = ["SEPARATOR", "Source", "ranked_sources", "source_details", "source_line", "sources_of"]

SEPARATOR = " · "
"""Between the parts of one source's line, on every surface."""


@dataclass(frozen=True)
class Source:
    """One numbered source, as every surface shows it.

    Attributes:
        number: The number an answer cites it by (``[n]``), or its rank in a search.
        title: What to call it: the document's title, else its file name or URL.
        url: An http(s) address to link the title to, when it has one.
        page: The page the passage is on, for paged documents.
        section: The section heading, when it is not the title again.
        location: Where the document lives (a path or URL) when that is not the title.
    """

    number: int
    title: str
    url: str | None = None
    page: int | None = None
    section: str | None = None
    location: str | None = None


def source_of(number: int, citation: Citation) -> Source:
    """The :class:`Source` for one cited or found passage."""
    title = citation.title or citation.source
    linkable = citation.source.startswith(("http://", "https://"))
    return Source(
        number=number,
        title=title,
        url=citation.source if linkable else None,
        page=citation.page or None,  # page 0 is "no page" for formats without pages
        section=citation.section if citation.section != title else None,
        location=citation.source if citation.source and citation.source != title else None,
    )


def sources_of(citations: Iterable[tuple[int, Citation]]) -> list[Source]:
    """An answer's cited sources (``Answer.citations``), in the order given."""
    return [source_of(number, citation) for number, citation in citations]


def ranked_sources(results: Sequence[SearchResult]) -> list[Source]:
    """Search results as sources numbered by rank, from 1."""
    return [source_of(rank, r.citation) for rank, r in enumerate(results, start=1)]


def source_details(source: Source) -> list[str]:
    """The parts after the title, before any location: ``["p. 3", "Section"]``."""
    details = [f"p. {source.page}"] if source.page is not None else []
    if source.section:
        details.append(source.section)
    return details


def source_line(source: Source) -> str:
    """One plain-text line: ``[n] Title · p. 3 · Section · location``."""
    parts = [source.title, *source_details(source)]
    if source.location:
        parts.append(source.location)
    return f"[{source.number}] " + SEPARATOR.join(parts)
