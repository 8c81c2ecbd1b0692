"""Structure-aware chunking under a token budget measured by the embedder's tokenizer.

Prose: sentences are packed into chunks that never cross a heading and stay under
``max_tokens``; consecutive chunks share up to ``overlap_tokens`` of trailing sentences. A
text chunk's content is the exact span of the document's text it covers, so its character
offsets are a citation.

Tables give two kinds of chunk: the table as Markdown (``table``, for display and citation;
split by rows with the header repeated when it is too long) and the rows serialized with
their headers, ``Header: value | Header: value`` one row per line (``table_rows``), each
group led by the table's caption and page. That text is what a hit shows and cites; the
model reads the group compactly (:attr:`ChunkDraft.embed_text`): the headers once on one
line, then each row's cells, and rows are grouped under the budget of that compact form.
A row too long to fit alone is cut at spaces and embedded as shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from knowledge.documents import Block, ParsedDocument, Table

__all__ = [
    "ChunkDraft",
    "chunk_document",
    "embedding_input",
    "render_markdown_table",
    "serialize_row",
]

ChunkKind = Literal["text", "table", "table_rows"]

# A sentence ends at . ! ? 。 (or a Korean ending like 다.) followed by space, or a newline.
_SENTENCE = re.compile(r"\S.*?(?:[.!?。]+(?=\s)|\n|$)", re.DOTALL)


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it has an id and a vector."""

    kind: ChunkKind
    content: str
    page: int | None
    section: str | None
    char_start: int
    char_end: int
    token_count: int
    meta: dict[str, Any] = field(default_factory=dict)
    # What the model reads instead of ``content`` (None: the content itself).
    embed_text: str | None = None


@dataclass
class _Span:
    start: int
    end: int
    tokens: int
    page: int | None


