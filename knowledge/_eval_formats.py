"""Loaders of the on-disk formats of :mod:`knowledge.evaluation`: TREC, BEIR and KorQuAD."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from knowledge._eval_data import (
    EvalDataError,
    EvalDataset,
    EvalDocument,
    Qrels,
    add_query,
    clean,
    finish,
    parse_grade,
    read_text,
)

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


def load_trec(path: Path) -> EvalDataset:
    if not path.is_dir():
        raise EvalDataError(f"trec: expected a folder, got the file {path}")
    found = _find_trec_files(path)
    documents = [doc for file in found["corpus"] for doc in _trec_documents(file)]
    queries = _trec_topics(found["topics"][0])
    qrels = _trec_qrels(found["qrels"][0])
    return finish(path.name, documents, queries, qrels)


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
    content = read_text(file)
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
    title_text = clean(_TAG.sub(" ", title.group(2))) if title else ""
    return EvalDocument(id=doc_id, title=title_text, text=clean(_TAG.sub(" ", text)))


def _trec_topics(file: Path) -> dict[str, str]:
    content = read_text(file)
    queries: dict[str, str] = {}
    blocks = _TOP.findall(content)
    if not blocks:
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                qid, *text = line.split(None, 1)
                add_query(queries, qid, clean(" ".join(text)), f"{file.name} line {number}")
        return queries
    for index, block in enumerate(blocks, 1):
        num, title = _NUM.search(block), _TOPIC_TITLE.search(block)
        if num is None or title is None:
            raise EvalDataError(f"{file.name}: topic {index} lacks a <num> or a <title>")
        add_query(queries, num.group(1), clean(title.group(1)), f"{file.name} topic {index}")
    return queries


def _trec_qrels(file: Path) -> Qrels:
    qrels: Qrels = {}
    for number, line in enumerate(read_text(file).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{file.name} line {number}"
        if len(fields) != 4:
            raise EvalDataError(f"{where}: expected 'qid iter docno rel', got {len(fields)} fields")
        qid, _, doc_id, grade = fields
        qrels.setdefault(qid, {})[doc_id] = parse_grade(grade, where)
    return qrels


# ---------------------------------------------------------------------------- beir


def load_beir(path: Path) -> EvalDataset:
    if path.is_file():
        root, qrels_file = path.parent.parent, path
    else:
        root, qrels_file = path, path / "qrels" / "test.tsv"
    for needed in (root / "corpus.jsonl", root / "queries.jsonl", qrels_file):
        if not needed.is_file():
            raise EvalDataError(f"beir: missing {needed.relative_to(root)} in {root}")
    documents = [
        EvalDocument(id=doc_id, title=clean(str(row.get("title") or "")), text=text)
        for doc_id, text, row in _beir_rows(root / "corpus.jsonl")
    ]
    qrels = _beir_qrels(qrels_file)
    queries: dict[str, str] = {}
    for qid, text, _ in _beir_rows(root / "queries.jsonl"):
        add_query(queries, qid, text, "queries.jsonl")
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    return finish(root.name, documents, judged, qrels)


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
            yield str(row["_id"]), clean(str(row["text"])), row


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
        qrels.setdefault(qid, {})[doc_id] = parse_grade(grade, where)
    return qrels


# ---------------------------------------------------------------------------- korquad


def load_korquad(path: Path) -> EvalDataset:
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
        title = clean(str(_field(article, "title", f"{file.name}: data[{a}]")).replace("_", " "))
        for p, paragraph in enumerate(_field(article, "paragraphs", f"{file.name}: data[{a}]")):
            where = f"{file.name}: data[{a}].paragraphs[{p}]"
            text = clean(str(_field(paragraph, "context", where)))
            # Identical paragraphs (the dev set has a few) are one document: a retriever cannot
            # tell twins apart, so their questions are judged against the first.
            doc_id = by_text.setdefault(text, f"{a}-{p}")
            if doc_id == f"{a}-{p}":
                documents.append(EvalDocument(id=doc_id, title=title, text=text))
            for q, qa in enumerate(_field(paragraph, "qas", where)):
                qid = str(_field(qa, "id", f"{where}.qas[{q}]"))
                question = clean(str(_field(qa, "question", f"{where}.qas[{q}]")))
                add_query(queries, qid, question, f"{where}.qas[{q}]")
                qrels[qid] = {doc_id: 1}
    return finish(file.stem, documents, queries, qrels)


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
