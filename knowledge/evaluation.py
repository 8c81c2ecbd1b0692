"""Retrieval evaluation: load a judged test collection, score a run against its qrels.

Three on-disk formats are read into one :class:`EvalDataset`:

- ``trec``: a folder (searched recursively) holding a corpus of ``<DOC><DOCNO>..</DOCNO>..</DOC>``
  records (one or more files, ``.gz`` allowed), one topics file (``<top><num>..<title>..`` blocks,
  closed or classic unclosed tags, or plain ``qid text`` lines) and one qrels file
  (``qid iter docno rel`` lines). The Terrier layout of Vaswani/NPL is one such folder.
- ``beir``: a BEIR folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv``; pass a
  ``qrels/<split>.tsv`` file instead of the folder to read another split.
- ``korquad``: a SQuAD-style JSON file (or the folder holding exactly one). Each paragraph is a
  document ``"{article}-{paragraph}"`` (0-based indexes) titled by its article, underscores read
  as spaces; each question is a query whose one relevant document is its paragraph. Identical
  paragraphs are one document, the first one's id.

Rules shared by all formats, so scores compare across them:

- Grades ``<= 0`` are dropped: ``qrels`` holds relevant documents only.
- Judgements of a query that has no text are dropped (it cannot be asked). Judgements naming a
  document missing from the corpus are **kept**, as trec_eval keeps them: they count against
  recall exactly as in published figures. If *no* judged document is in the corpus, the corpus
  and qrels do not belong together and loading fails.
- Duplicate document or query ids are an error. Text is whitespace-normalized.
- BEIR keeps only the queries judged in the split (``queries.jsonl`` is shared by all splits,
  as BEIR's own loader does); TREC and KorQuAD keep every query in the file.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from knowledge.errors import KnowledgeError

__all__ = [
    "METRICS",
    "EvalDataError",
    "EvalDataset",
    "EvalDocument",
    "Format",
    "evaluate",
    "load_dataset",
]

Format = Literal["trec", "beir", "korquad"]
METRICS = ("ndcg@10", "map", "mrr", "recall@1", "recall@5", "recall@10")

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


def load_dataset(fmt: Format, path: Path) -> EvalDataset:
    """Load a judged test collection.

    Args:
        fmt: The on-disk format (see the module docstring).
        path: The collection's folder, or for ``korquad`` the JSON file.

    Returns:
        The collection.

    Raises:
        EvalDataError: The path is missing or a file is malformed.
    """
    loaders = {"trec": _load_trec, "beir": _load_beir, "korquad": _load_korquad}
    if fmt not in loaders:
        raise EvalDataError(f"unknown format {fmt!r}; expected one of {', '.join(loaders)}")
    if not path.exists():
        raise EvalDataError(f"no such file or folder: {path}")
    return loaders[fmt](path)


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Score a run: the mean of each of :data:`METRICS` over the judged queries.

    A query counts when qrels give it at least one document with grade ``> 0``; one missing
    from ``run`` scores 0, and run queries without judgements are ignored. A document repeated
    in a ranking gains nothing after its first occurrence but still takes its rank, so a
    retriever that repeats itself is not rewarded. MAP and MRR use the whole ranking.

    Args:
        run: Query id to ranked document ids, best first.
        qrels: Query id to ``{document id: grade}``.

    Returns:
        Metric name to mean score, in :data:`METRICS` order.

    Raises:
        EvalDataError: No query in ``qrels`` has a relevant document.
    """
    judged = {qid: docs for qid, docs in qrels.items() if any(g > 0 for g in docs.values())}
    if not judged:
        raise EvalDataError("no query in the qrels has a relevant document")
    totals = dict.fromkeys(METRICS, 0.0)
    for qid, docs in judged.items():
        for metric, score in _score_query(run.get(qid, ()), docs).items():
            totals[metric] += score
    return {metric: total / len(judged) for metric, total in totals.items()}


# ---------------------------------------------------------------------------- metrics