class _Counter:
    """Token counts without the model's special tokens, so pieces add up."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count
        self.specials = count("")

    def __call__(self, text: str) -> int:
        return max(0, self.count(text) - self.specials)


def chunk_document(
    doc: ParsedDocument,
    count_tokens: Callable[[str], int],
    *,
    max_tokens: int = 350,
    overlap_tokens: int = 40,
    with_heading: bool = False,
) -> list[ChunkDraft]:
    """Cut a parsed document into chunks, in reading order.

    Args:
        doc: The parsed document.
        count_tokens: The embedder's token count (special tokens included).
        max_tokens: Tokens per chunk, special tokens not counted.
        overlap_tokens: Trailing sentences a prose chunk repeats from the previous one.
        with_heading: ``max_tokens`` covers the chunk's :func:`embedding_input` (document
            title and section, then the content): set it to the model's input length so
            that no chunk's tail goes unread. Otherwise it covers the content alone.
    """
    counter = _Counter(count_tokens)
    budgets: dict[str | None, int] = {}

    def budget(section: str | None) -> int:
        if section not in budgets:
            heading = counter(_heading(doc.title, section)) + 1 if with_heading else 0
            budgets[section] = max(max_tokens - heading, max_tokens // 2)
        return budgets[section]

    chunks: list[ChunkDraft] = []
    pending: list[Block] = []
    for block in doc.blocks:
        if block.kind == "table" and block.table is not None:
            chunks += _prose(doc, pending, counter, budget, overlap_tokens)
            pending = []
            chunks += _table_chunks(block, block.table, counter, budget(block.section))
        elif block.kind == "heading":
            chunks += _prose(doc, pending, counter, budget, overlap_tokens)
            pending = [block]
        else:
            pending.append(block)
    chunks += _prose(doc, pending, counter, budget, overlap_tokens)
    return chunks


def _sentences(doc: ParsedDocument, block: Block, counter: _Counter, limit: int) -> Iterator[_Span]:
    for match in _SENTENCE.finditer(block.text):
        text = match.group().rstrip()
        if not text:
            continue
        start = block.char_start + match.start()
        end = start + len(text)
        yield from _fit(doc, _Span(start, end, counter(text), block.page), counter, limit)


def _fit(doc: ParsedDocument, span: _Span, counter: _Counter, limit: int) -> Iterator[_Span]:
    """A sentence longer than a chunk's budget is cut at word boundaries."""
    if span.tokens <= limit:
        yield span
        return
    text = doc.text[span.start : span.end]
    words = list(re.finditer(r"\S+", text))
    half = words[len(words) // 2].start() if len(words) > 1 else len(text) // 2
    for start, end in ((0, half), (half, len(text))):
        piece = text[start:end].rstrip()
        if piece.strip():
            offset = span.start + start + (len(piece) - len(piece.lstrip()))
            stripped = piece.strip()
            sub = _Span(offset, offset + len(stripped), counter(stripped), span.page)
            yield from _fit(doc, sub, counter, limit)


def _prose(
    doc: ParsedDocument,
    blocks: list[Block],
    counter: _Counter,
    budget: Callable[[str | None], int],
    overlap_tokens: int,
) -> list[ChunkDraft]:
    if not blocks:
        return []
    section = blocks[0].text if blocks[0].kind == "heading" else blocks[0].section
    max_tokens = budget(section)
    spans = [span for block in blocks for span in _sentences(doc, block, counter, max_tokens)]
    chunks: list[ChunkDraft] = []
    current: list[_Span] = []
    index = 0
    while index < len(spans):
        span = spans[index]
        if current and sum(s.tokens for s in current) + span.tokens > max_tokens:
            current = _within_budget(doc, current, counter, max_tokens)
            chunks.append(_text_chunk(doc, current, section, counter))
            index = spans.index(current[-1]) + 1
            current = _overlap(current, overlap_tokens)
            continue
        current.append(span)
        index += 1
    if current and not (chunks and current[-1].end <= chunks[-1].char_end):
        current = _within_budget(doc, current, counter, max_tokens)
        chunks.append(_text_chunk(doc, current, section, counter))
        rest = spans[spans.index(current[-1]) + 1 :]
        if rest:  # the tail that did not fit goes round again
            chunks += _pack_tail(doc, rest, section, counter, max_tokens)
    return chunks


def _within_budget(
    doc: ParsedDocument, spans: list[_Span], counter: _Counter, max_tokens: int
) -> list[_Span]:
    """Sentence counts add up only roughly; drop trailing sentences until the text fits."""
    while len(spans) > 1 and counter(doc.text[spans[0].start : spans[-1].end]) > max_tokens:
        spans = spans[:-1]
    return spans


def _pack_tail(
    doc: ParsedDocument,
    spans: list[_Span],
    section: str | None,
    counter: _Counter,
    max_tokens: int,
) -> list[ChunkDraft]:
    chunks = []
    while spans:
        part = _within_budget(doc, spans, counter, max_tokens)
        chunks.append(_text_chunk(doc, part, section, counter))
        spans = spans[len(part) :]
    return chunks


def _overlap(spans: list[_Span], budget: int) -> list[_Span]:
    kept: list[_Span] = []
    total = 0
    for span in reversed(spans[1:]):  # never the whole previous chunk
        if total + span.tokens > budget:
            break
        kept.insert(0, span)
        total += span.tokens
    return kept


def _text_chunk(
    doc: ParsedDocument, spans: list[_Span], section: str | None, counter: _Counter
) -> ChunkDraft:
    start, end = spans[0].start, spans[-1].end
    content = doc.text[start:end]
    pages = sorted({s.page for s in spans if s.page is not None})
    meta: dict[str, Any] = {"pages": pages} if len(pages) > 1 else {}
    return ChunkDraft(
        kind="text",
        content=content,
        page=pages[0] if pages else None,
        section=section,
        char_start=start,
        char_end=end,
        token_count=counter(content),
        meta=meta,
    )


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ").strip()


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render_markdown_table(table: Table, rows: list[list[str]] | None = None) -> str:
    """The table (or some of its rows) as a GitHub-style Markdown table."""
    body = table.rows if rows is None else rows
    lines = [_markdown_row(table.headers), _markdown_row(["---"] * len(table.headers))]
    lines += [_markdown_row(row) for row in body]
    return "\n".join(lines)


def serialize_row(headers: list[str], row: list[str]) -> str:
    """``Header: value | Header: value`` for the non-empty cells of one row (a value alone
    where its header is empty: the row's label)."""
    pairs = [f"{h}: {v}" if h else v for h, v in zip(headers, row, strict=False) if v.strip()]
    return " | ".join(pairs)


def _table_label(table: Table, section: str | None) -> str:
    label = table.caption or section or "Table"
    return f"{label} (page {table.page})" if table.page else label


def _table_chunks(
    block: Block, table: Table, counter: _Counter, max_tokens: int
) -> list[ChunkDraft]:
    def draft(kind: ChunkKind, content: str, embed: str | None = None, **meta: Any) -> ChunkDraft:
        return ChunkDraft(
            kind=kind,
            content=content,
            page=block.page or table.page,
            section=block.section,
            char_start=block.char_start,
            char_end=block.char_end,
            token_count=counter(content),
            meta={"caption": table.caption, "columns": table.headers, **meta},
            embed_text=embed,
        )

    label = _table_label(table, block.section)
    header_tokens = counter(render_markdown_table(table, []))
    markdown_groups = _group_rows(
        table.rows, lambda row: counter(_markdown_row(row)), max_tokens - header_tokens
    )
    chunks = []
    for part, rows in enumerate(markdown_groups, start=1):
        text = render_markdown_table(table, rows)
        if table.caption:
            text = f"{table.caption}\n\n{text}"
        chunks.append(draft("table", text, part=part, parts=len(markdown_groups)))
    heading = " | ".join(table.headers)
    budget = max_tokens - counter(label)
    room = budget - counter(heading) - 1
    rows = [row for row in table.rows if any(cell.strip() for cell in row)]
    # Counts of separate lines add up only roughly: one token of slack per line.
    for group in _group_rows(rows, lambda row: counter(" | ".join(row)) + 1, room):
        if not group:
            continue
        shown = [serialize_row(table.headers, row) for row in group]
        if len(group) == 1 and counter(" | ".join(group[0])) + 1 > room:
            # One row over the budget alone (prose in a layout table): cut at spaces and
            # embedded as shown, so that no part of it goes unread.
            for piece in _split_words(shown[0], counter, budget):
                chunks.append(draft("table_rows", f"{label}\n{piece}", rows=1))
            continue
        compact = "\n".join([label, heading, *(" | ".join(row) for row in group)])
        chunks.append(draft("table_rows", "\n".join([label, *shown]), compact, rows=len(group)))
    return chunks


def _split_words(line: str, counter: _Counter, budget: int) -> list[str]:
    """The line, cut in halves at spaces until each piece fits ``budget``.

    A row of prose in a layout table can be longer than the model reads; its tail would
    get no vector.
    """
    words = line.split(" ")
    if len(words) < 2 or counter(line) <= budget:
        return [line]
    half = len(words) // 2
    first, second = " ".join(words[:half]), " ".join(words[half:])
    return _split_words(first, counter, budget) + _split_words(second, counter, budget)


def _group_rows(rows: list[Any], cost: Callable[[Any], int], budget: int) -> list[list[Any]]:
    """Consecutive rows packed under ``budget``; a row is never split here."""
    groups: list[list[Any]] = []
    current: list[Any] = []
    used = 0
    for row in rows:
        tokens = cost(row)
        if current and used + tokens > budget:
            groups.append(current)
            current, used = [], 0
        current.append(row)
        used += tokens
    if current or not groups:
        groups.append(current)
    return groups


def embedding_input(title: str, section: str | None, content: str) -> str:
    """What is embedded for a chunk: its content led by the document title and section."""
    heading = _heading(title, section)
    return f"{heading}\n{content}" if heading else content


def _heading(title: str, section: str | None) -> str:
    return " — ".join(dict.fromkeys(part for part in (title, section) if part))
