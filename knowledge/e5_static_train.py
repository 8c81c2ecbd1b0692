"""Making ``e5-static``'s token table: distil it from e5-int8, then train it on e5's vectors.

1. :func:`vocabulary`: the e5 token ids that get a row: every piece made of Hangul,
   lower-case Latin letters, digits and ASCII punctuation, every token seen in the
   (lowercased) training texts, and the 20,000 likeliest pieces of the Unigram model
   without capitals (numbers, CJK and common symbols).
2. :func:`distill`: model2vec's start: each token alone through the encoder (e5-int8,
   ``passage: <token>``), mean-pooled, centred on the vectors' mean and unit length.
3. :func:`train`: tokenlearn's idea: the mean of a text's token vectors is pulled towards
   e5's (centred) vector of the whole text by a cosine loss, over a corpus of texts. The
   rows' lengths are learned too.
4. :func:`reweigh`: rows the corpus never trained keep their distilled unit length while
   trained ones grow to about 10; each is given the median length of trained rows of like
   rarity (the Unigram's log-probability), then every row is weighted by SIF,
   ``a / (a + p)`` with model2vec's default ``a`` = 1e-4 and ``p`` the Unigram's probability,
   as model2vec does after training.

Needs torch (training only); the embedder reading the table does not.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from knowledge._e5_file import E5File
from knowledge.e5_onnx import OnnxE5
from knowledge.onnx_runtime import _pad

__all__ = ["distill", "reweigh", "token_ids", "train", "vocabulary"]

Matrix = npt.NDArray[np.float32]
_READABLE = re.compile(r"^\u2581?[\x21-\x7e\u00c0-\u024f\uac00-\ud7a3\u3131-\u318e]+$")


def token_ids(e5: OnnxE5, texts: Sequence[str]) -> list[npt.NDArray[np.int64]]:
    """Each text's e5 token ids as the student reads it: lowercased, without ``<s>`` and
    ``</s>``."""
    encoded = e5._tokenizer.encode_batch([t.lower().translate(e5._table) for t in texts])
    return [np.asarray(e.ids[1:-1], dtype=np.int64) for e in encoded]


def vocabulary(
    pieces: E5File,
    seen: Sequence[npt.NDArray[np.int64]],
    *,
    likeliest: int = 20_000,
    readable: bool = True,
) -> npt.NDArray[np.int64]:
    """Sorted token ids that get a row (see the module's docstring); with ``readable``
    False and ``likeliest`` 0, only the tokens ``seen``."""
    first = 4  # <s>, <pad>, </s>, <unk>
    lower = [i for i, (p, _) in enumerate(pieces.pieces) if i >= first and p == p.lower()]
    chosen: set[int] = set()
    if readable:
        chosen = {i for i in lower if _READABLE.match(pieces.pieces[i][0])}
    ranked = sorted(lower, key=lambda i: -pieces.pieces[i][1])
    chosen.update(ranked[:likeliest])
    for ids in seen:
        chosen.update(int(i) for i in ids if i >= first)
    return np.asarray(sorted(chosen), dtype=np.int64)


def distill(e5: OnnxE5, ids: npt.NDArray[np.int64], batch: int = 1024) -> Matrix:
    """Each token's e5 vector as a one-token passage, centred and unit length."""
    prefix = e5._tokenizer.encode("passage:").ids[:-1]  # <s> ▁passage :
    rows = []
    began = time.perf_counter()
    for start in range(0, len(ids), batch):
        part = [np.asarray([*prefix, int(i), e5._eos]) for i in ids[start : start + batch]]
        input_ids, mask = _pad(part)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        rows.append(np.asarray(e5._session.run(None, feeds)[0], dtype=np.float32))
        if start // batch % 10 == 0:
            print(f"distil {start + len(part)}/{len(ids)} {time.perf_counter() - began:.0f} s",
                  file=sys.stderr)  # fmt: skip
    vectors = np.vstack(rows)
    vectors -= vectors.mean(axis=0)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def train(
    texts: Sequence[npt.NDArray[np.int64]],
    targets: Matrix,
    vocab: npt.NDArray[np.int64],
    start: Matrix,
    *,
    epochs: int = 3,
    batch: int = 128,
    lr: float = 0.05,
    seed: int = 0,
) -> Matrix:
    """Token vectors (rows of ``vocab``) trained from ``start`` so that each text's mean
    vector points where its (centred) target points. ``texts`` are token ids."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # the same sums in the same order on every machine
    rows = np.full(int(vocab.max()) + 1, -1, dtype=np.int64)
    rows[vocab] = np.arange(len(vocab))
    bags = [rows[t[t <= vocab.max()]] for t in texts]
    bags = [b[b >= 0] for b in bags]
    keep = [i for i, b in enumerate(bags) if len(b)]
    goal = targets[keep] - targets.mean(axis=0)
    goal /= np.linalg.norm(goal, axis=1, keepdims=True)
    table = torch.nn.EmbeddingBag(len(vocab), start.shape[1], mode="mean", sparse=True)
    with torch.no_grad():
        table.weight.copy_(torch.from_numpy(start))
    optimizer = torch.optim.SparseAdam(table.parameters(), lr=lr)
    order = np.random.default_rng(seed)
    for epoch in range(epochs):
        losses = []
        for part in np.array_split(order.permutation(len(keep)), max(1, len(keep) // batch)):
            flat = torch.from_numpy(np.concatenate([bags[keep[i]] for i in part]))
            lengths = np.array([len(bags[keep[i]]) for i in part])
            offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
            predicted = table(flat, offsets)
            wanted = torch.from_numpy(goal[part])
            loss = 1 - torch.nn.functional.cosine_similarity(predicted, wanted).mean()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()  # type: ignore[no-untyped-call]
            losses.append(loss.item())
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}", file=sys.stderr)
    return np.asarray(table.weight.detach().numpy(), dtype=np.float32)


def reweigh(
    table: Matrix,
    vocab: npt.NDArray[np.int64],
    pieces: E5File,
    trained: npt.NDArray[np.bool_],
    *,
    sif: float = 1e-4,
    bins: int = 20,
) -> Matrix:
    """``table`` with untrained rows at trained rows' lengths, then SIF-weighted (step 4)."""
    scores = np.array([pieces.pieces[i][1] for i in vocab])
    lengths = np.linalg.norm(table, axis=1)
    edges = np.quantile(scores[trained], np.linspace(0, 1, bins + 1)[1:-1])
    rarity = np.digitize(scores, edges)
    overall = float(np.median(lengths[trained]))  # for a bin ties left without trained rows
    typical = np.array(
        [
            float(np.median(members))
            if (members := lengths[trained & (rarity == b)]).size
            else overall
            for b in range(bins)
        ]
    )
    out = table.copy()
    untrained = ~trained & (lengths > 0)
    out[untrained] *= (typical[rarity[untrained]] / lengths[untrained])[:, None]
    weights = sif / (sif + np.exp(scores))
    return np.asarray(out * weights[:, None], dtype=np.float32)
