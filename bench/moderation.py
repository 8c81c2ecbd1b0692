"""Moderation decisions: latency and throughput of the core path, on the local classifier.

    .venv/bin/python bench/moderation.py --model DIR \\
        --korean ../shared/data/korean-hate-speech/labeled/dev.tsv \\
        --davidson ../shared/data/davidson_hate_offensive/data/labeled_data.csv \\
        [--messages 2000] [--concurrency 8] [--mode shadow|enforce] [--json]

Messages: BEEP! dev and Davidson tweets taken in turn until ``--messages``, from 50 authors
in 5 channels of one guild. Each goes through :meth:`bot.moderation.Moderator.moderate` as
the Discord listener calls it: the guild's policy (the default thresholds, in ``--mode``),
the local model at ``--model`` (``deskbot classifier train``; nothing from a language
model), whole and in windows, and the decision, strike and audit rows written to an
embedded PostgreSQL in a temporary directory. Discord itself is not in the path.

- latency: ``await moderate(message)`` for one message at a time, p50 / p99 (target p99
  <= 50 ms);
- throughput: all messages again with ``--concurrency`` in flight, messages per second
  (target >= 500/s on 2 cores);
- classify only: the local model alone per message, p50 / p99 (its share of a decision);
- unclassified: messages whose ``moderate`` raised (target 0).

Nothing is asserted; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.moderation import Incoming, ModerationStore, Moderator, Policy, parse_mode
from bot.settings import Settings
from bot.storage import Database, open_database
from tools.classifier import LocalClassifier, read_dataset

GUILD = "1000"
DAVIDSON_MAP = {"0": "hate", "1": "offensive", "2": "none"}


def messages(korean: Path, davidson: Path, count: int) -> list[Incoming]:
    """``count`` messages, Korean and English in turn, from 50 authors in 5 channels."""
    ko = read_dataset(korean, text_col="comments", label_col="hate").texts
    en = read_dataset(davidson, text_col="tweet", label_col="class", label_map=DAVIDSON_MAP)
    mixed = [t for pair in itertools.zip_longest(ko, en.texts) for t in pair if t]
    texts = list(itertools.islice(itertools.cycle(mixed), count))
    return [
        Incoming(GUILD, str(100 + i % 5), str(10_000 + i), str(500 + i % 50), text)
        for i, text in enumerate(texts)
    ]


async def timed(moderator: Moderator, message: Incoming) -> tuple[float, str]:
    """Milliseconds for one decision, and its outcome (an action, ``clean`` or ``error``)."""
    started = time.perf_counter()
    try:
        decision = await moderator.moderate(message)
    except Exception as exc:  # counted, not raised: the bench reports what was left over
        return (time.perf_counter() - started) * 1000, f"error: {type(exc).__name__}"
    outcome = "clean" if decision is None else decision.action
    return (time.perf_counter() - started) * 1000, outcome


async def sustained(
    moderator: Moderator, batch: Sequence[Incoming], concurrency: int
) -> tuple[float, Counter[str]]:
    """Messages per second with ``concurrency`` decisions in flight, and the outcomes."""
    gate = asyncio.Semaphore(concurrency)

    async def one(message: Incoming) -> str:
        async with gate:
            return (await timed(moderator, message))[1]

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(m) for m in batch))
    return len(batch) / (time.perf_counter() - started), Counter(outcomes)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    batch = messages(Path(args.korean), Path(args.davidson), args.messages)
    classifier = LocalClassifier.load(Path(args.model))
    with tempfile.TemporaryDirectory(prefix="deskbot-bench-mod-") as folder:
        settings = Settings(_env_file=None, data_dir=Path(folder))
        database = await open_database(settings)
        try:
            return await measure(database, classifier, batch, args)
        finally:
            await database.close()


async def measure(
    database: Database, classifier: LocalClassifier, batch: list[Incoming], args: argparse.Namespace
) -> dict[str, Any]:
    store = ModerationStore(database.engine)
    policy = replace(Policy.default(GUILD), mode=parse_mode(args.mode))
    await store.save_policy(policy, actor="bench")
    moderator = Moderator(classifier, store)
    for message in batch[:20]:  # warm-up: model pages, connection pool
        await moderator.moderate(replace(message, message_id=f"warm-{message.message_id}"))
    latencies, outcomes = [], Counter[str]()
    for message in batch:
        ms, outcome = await timed(moderator, message)
        latencies.append(ms)
        outcomes[outcome] += 1
    again = [replace(m, message_id=f"again-{m.message_id}") for m in batch]
    per_s, concurrent = await sustained(moderator, again, args.concurrency)
    cuts = statistics.quantiles(latencies, n=100)
    alone = statistics.quantiles(await classify_only(classifier, batch), n=100)
    unclassified = sum(n for k, n in (outcomes + concurrent).items() if k.startswith("error"))
    return {
        "messages": len(batch),
        "mode": args.mode,
        "latency_ms": {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2)},
        "classify_only_ms": {"p50": round(alone[49], 2), "p99": round(alone[98], 2)},
        "throughput_per_s": round(per_s),
        "concurrency": args.concurrency,
        "unclassified": unclassified,
        "outcomes": dict(outcomes.most_common()),
    }


async def classify_only(classifier: LocalClassifier, batch: Sequence[Incoming]) -> list[float]:
    """Milliseconds of the classifier alone per message (its share of a decision)."""
    latencies = []
    for message in batch:
        started = time.perf_counter()
        await classifier.classify(message.text)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a `deskbot classifier train` model")
    parser.add_argument("--korean", required=True, help="BEEP! dev.tsv")
    parser.add_argument("--davidson", required=True, help="Davidson labeled_data.csv")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mode", default="shadow", choices=["shadow", "enforce"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
