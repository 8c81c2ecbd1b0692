"""Table questions: is the right table row among the first search results?

    .venv/bin/python bench/table_questions.py ../shared/data/pdfplumber_tests
    .venv/bin/python bench/table_questions.py --embedder e5-int8 FOLDER...

The PDFs are parsed once, stored through the ingest pipeline (``Ingestor.store_parsed``:
chunking, embedding, lexical analysis and the write, as ``deskbot ingest`` does after
parsing) into a fresh collection on an embedded PostgreSQL, and asked questions made from
their own tables: for the first, middle and last row of each table, "<header> of <row
label>" with the row's last named column that holds a value. A question is answered when a
passage of the right document among the ``--k`` first results of ``Searcher.search`` holds,
on one line, the row's label and that value. Reported for hybrid search (what users get),
dense alone and lexical alone, with the chunks and tokens the model read.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.chunking import embedding_input
from knowledge.documents import ParsedDocument
from knowledge.errors import ParseError
from knowledge.ingest import expand_paths
from knowledge.parsing import parse_file
from knowledge.search import Scope


@dataclass(frozen=True)
class Question:
    """A question about one table cell, and what answers it."""

    source: str
    text: str
    label: str
    value: str


def questions_for(source: str, doc: ParsedDocument) -> list[Question]:
    """First, middle and last row of each table: "<header> of <row label>"."""
    found = []
    for block in doc.blocks:
        table = block.table
        if table is None or not table.rows:
            continue
        for index in sorted({0, len(table.rows) // 2, len(table.rows) - 1}):
            row = table.rows[index]
            label = next((value for value in row if value.strip()), "")
            named = [
                column
                for column, (header, value) in enumerate(zip(table.headers, row, strict=False))
                if value.strip() and value != label and header and not header.startswith("Column ")
            ]
            if label and named:
                column = named[-1]
                text = f"{table.headers[column]} of {label}"
                found.append(Question(source, text, label, row[column]))
    return found


def answers(question: Question, source: str, content: str) -> bool:
    """The passage is the question's document and holds the label and value on one line."""
    return source == question.source and any(
        question.label in line and question.value in line for line in content.split("\n")
    )


async def main(folders: list[Path], embedder: str, k: int) -> None:
    pdfs = [p for p in expand_paths(folders) if p.suffix.lower() == ".pdf"]
    docs: dict[Path, ParsedDocument] = {}
    for path in pdfs:
        try:
            docs[path] = await asyncio.to_thread(parse_file, path)
        except ParseError:
            continue
    questions = [q for path, doc in docs.items() for q in questions_for(str(path), doc)]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), embedder=embedder)  # models: DESKBOT_MODELS_DIR
        database = await open_database(settings)
        knowledge = make_knowledge(settings, database)
        collection = await knowledge.store.ensure_collection("tables", knowledge.embedder)
        for path, doc in docs.items():
            data = path.read_bytes()
            await knowledge.ingestor.store_parsed(
                doc,
                collection,
                source=str(path),
                digest=hashlib.sha256(data).hexdigest(),
                size_bytes=len(data),
            )
        chunks = tokens = 0
        model = knowledge.embedder
        for stored in await knowledge.store.list_documents("tables"):
            for chunk in await knowledge.store.document_chunks(stored.id):
                if chunk.kind != "table":  # the chunks that get a vector
                    read = embedding_input(
                        stored.title, chunk.section, chunk.embed_text or chunk.content
                    )
                    chunks += 1
                    tokens += min(model.count_tokens(read), model.max_tokens)
        print(f"{len(docs)} PDFs parsed, {len(questions)} table questions; {embedder}: ")
        print(f"{chunks} chunks embedded, {tokens:,} tokens read")
        for mode in ("hybrid", "dense", "lexical"):
            right = 0
            for question in questions:
                results = await knowledge.searcher.search(
                    question.text, Scope.everything(), k=k, mode=mode
                )
                right += any(answers(question, r.citation.source, r.content) for r in results)
            print(f"{mode:8} right row in the first {k}: {right}/{len(questions)}"
                  f" ({right / max(1, len(questions)):.3f})")  # fmt: skip
        await knowledge.ingestor.aclose()
        await database.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--embedder", default="minilm-int8", help="DESKBOT_EMBEDDER's values")
    parser.add_argument("--k", type=int, default=5, help="results looked at")
    args = parser.parse_args()
    asyncio.run(main(args.folders, args.embedder, args.k))