def _score_query(ranking: Sequence[str], judged: Mapping[str, int]) -> dict[str, float]:
    if isinstance(ranking, str):
        raise TypeError("a run maps each query id to a list of document ids, not a string")
    gains = _gains(ranking, judged)
    relevant = sum(1 for g in judged.values() if g > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
    hits = [g > 0 for g in gains]
    return {
        "ndcg@10": _dcg(gains[:10]) / _dcg(ideal[:10]),
        "map": _average_precision(hits) / relevant,
        "mrr": next((1 / rank for rank, hit in enumerate(hits, 1) if hit), 0.0),
        "recall@1": sum(hits[:1]) / relevant,
        "recall@5": sum(hits[:5]) / relevant,
        "recall@10": sum(hits[:10]) / relevant,
    }


def _gains(ranking: Sequence[str], judged: Mapping[str, int]) -> list[int]:
    """The grade earned at each rank: 0 for unjudged, non-relevant or repeated documents."""
    seen: set[str] = set()
    gains = []
    for doc in ranking:
        gains.append(0 if doc in seen else max(judged.get(doc, 0), 0))
        seen.add(doc)
    return gains


def _dcg(gains: Sequence[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, 1))


def _average_precision(hits: Sequence[bool]) -> float:
    """Sum of precision at each relevant rank (the caller divides by the relevant count)."""
    found, total = 0, 0.0
    for rank, hit in enumerate(hits, 1):
        if hit:
            found += 1
            total += found / rank
    return total


# ---------------------------------------------------------------------------- shared


def _finish(
    name: str, documents: list[EvalDocument], queries: dict[str, str], qrels: Qrels
) -> EvalDataset:
    """Apply the module's shared rules (see the module docstring) and build the dataset."""
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


def _add_query(queries: dict[str, str], qid: str, text: str, where: str) -> None:
    if qid in queries:
        raise EvalDataError(f"{where}: query id {qid!r} appears twice")
    if not text:
        raise EvalDataError(f"{where}: query {qid!r} has no text")
    queries[qid] = text


def _clean(text: str) -> str:
    return " ".join(text.split())


def _read_text(path: Path) -> str:
    """A file's text: gzip-aware, UTF-8 with a Latin-1 fallback (older TREC corpora)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _grade(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise EvalDataError(f"{where}: relevance {value!r} is not an integer") from None


# ---------------------------------------------------------------------------- trec

_DOC = re.compile(r"<DOC(?:\s[^>]*)?>(.*?)</DOC>", re.S | re.I)
_DOC_OPEN = re.compile(r"<DOC[\s>]", re.I)
_DOCNO = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.S | re.I)
_TITLE = re.compile(r"<(TITLE|HEADLINE|HEAD)>(.*?)</\1>", re.S | re.I)
_TEXT = re.compile(r"<TEXT>(.*?)</TEXT>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*([^<\s]+)", re.I)
_TOPIC_TITLE = re.compile(r"<title>\s*(?:Topic:)?(.*?)(?=<|\Z)", re.S | re.I)
_QREL_LINE = re.compile(r"\S+\s+\S+\s+\S+\s+-?\d+\s*")
_SKIPPED = ("readme", "license", "licence", ".")

_TrecRole = Literal["corpus", "topics", "qrels"]


def _load_trec(path: Path) -> EvalDataset:
    if not path.is_dir():
        raise EvalDataError(f"trec: expected a folder, got the file {path}")
    found = _find_trec_files(path)
    documents = [doc for file in found["corpus"] for doc in _trec_documents(file)]
    queries = _trec_topics(found["topics"][0])
    qrels = _trec_qrels(found["qrels"][0])
    return _finish(path.name, documents, queries, qrels)


def _find_trec_files(path: Path) -> dict[_TrecRole, list[Path]]:
    """The corpus files and the one topics and one qrels file under ``path``."""
    found: dict[_TrecRole, list[Path]] = {"corpus": [], "topics": [], "qrels": []}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        role = _trec_role(file)
        if role is not None:
            found[role].append(file)
    for kind, files in found.items():
        if not files:
            raise EvalDataError(f"trec: no {kind} file found under {path}")
        if kind != "corpus" and len(files) > 1:
            names = ", ".join(p.name for p in files)
            raise EvalDataError(f"trec: more than one {kind} file under {path}: {names}")
    return found


def _trec_role(file: Path) -> _TrecRole | None:
    """What a file in a TREC folder is, by its name and then its first few kilobytes."""
    name = file.name.lower()
    if name.startswith(_SKIPPED) or name.endswith(".md"):
        return None
    if "qrel" in name:
        return "qrels"
    head = _read_head(file)
    if _DOC_OPEN.search(head):
        return "corpus"
    if "<top>" in head.lower() or "quer" in name or "topic" in name:
        return "topics"
    lines = [line for line in head.splitlines()[:5] if line.strip()]
    if lines and all(_QREL_LINE.fullmatch(line) for line in lines):
        return "qrels"
    return None


def _read_head(file: Path) -> str:
    with gzip.open(file) if file.suffix == ".gz" else file.open("rb") as handle:
        return handle.read(65536).decode("utf-8", errors="replace")


def _trec_documents(file: Path) -> Iterator[EvalDocument]:
    content = _read_text(file)
    opened = len(_DOC_OPEN.findall(content))
    records = _DOC.findall(content)
    if len(records) != opened:
        raise EvalDataError(f"{file.name}: {opened} <DOC> tags but {len(records)} closed")
    for index, body in enumerate(records, 1):
        docno = _DOCNO.search(body)
        if docno is None or not docno.group(1):
            raise EvalDataError(f"{file.name}: document {index} has no <DOCNO>")
        yield _trec_document(docno.group(1), body[: docno.start()] + body[docno.end() :])


def _trec_document(doc_id: str, body: str) -> EvalDocument:
    title = _TITLE.search(body)
    texts = _TEXT.findall(body)
    if texts:
        text = " ".join(texts)
    elif title is not None:
        text = body[: title.start()] + body[title.end() :]
    else:
        text = body
    title_text = _clean(_TAG.sub(" ", title.group(2))) if title else ""
    return EvalDocument(id=doc_id, title=title_text, text=_clean(_TAG.sub(" ", text)))


def _trec_topics(file: Path) -> dict[str, str]:
    content = _read_text(file)
    queries: dict[str, str] = {}
    blocks = _TOP.findall(content)
    if not blocks:
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                qid, *text = line.split(None, 1)
                _add_query(queries, qid, _clean(" ".join(text)), f"{file.name} line {number}")
        return queries
    for index, block in enumerate(blocks, 1):
        num, title = _NUM.search(block), _TOPIC_TITLE.search(block)
        if num is None or title is None:
            raise EvalDataError(f"{file.name}: topic {index} lacks a <num> or a <title>")
        _add_query(queries, num.group(1), _clean(title.group(1)), f"{file.name} topic {index}")
    return queries


def _trec_qrels(file: Path) -> Qrels:
    qrels: Qrels = {}
    for number, line in enumerate(_read_text(file).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{file.name} line {number}"
        if len(fields) != 4:
            raise EvalDataError(f"{where}: expected 'qid iter docno rel', got {len(fields)} fields")
        qid, _, doc_id, grade = fields
        qrels.setdefault(qid, {})[doc_id] = _grade(grade, where)
    return qrels


# ---------------------------------------------------------------------------- beir


def _load_beir(path: Path) -> EvalDataset:
    if path.is_file():
        root, qrels_file = path.parent.parent, path
    else:
        root, qrels_file = path, path / "qrels" / "test.tsv"
    for needed in (root / "corpus.jsonl", root / "queries.jsonl", qrels_file):
        if not needed.is_file():
            raise EvalDataError(f"beir: missing {needed.relative_to(root)} in {root}")
    documents = [
        EvalDocument(id=doc_id, title=_clean(str(row.get("title") or "")), text=text)
        for doc_id, text, row in _beir_rows(root / "corpus.jsonl")
    ]
    qrels = _beir_qrels(qrels_file)
    queries: dict[str, str] = {}
    for qid, text, _ in _beir_rows(root / "queries.jsonl"):
        _add_query(queries, qid, text, "queries.jsonl")
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    return _finish(root.name, documents, judged, qrels)


def _beir_rows(file: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(_id, cleaned text, row)`` for each line of a BEIR JSONL file."""
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{file.name} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "_id" not in row or "text" not in row:
                raise EvalDataError(f"{where}: expected an object with '_id' and 'text'")
            yield str(row["_id"]), _clean(str(row["text"])), row


def _beir_qrels(file: Path) -> Qrels:
    qrels: Qrels = {}
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t") if "\t" in line else line.split()
        if not fields or fields == [""]:
            continue
        if number == 1 and len(fields) == 3 and not fields[2].strip().lstrip("-").isdigit():
            continue  # the header: query-id, corpus-id, score
        where = f"{file.name} line {number}"
        if len(fields) != 3:
            raise EvalDataError(f"{where}: expected 'query-id<TAB>corpus-id<TAB>score'")
        qid, doc_id, grade = (field.strip() for field in fields)
        qrels.setdefault(qid, {})[doc_id] = _grade(grade, where)
    return qrels


# ---------------------------------------------------------------------------- korquad


def _load_korquad(path: Path) -> EvalDataset:
    file = _korquad_file(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{file.name}: not JSON ({exc})") from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise EvalDataError(f"{file.name}: expected a SQuAD object with a 'data' list")
    documents: list[EvalDocument] = []
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    by_text: dict[str, str] = {}
    for a, article in enumerate(articles):
        # Titles are Wikipedia page names: "노아의_방주" is "노아의 방주".
        title = _clean(str(_field(article, "title", f"{file.name}: data[{a}]")).replace("_", " "))
        for p, paragraph in enumerate(_field(article, "paragraphs", f"{file.name}: data[{a}]")):
            where = f"{file.name}: data[{a}].paragraphs[{p}]"
            text = _clean(str(_field(paragraph, "context", where)))
            # Identical paragraphs (the dev set has a few) are one document: a retriever cannot
            # tell twins apart, so their questions are judged against the first.
            doc_id = by_text.setdefault(text, f"{a}-{p}")
            if doc_id == f"{a}-{p}":
                documents.append(EvalDocument(id=doc_id, title=title, text=text))
            for q, qa in enumerate(_field(paragraph, "qas", where)):
                qid = str(_field(qa, "id", f"{where}.qas[{q}]"))
                question = _clean(str(_field(qa, "question", f"{where}.qas[{q}]")))
                _add_query(queries, qid, question, f"{where}.qas[{q}]")
                qrels[qid] = {doc_id: 1}
    return _finish(file.stem, documents, queries, qrels)


def _korquad_file(path: Path) -> Path:
    if path.is_file():
        return path
    files = sorted(path.glob("*.json"))
    if len(files) != 1:
        raise EvalDataError(f"korquad: expected one .json file in {path}, found {len(files)}")
    return files[0]


def _field(container: object, key: str, where: str) -> Any:
    if not isinstance(container, dict) or key not in container:
        raise EvalDataError(f"{where} has no {key!r}")
    value = container[key]
    if key in ("paragraphs", "qas") and not isinstance(value, list):
        raise EvalDataError(f"{where}.{key} is not a list")
    return value
