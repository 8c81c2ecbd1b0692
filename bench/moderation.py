"""Moderation decisions: latency and throughput through the gateway and in the core alone.

    .venv/bin/python bench/moderation.py --model DIR \\
        --korean ../shared/data/korean-hate-speech/labeled/dev.tsv \\
        --davidson ../shared/data/davidson_hate_offensive/data/labeled_data.csv \\
        [--messages 2000] [--runs 3] [--rate 500] [--concurrency 8] \\
        [--path gateway|core|both] [--mode shadow|enforce] [--json]

Messages: BEEP! dev and Davidson tweets taken in turn until ``--messages``; the guild's
policy is the default one in ``--mode``; the classifier is the local model at ``--model``
(``deskbot classifier train``; nothing from a language model), each message whole and in
windows; every decision, strike and audit row is written to an embedded PostgreSQL in a
temporary directory.

Gateway path: the fake Discord (``tests/fakes/discord_api.py``, a thread of this process)
dispatches MESSAGE_CREATE events from 50 members over its websocket to a real
``DeskbotClient`` (discord.py, its listeners, the moderation claim) whose moderator tells
the bench of each decision through :attr:`bot.moderation.Moderator.observers`. Latency is
the fake's dispatch (``perf_counter``) to that callback.

- one at a time: each message sent once the last is decided, p50 / p99 (target p99 <= 50 ms);
- burst: all messages sent as fast as the fake dispatches them, messages per second from
  the first dispatch to the last decision (target >= 500/s on 2 cores; median of
  ``--runs``), with its (queueing) latency split into dispatch -> ``moderate()`` and
  ``moderate()`` -> decision;
- at rate: all messages paced at ``--rate`` a second, latency p50 / p99 and its split;
- CPU per message by stage over the median burst: the bot's event loop, the classifier's
  threads, the fake Discord (its server thread and the sender), this PostgreSQL;
- unclassified: messages never decided (target 0).

Core path: :meth:`~bot.moderation.Moderator.moderate` called directly (one guild, 50
authors, 5 channels): one at a time p50 / p99, messages per second with ``--concurrency``
in flight and with all of them at once, the classifier alone per message, outcomes.

Nothing is asserted; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes, when run as a script
    sys.path.insert(0, str(REPO))

from bench.moderation_gateway import gateway_path  # noqa: E402
from bench.slack_ack import pct  # noqa: E402
from bot.moderation import (  # noqa: E402
    Incoming,
    ModerationStore,
    Moderator,
    Policy,
    parse_mode,
)
from bot.settings import Settings  # noqa: E402
from bot.storage import Database, open_database  # noqa: E402
from tools.classifier import LocalClassifier, read_dataset  # noqa: E402

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
    result: dict[str, Any] = {"messages": len(batch), "mode": args.mode}
    if args.path in ("core", "both"):
        result["core"] = await core_path(args, batch)
        print("core path done", file=sys.stderr)
    if args.path in ("gateway", "both"):
        result["gateway"] = await gateway_path(args, [m.text for m in batch])
        print("gateway path done", file=sys.stderr)
    return result


async def core_path(args: argparse.Namespace, batch: list[Incoming]) -> dict[str, Any]:
    """The moderation core alone, on an embedded PostgreSQL of its own."""
    classifier = LocalClassifier.load(args.model)
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
    everything = []
    for run in range(args.runs):
        burst = [replace(m, message_id=f"all{run}-{m.message_id}") for m in batch]
        rate, counted = await sustained(moderator, burst, len(burst))
        everything.append(rate)
        concurrent += counted
    alone = await classify_only(classifier, batch)
    unclassified = sum(n for k, n in (outcomes + concurrent).items() if k.startswith("error"))
    return {
        "one_at_a_time_ms": {"p50": pct(latencies, 50), "p99": pct(latencies, 99)},
        "classify_only_ms": {"p50": pct(alone, 50), "p99": pct(alone, 99)},
        "throughput_per_s": round(per_s),
        "concurrency": args.concurrency,
        "all_at_once_per_s": round(statistics.median(everything)),
        "all_at_once_per_s_runs": [round(r) for r in everything],
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
    parser.add_argument("--concurrency", type=int, default=8, help="core: decisions in flight")
    parser.add_argument("--runs", type=int, default=3, help="bursts; the median is reported")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a burst may take")
    parser.add_argument("--rate", type=float, default=500.0, help="messages/s of the paced run")
    parser.add_argument("--path", default="both", choices=["core", "gateway", "both"])
    parser.add_argument("--mode", default="shadow", choices=["shadow", "enforce"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.model = Path(args.model).resolve()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
