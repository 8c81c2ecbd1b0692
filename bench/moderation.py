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
import contextlib
import itertools
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes, when run as a script
    sys.path.insert(0, str(REPO))

from bench.slack_ack import pct  # noqa: E402
from bot.app import open_app  # noqa: E402
from bot.discord.client import DeskbotClient  # noqa: E402
from bot.discord.server import connect, start_client  # noqa: E402
from bot.moderation import (  # noqa: E402
    Decision,
    Incoming,
    ModerationStore,
    Moderator,
    Policy,
    parse_mode,
)
from bot.settings import Settings  # noqa: E402
from bot.storage import Database, open_database  # noqa: E402
from tests.fakes.discord_api import CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, FakeDiscord  # noqa: E402
from tests.fakes.discord_world import user_payload  # noqa: E402
from tools.classifier import LocalClassifier, read_dataset  # noqa: E402

GUILD = "1000"
DAVIDSON_MAP = {"0": "hate", "1": "offensive", "2": "none"}
LOOP = "bot loop (discord.py, listeners, moderation, SQLAlchemy)"
FAKE = "fake Discord (server thread and sender)"
POSTGRES = "postgres (the bench's embedded server)"


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


# --- the gateway path --------------------------------------------------------------------


@dataclass
class Burst:
    """One burst through the gateway: dispatch and decision times per message id."""

    sent: dict[str, float]
    decided: dict[str, float]
    cpu_s: dict[str, float]
    wall_s: float

    def latencies_ms(self) -> list[float]:
        return [(self.decided[i] - t) * 1000 for i, t in self.sent.items() if i in self.decided]

    def per_s(self) -> float:
        last = max((self.decided[i] for i in self.sent if i in self.decided), default=math.nan)
        return len(self.sent) / (last - min(self.sent.values()))


