"""A judged test collection in memory, and the rules every format's loader applies.

See :mod:`knowledge.evaluation` for the formats and the shared rules.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from knowledge.errors import KnowledgeError

Qrels = dict[str, dict[str, int]]


class EvalDataError(KnowledgeError):
    """A test collection could not be loaded; ``str(exc)`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(reason.split()))


@dataclass(frozen=True)
class EvalDocument:
    """One document of a test collection."""

    id: str
    title: str
    text: str


@dataclass
class EvalDataset:
    """A corpus, its queries and the relevance judgements (``qrels``) that connect them.

    Attributes:
        name: The collection's folder or file name.
        documents: The corpus, in file order.
        queries: Query id to query text.
        qrels: Query id to ``{document id: grade}``, grades ``> 0`` only.
    """

    name: str
    documents: list[EvalDocument]
    queries: dict[str, str]
    qrels: Qrels


def finish(
    name: str, documents: list[EvalDocument], queries: dict[str, str], qrels: Qrels
) -> EvalDataset:
    """Apply the shared rules (see :mod:`knowledge.evaluation`) and build the dataset."""
    doc_ids: set[str] = set()
    for doc in documents:
        if doc.id in doc_ids:
            raise EvalDataError(f"{name}: document id {doc.id!r} appears twice")
        doc_ids.add(doc.id)
    kept: Qrels = {}
    for qid, docs in qrels.items():
        relevant = {doc: grade for doc, grade in docs.items() if grade > 0}
        if qid in queries and relevant:
            kept[qid] = relevant
    if not kept:
        raise EvalDataError(f"{name}: no judged query has both text and a relevant document")
    if not any(doc in doc_ids for docs in kept.values() for doc in docs):
        raise EvalDataError(f"{name}: no judged document is in the corpus (wrong corpus?)")
    return EvalDataset(name=name, documents=documents, queries=queries, qrels=kept)


def add_query(queries: dict[str, str], qid: str, text: str, where: str) -> None:
    """Add one query; a repeated id or an empty text is an error."""
    if qid in queries:
        raise EvalDataError(f"{where}: query id {qid!r} appears twice")
    if not text:
        raise EvalDataError(f"{where}: query {qid!r} has no text")
    queries[qid] = text


def clean(text: str) -> str:
    """Whitespace normalized."""
    return " ".join(text.split())


def read_text(path: Path) -> str:
    """A file's text: gzip-aware, UTF-8 with a Latin-1 fallback (older TREC corpora)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_grade(value: str, where: str) -> int:
    """A relevance grade from its text."""
    try:
        return int(value)
    except ValueError:
        raise EvalDataError(f"{where}: relevance {value!r} is not an integer") from None
