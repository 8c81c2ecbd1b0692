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

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from knowledge._eval_data import EvalDataError, EvalDataset, EvalDocument
from knowledge._eval_formats import load_beir, load_korquad, load_trec

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
    loaders = {"trec": load_trec, "beir": load_beir, "korquad": load_korquad}
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
