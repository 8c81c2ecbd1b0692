"""The gateway half of ``bench/moderation.py``: the fake Discord to a real client's moderator.

The fake dispatches MESSAGE_CREATE from a thread of its own; the moderator tells the bench
of each decision through its observers; CPU is read per thread of this process and per
process of the bench's embedded PostgreSQL. Run it through ``bench/moderation.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.slack_ack import pct
from bot.app import open_app
from bot.discord.client import DeskbotClient
from bot.discord.server import connect, start_client
from bot.moderation import Decision, Incoming, Policy, parse_mode
from bot.settings import Settings
from tests.fakes.discord_api import CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, FakeDiscord
from tests.fakes.discord_world import user_payload

__all__ = ["gateway_path"]

LOOP = "bot loop (discord.py, listeners, moderation, SQLAlchemy)"
FAKE = "fake Discord (server thread and sender)"
POSTGRES = "postgres (the bench's embedded server)"


@dataclass
class Burst:
    """One burst through the gateway: dispatch and decision times per message id."""

    sent: dict[str, float]
    decided: dict[str, float]
    in_moderator: dict[str, float]
    cpu_s: dict[str, float]
    wall_s: float

    def latencies_ms(self) -> list[float]:
        return [(self.decided[i] - t) * 1000 for i, t in self.sent.items() if i in self.decided]

    def stages_ms(self) -> dict[str, dict[str, float]]:
        """p50 / p99 of the two halves: gateway to ``moderate()``, and the moderator."""
        decided = [i for i in self.sent if i in self.decided]
        moderator = [self.in_moderator[i] * 1000 for i in decided]
        before = [
            (self.decided[i] - self.sent[i]) * 1000 - m
            for i, m in zip(decided, moderator, strict=True)
        ]
        return {
            "dispatch_to_moderate": {"p50": pct(before, 50), "p99": pct(before, 99)},
            "moderate_to_decision": {"p50": pct(moderator, 50), "p99": pct(moderator, 99)},
        }

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
        self.in_moderator: dict[str, float] = {}  # seconds from moderate() to the decision
        self.outcomes: Counter[str] = Counter()
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.expected: set[str] = set()  # the burst's messages not decided yet
        self.all_decided = asyncio.Event()
        moderator = client.moderation.moderator
        assert moderator is not None, "moderation is off: is --model a classifier model?"
        moderator.observers.append(self.observe)

    def observe(self, message: Incoming, decision: Decision | None, seconds: float) -> None:
        self.decided[message.message_id] = time.perf_counter()
        self.in_moderator[message.message_id] = seconds
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

    async def burst(
        self, texts: Sequence[str], timeout: float, *, rate: float | None = None
    ) -> Burst:
        """Every text sent from a thread of its own: as fast as the fake dispatches, or
        ``rate`` a second."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[list[tuple[str, float]], float]] = loop.create_future()

        def send_all() -> None:  # its CPU time counted here: the thread is gone by the end
            sent, began = [], time.perf_counter()
            for n, text in enumerate(texts):
                if rate is not None:
                    time.sleep(max(0.0, began + n / rate - time.perf_counter()))
                sent.append(self.send(n, text))
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
        wall = time.perf_counter() - began
        return Burst(sent, dict(self.decided), dict(self.in_moderator), cpu, wall)


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
    outcomes = {k: v // args.runs for k, v in gateway.outcomes.most_common()}
    paced = await gateway.burst(texts, args.timeout, rate=args.rate)
    rates = [b.per_s() for b in bursts]
    middle = bursts[rates.index(statistics.median_low(rates))]
    loaded, steady = middle.latencies_ms(), paced.latencies_ms()
    cpu = middle.cpu_s
    return {
        "one_at_a_time_ms": {"p50": pct(alone, 50), "p99": pct(alone, 99)},
        "burst_per_s": round(statistics.median(rates)),
        "burst_per_s_runs": [round(r) for r in rates],
        "burst_latency_ms": {"p50": pct(loaded, 50), "p99": pct(loaded, 99)},
        "burst_stages_ms": middle.stages_ms(),
        "at_rate": {
            "offered_per_s": args.rate,
            "decided_per_s": round(paced.per_s()),
            "latency_ms": {"p50": pct(steady, 50), "p99": pct(steady, 99)},
            "stages_ms": paced.stages_ms(),
        },
        "unclassified": sum(len(b.sent.keys() - b.decided.keys()) for b in [*bursts, paced]),
        "cpu_ms_per_message": {k: round(v * 1000 / len(texts), 3) for k, v in cpu.items()},
        "fake_share_of_cpu": round(cpu.get(FAKE, 0.0) / max(sum(cpu.values()), 1e-9), 3),
        "burst_wall_s": round(middle.wall_s, 2),
        "outcomes_per_burst": outcomes,
    }
