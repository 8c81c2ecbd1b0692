"""How hybrid search combines its two lists: per-list normalization, and reciprocal rank fusion.

:class:`knowledge.search.Searcher` weighs the normalized scores (see ``Searcher._weighted``);
:func:`rrf` is the alternative ``fusion="rrf"``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Hit", "normalize", "rrf"]


@dataclass
class Hit:
    """One chunk's scores from each retriever (None: that retriever did not return it).

    ``unembedded``: the chunk has no vector yet (a deferred ingest's, beyond what the search
    embedded on demand), so its dense score is unknown rather than low.
    """

    dense: float | None = None
    lexical: float | None = None
    unembedded: bool = False


def normalize(scores: dict[str, float | None], reference: int) -> dict[str, float]:
    """Scale linearly so the best is 1 and the ``reference``-th best is 0.

    Anchoring at a fixed rank, not at the last candidate, keeps the top of a fused list the
    same however deep the candidate lists are fetched. Scores below the anchor go negative
    rather than clamping at 0, so the tail keeps its order (with the missing-score rule in
    ``Searcher._weighted``: Vaswani hybrid MAP at depth 1000 from 0.295 to 0.306).
    """
    values = {k: v for k, v in scores.items() if v is not None}
    if not values:
        return {}
    ordered = sorted(values.values(), reverse=True)
    high, low = ordered[0], ordered[min(reference, len(ordered)) - 1]
    if high - low < 1e-12:
        return dict.fromkeys(values, 1.0)
    return {k: (v - low) / (high - low) for k, v in values.items()}


def rrf(hits: dict[str, Hit], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion: the sum of ``1 / (k + rank)`` over the retrievers that found each."""
    scores: dict[str, float] = dict.fromkeys(hits, 0.0)
    for attribute in ("dense", "lexical"):
        ordered = sorted(
            (cid for cid, h in hits.items() if getattr(h, attribute) is not None),
            key=lambda cid, a=attribute: getattr(hits[cid], a),  # type: ignore[misc]
            reverse=True,
        )
        for rank, cid in enumerate(ordered, start=1):
            scores[cid] += 1 / (k + rank)
    return scores