class Gateway:
    """A real :class:`DeskbotClient` on the fake Discord, its moderator observed."""

    def __init__(
        self, fake: FakeDiscord, client: DeskbotClient, authors: list[str], folder: str
    ) -> None:
        self.fake = fake
        self.folder = folder  # the embedded PostgreSQL's, to find its processes
        self.client = client
        self.authors = authors
        self.decided: dict[str, float] = {}
        self.outcomes: Counter[str] = Counter()
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.expected: set[str] = set()  # the burst's messages not decided yet
        self.all_decided = asyncio.Event()
        moderator = client.moderation.moderator
        assert moderator is not None, "moderation is off: is --model a classifier model?"
        moderator.observers.append(self.observe)

    def observe(self, message: Incoming, decision: Decision | None, seconds: float) -> None:
        self.decided[message.message_id] = time.perf_counter()
        self.outcomes["clean" if decision is None else decision.action] += 1
        self.expected.discard(message.message_id)
        if not self.expected:
            self.all_decided.set()
        waiter = self.waiting.pop(message.message_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, n: int, text: str) -> tuple[str, float]:
        """Post one member message as Discord would dispatch it; its id and dispatch time."""
        channel = (CHANNEL_ID, OTHER_CHANNEL_ID)[n % 2]
        started = time.perf_counter()
        event = self.fake.send_message(channel, text, author_id=self.authors[n % len(self.authors)])
        return str(event["id"]), started

    async def one_at_a_time(self, texts: Sequence[str]) -> list[float]:
        """Milliseconds from dispatch to decision, each message sent after the last's."""
        latencies = []
        for n, text in enumerate(texts):
            message_id, started = self.send(n, text)  # on this loop: nothing runs in between
            waiter = self.waiting[message_id] = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(waiter, 30)
            latencies.append((self.decided[message_id] - started) * 1000)
        return latencies

    async def burst(self, texts: Sequence[str], timeout: float) -> Burst:
        """Every text sent as fast as the fake dispatches, from a thread of its own."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[list[tuple[str, float]], float]] = loop.create_future()

        def send_all() -> None:  # its CPU time counted here: the thread is gone by the end
            sent = [self.send(n, t) for n, t in enumerate(texts)]
            loop.call_soon_threadsafe(done.set_result, (sent, time.thread_time()))

        before, began = cpu_by_stage(self.folder), time.perf_counter()
        threading.Thread(target=send_all, name="bench-sender", daemon=True).start()
        pairs, sender_cpu = await done
        sent = dict(pairs)
        self.expected = set(sent) - self.decided.keys()
        self.all_decided.clear()
        if self.expected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_decided.wait(), timeout)
        after = cpu_by_stage(self.folder)
        cpu = cpu_spent(before, after)
        cpu[FAKE] = cpu.get(FAKE, 0.0) + sender_cpu
        return Burst(sent, dict(self.decided), cpu, time.perf_counter() - began)


def _postgres(psutil: Any, folder: str) -> list[Any]:
    """The embedded server started in ``folder`` and its backends (not other servers')."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and folder in " ".join(process.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                found += [process, *process.children(recursive=True)]
    return found


def cpu_by_stage(folder: str) -> dict[str, float]:
    """CPU seconds so far: this process's threads by role, and each process of the
    embedded PostgreSQL (by pid: a backend that ends between two readings is not lost)."""
    import psutil  # the bench's own need, not the bot's

    names = {t.native_id: t.name for t in threading.enumerate()}
    stages: Counter[str] = Counter()
    for thread in psutil.Process().threads():
        name = names.get(thread.id, "other")
        stage = (
            LOOP
            if name == "MainThread"
            else FAKE
            if name == "fake-discord"
            else "classifier threads"
            if name.startswith("asyncio_")
            else "other threads"
        )
        stages[stage] += thread.user_time + thread.system_time
    for process in _postgres(psutil, folder):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            stages[f"{POSTGRES} {process.pid}"] += times.user + times.system
    return dict(stages)


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two readings by stage, PostgreSQL's processes summed."""
    spent: Counter[str] = Counter()
    for key, seconds in after.items():
        stage = POSTGRES if key.startswith(POSTGRES) else key
        spent[stage] += seconds - before.get(key, 0.0)
    return dict(spent)


def add_authors(fake: FakeDiscord, count: int) -> list[str]:
    """``count`` plain members of the fake guild (no roles), before the bot connects."""
    ids = [str(1_300_000_000_000_100_000 + n) for n in range(count)]
    with fake.world.lock:
        for n, user_id in enumerate(ids):
            fake.world.users[user_id] = user_payload(user_id, f"member{n}")
            fake.world.member_roles[user_id] = []
    return ids


async def gateway_path(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    """The whole path: MESSAGE_CREATE from the fake Discord to the moderator's decision."""
    fake = FakeDiscord().start()
    authors = add_authors(fake, 50)
    try:
        with tempfile.TemporaryDirectory(prefix="deskbot-bench-modgw-") as folder:
            settings = Settings(
                _env_file=None,
                data_dir=Path(folder),
                discord_token=fake.token,
                discord_api_url=fake.api_url,
                discord_guilds=GUILD_ID,
                classifier_model=args.model,
                classifier_mode="local",
                rate_limit=1_000_000,
                discord_guild_rate_limit=1_000_000,
            )
            async with open_app(settings) as app, start_client(app) as client:
                connection = asyncio.create_task(connect(client))
                try:
                    await asyncio.wait_for(client.wait_until_ready(), 60)
                    return await measure_gateway(
                        args, Gateway(fake, client, authors, folder), texts
                    )
                finally:
                    await client.close()
                    await asyncio.gather(connection, return_exceptions=True)
    finally:
        fake.stop()


async def measure_gateway(
    args: argparse.Namespace, gateway: Gateway, texts: list[str]
) -> dict[str, Any]:
    moderation = gateway.client.moderation
    policy = replace(Policy.default(GUILD_ID), mode=parse_mode(args.mode))
    await moderation.store.save_policy(policy, actor="bench")
    assert moderation.moderator is not None
    moderation.moderator.forget(GUILD_ID)
    await gateway.one_at_a_time(texts[:20])  # warm-up: connections, model pages
    alone = await gateway.one_at_a_time(texts)
    gateway.outcomes.clear()
    bursts = [await gateway.burst(texts, args.timeout) for _ in range(args.runs)]
    rates = [b.per_s() for b in bursts]
    middle = bursts[rates.index(statistics.median_low(rates))]
    loaded = middle.latencies_ms()
    cpu = middle.cpu_s
    return {
        "one_at_a_time_ms": {"p50": pct(alone, 50), "p99": pct(alone, 99)},
        "burst_per_s": round(statistics.median(rates)),
        "burst_per_s_runs": [round(r) for r in rates],
        "burst_latency_ms": {"p50": pct(loaded, 50), "p99": pct(loaded, 99)},
        "unclassified": sum(len(b.sent.keys() - b.decided.keys()) for b in bursts),
        "cpu_ms_per_message": {k: round(v * 1000 / len(texts), 3) for k, v in cpu.items()},
        "fake_share_of_cpu": round(cpu.get(FAKE, 0.0) / max(sum(cpu.values()), 1e-9), 3),
        "burst_wall_s": round(middle.wall_s, 2),
        "outcomes_per_burst": {k: v // args.runs for k, v in gateway.outcomes.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a `deskbot classifier train` model")
    parser.add_argument("--korean", required=True, help="BEEP! dev.tsv")
    parser.add_argument("--davidson", required=True, help="Davidson labeled_data.csv")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8, help="core: decisions in flight")
    parser.add_argument("--runs", type=int, default=3, help="bursts; the median is reported")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a burst may take")
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
