"""Discord acknowledgement latency under load: ``/ask`` bursts while answers are generated.

    .venv/bin/python bench/discord_ack.py [--asks 50] [--rounds 3] [--delay 2] [--storm 50]
        [--concurrency N] [--json]

The whole Discord stack runs in this process, as ``deskbot discord`` runs it without Redis:
the real discord.py gateway client, the in-process queue, deduper and worker
(``--concurrency``, default ``DESKBOT_WORKER_CONCURRENCY``) answering through REST, and the
agent, on an embedded PostgreSQL in a temporary directory. Discord is the fake from
``tests/fakes/discord_api.py`` and the model the scripted server from
``tests/fakes/openai_server.py`` (threads of this process), each answer taking ``--delay`` s.

One round: ``--asks`` ``/ask`` interactions dispatched at once over the gateway (from a
thread of their own, so the bot's loop is free to read them). Per interaction:

- ack: the fake's dispatch (``perf_counter``) to its receipt of the defer callback (type 5);
  after Discord's 3 s the fake, as Discord, refuses a callback;
- unanswered: no accepted callback; twice: callbacks beyond one (a second gets 400 40060)
  plus model requests beyond one per interaction; missing: no finished answer in @original;
- lag / gc: the bot loop's worst lateness and the worst GC pause while the burst arrived.

Then a RESUME storm: ``--storm`` mentions in #general and at once a dropped connection whose
RESUME replays every event of the session (``reconnect(replay_all=True)``: each mention, each
earlier ``/ask``, the bot's own messages, all delivered again). Counted: duplicates (thread
starts, bot messages and model requests beyond one per mention, callbacks beyond one per
earlier interaction) and missing answers. Warm-up interactions, as many as the worker runs
at once, are answered first, untimed. Target: ack p99 <= 100 ms, 0 unanswered, 0 twice, 0
storm duplicates. Nothing is asserted; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes, when run as a script
    sys.path.insert(0, str(REPO))

import discord  # noqa: E402

from bench.slack_ack import LoopLag, pct  # noqa: E402
from bot.app import open_app  # noqa: E402
from bot.discord.client import DeskbotClient  # noqa: E402
from bot.discord.server import connect, start_client  # noqa: E402
from bot.jobs import embedded_worker  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.discord_api import BOT_ID, CHANNEL_ID, GUILD_ID, FakeDiscord  # noqa: E402
from tests.fakes.openai_server import ScriptedOpenAI  # noqa: E402

ANSWER = "Annual leave is **15 days** a year."
FEEDBACK = "deskbot:feedback:"


def finished(message: dict[str, Any] | None) -> bool:
    """A message that shows a finished answer: it carries the feedback buttons."""
    return message is not None and FEEDBACK in json.dumps(message.get("components") or [])


def callback_calls(fake: FakeDiscord, interaction_id: str) -> int:
    """Callback requests for one interaction, accepted or refused (a second gets 40060)."""
    return len(fake.calls_to("POST", rf"/interactions/{interaction_id}/[^/]+/callback"))


def beyond_one(counts: Iterable[int]) -> int:
    """Everything past the first of each (the duplicates)."""
    return sum(max(0, n - 1) for n in counts)


async def wait_for(check: Any, timeout: float) -> bool:
    """Poll ``check()`` until true or ``timeout`` seconds; whether it came true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# --- one /ask round ----------------------------------------------------------------------


@dataclass
class Round:
    acks_ms: list[float]
    loop_lag_ms: float
    gc_max_ms: float
    unanswered: int
    twice: int
    answered: int
    missing: int
    model_requests: int
    answer_all_s: float


def dispatch_asks(fake: FakeDiscord, count: int, tag: str) -> list[dict[str, Any]]:
    """``count`` ``/ask`` interactions, sent one after another as fast as the fake takes them."""
    return [fake.slash("ask", {"question": f"leave days? {tag}#{n}"}) for n in range(count)]


async def run_round(
    number: int, args: argparse.Namespace, fake: FakeDiscord, openai: ScriptedOpenAI
) -> Round:
    for _ in range(args.asks):
        openai.reply_text(ANSWER, delay=args.delay)
    model_before = len(openai.chat_requests())
    lag = LoopLag()
    lag.start()
    began = time.perf_counter()
    asks = await asyncio.to_thread(dispatch_asks, fake, args.asks, f"r{number}")
    ids = {a["id"] for a in asks}
    await wait_for(lambda: ids <= {c.interaction_id for c in fake.callbacks}, 5.0)
    lag_ms, gc_ms = await lag.stop()
    tokens = [a["token"] for a in asks]
    await wait_for(lambda: all(finished(fake.original(t)) for t in tokens), args.timeout)
    answer_all = time.perf_counter() - began
    await asyncio.sleep(args.linger)  # a duplicate would have started by now
    latency = {c.interaction_id: c.latency for c in fake.callbacks if c.interaction_id in ids}
    model_requests = len(openai.chat_requests()) - model_before
    extra_callbacks = beyond_one(callback_calls(fake, i) for i in ids)
    answered = sum(finished(fake.original(t)) for t in tokens)
    return Round(
        acks_ms=[s * 1000 for s in latency.values()],
        loop_lag_ms=lag_ms,
        gc_max_ms=gc_ms,
        unanswered=len(ids - set(latency)),
        twice=extra_callbacks + max(0, model_requests - len(ids)),
        answered=answered,
        missing=len(ids) - answered,
        model_requests=model_requests,
        answer_all_s=answer_all,
    )


# --- the RESUME storm --------------------------------------------------------------------


@dataclass
class Storm:
    mentions: int
    delivered_twice: int  # mentions the bot's message listeners saw twice (the replay arrived)
    events_replayed: int
    duplicates: int
    missing: int
    model_requests: int
    answer_all_s: float


async def run_storm(
    args: argparse.Namespace, fake: FakeDiscord, openai: ScriptedOpenAI, client: DeskbotClient
) -> Storm:
    seen: Counter[str] = Counter()

    async def count(message: discord.Message) -> None:
        seen[str(message.id)] += 1

    client.message_listeners.append(count)  # beside answering, where moderation hooks in
    earlier = set(fake.dispatched_at)
    for _ in range(args.storm):
        openai.reply_text(ANSWER, delay=args.delay)
    model_before = len(openai.chat_requests())
    began = time.perf_counter()

    def send() -> list[str]:
        return [
            fake.send_message(CHANNEL_ID, f"storm question {n}", mention_bot=True)["id"]
            for n in range(args.storm)
        ]

    mentions = await asyncio.to_thread(send)
    resumes = fake.resumes
    fake.reconnect(replay_all=True)  # every event of the session, delivered again
    await fake.wait_until(lambda: fake.resumes > resumes, timeout=30)
    await wait_for(lambda: all(answered_in(fake, m) for m in mentions), args.timeout)
    answer_all = time.perf_counter() - began
    await asyncio.sleep(args.linger)
    model_requests = len(openai.chat_requests()) - model_before
    thread_starts = (
        fake.calls_to("POST", rf"/channels/\d+/messages/{m}/threads") for m in mentions
    )
    duplicates = (
        beyond_one(len(calls) for calls in thread_starts)
        + beyond_one(len(bot_messages(fake, m)) for m in mentions)
        + max(0, model_requests - len(mentions))
        + beyond_one(callback_calls(fake, i) for i in earlier)
    )
    return Storm(
        mentions=len(mentions),
        delivered_twice=sum(1 for m in mentions if seen[m] >= 2),
        events_replayed=len(earlier) + len(mentions),
        duplicates=duplicates,
        missing=sum(1 for m in mentions if not answered_in(fake, m)),
        model_requests=model_requests,
        answer_all_s=answer_all,
    )


def bot_messages(fake: FakeDiscord, channel_id: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages_in(channel_id) if m["author"]["id"] == BOT_ID]


def answered_in(fake: FakeDiscord, channel_id: str) -> bool:
    return any(finished(m) for m in bot_messages(fake, channel_id))


# --- the stack and the report ------------------------------------------------------------


async def warm_up(fake: FakeDiscord, openai: ScriptedOpenAI, count: int) -> None:
    """Untimed: ``count`` ``/ask`` answered (the database pool, the first webhook calls)."""
    for _ in range(count):
        openai.reply_text(ANSWER)
    asks = dispatch_asks(fake, count, "warm-up")
    if not await wait_for(lambda: all(finished(fake.original(a["token"])) for a in asks), 60):
        raise RuntimeError("the warm-up interactions were never answered")
    await asyncio.sleep(1.0)  # their runs' last writes, after the answers show


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fake, openai = FakeDiscord().start(), ScriptedOpenAI()
    openai.start()
    rounds: list[Round] = []
    try:
        with tempfile.TemporaryDirectory(prefix="deskbot-bench-") as tmp:
            values: dict[str, Any] = {
                "data_dir": Path(tmp),
                "discord_token": fake.token,
                "discord_api_url": fake.api_url,
                "discord_guilds": GUILD_ID,
                "openai_base_url": openai.base_url,
                "openai_api_key": "test",
                "rate_limit": 100000,
                "discord_guild_rate_limit": 100000,
            }
            if args.concurrency is not None:
                values["worker_concurrency"] = args.concurrency
            settings = Settings(_env_file=None, **values)
            concurrency = settings.worker_concurrency
            if args.timeout is None:
                batches = math.ceil(max(args.asks, args.storm) / concurrency)
                args.timeout = batches * (args.delay + 0.5) * 2 + 30
            began = time.perf_counter()
            async with (
                open_app(settings) as app,
                start_client(app) as client,
                embedded_worker(app, discord=client.rest),
            ):
                gateway = asyncio.create_task(connect(client))
                try:
                    await asyncio.wait_for(client.wait_until_ready(), 30)
                    startup = time.perf_counter() - began
                    await warm_up(fake, openai, concurrency)
                    for number in range(1, args.rounds + 1):
                        rounds.append(await run_round(number, args, fake, openai))
                        print(f"round {number} done", file=sys.stderr)
                    storm = await run_storm(args, fake, openai, client)
                    print("storm done", file=sys.stderr)
                finally:
                    await client.close()
                    await asyncio.gather(gateway, return_exceptions=True)
                    await app.state.queue.close()
    finally:
        fake.stop()
        openai.stop()
    return report(args, concurrency, startup, rounds, storm, openai.errors + fake.errors)


def figures(rounds: list[Round]) -> dict[str, float]:
    acks = [ms for r in rounds for ms in r.acks_ms] or [math.nan]
    return {
        "ack_p50_ms": pct(acks, 50),
        "ack_p95_ms": pct(acks, 95),
        "ack_p99_ms": pct(acks, 99),
        "ack_max_ms": max(acks),
    }


def report(
    args: argparse.Namespace,
    concurrency: int,
    startup: float,
    rounds: list[Round],
    storm: Storm,
    errors: list[str],
) -> dict[str, Any]:
    counted = ("unanswered", "twice", "answered", "missing", "model_requests")
    per_round = [
        {
            **figures([r]),
            "interactions": args.asks,
            "loop_lag_max_ms": r.loop_lag_ms,
            "gc_pause_max_ms": r.gc_max_ms,
            **{name: getattr(r, name) for name in counted},
            "answer_all_s": r.answer_all_s,
        }
        for r in rounds
    ]
    total = {
        **figures(rounds),
        "interactions": args.asks * len(rounds),
        "loop_lag_max_ms": max(r.loop_lag_ms for r in rounds),
        "gc_pause_max_ms": max(r.gc_max_ms for r in rounds),
        **{name: sum(getattr(r, name) for r in rounds) for name in counted},
        "answer_all_s_median": statistics.median(r.answer_all_s for r in rounds),
    }
    failures = total["unanswered"] + total["twice"] + storm.duplicates
    return {
        "config": {**vars(args), "worker_concurrency": concurrency, "startup_s": startup},
        "rounds": per_round,
        "total": total,
        "storm": storm.__dict__,
        "target_p99_ms": 100.0,
        "meets_target": total["ack_p99_ms"] <= 100.0 and failures == 0,
        "fake_errors": errors,
    }


def print_table(result: dict[str, Any]) -> None:
    c = result["config"]
    print(
        f"{c['asks']} /ask interactions dispatched at once per round; model answers after "
        f"{c['delay']:g} s; worker concurrency {c['worker_concurrency']} (in-process); "
        f"stack up in {c['startup_s']:.1f} s"
    )
    print(
        f"{'round':<7}{'asks':>5}{'ack p50':>9}{'p95':>7}{'p99':>7}{'max':>7}{'lag':>6}{'gc':>5}"
        f"{'no reply':>10}{'twice':>7}{'answered':>10}{'miss':>6}{'all answered':>14}"
    )
    rows = [(str(i), r) for i, r in enumerate(result["rounds"], 1)]
    rows.append(
        ("all", {**result["total"], "answer_all_s": result["total"]["answer_all_s_median"]})
    )
    for name, r in rows:
        print(
            f"{name:<7}{r['interactions']:>5}{r['ack_p50_ms']:>9.1f}{r['ack_p95_ms']:>7.1f}"
            f"{r['ack_p99_ms']:>7.1f}{r['ack_max_ms']:>7.1f}{r['loop_lag_max_ms']:>6.0f}"
            f"{r['gc_pause_max_ms']:>5.0f}{r['unanswered']:>10}{r['twice']:>7}"
            f"{r['answered']:>10}{r['missing']:>6}{r['answer_all_s']:>12.1f} s"
        )
    s = result["storm"]
    print(
        f"RESUME storm: {s['mentions']} mentions, then every event of the session replayed "
        f"({s['events_replayed']} messages and interactions from the bench among them; "
        f"{s['delivered_twice']} mentions reached the bot twice): "
        f"{s['duplicates']} duplicates, {s['missing']} missing, {s['model_requests']} model "
        f"requests, all answered in {s['answer_all_s']:.1f} s"
    )
    print(
        "ms. ack: the fake dispatches INTERACTION_CREATE -> it receives the defer callback.\n"
        "no reply: no accepted callback; twice: callbacks or model requests beyond one per\n"
        "interaction. lag: worst loop lateness in the burst; gc: worst GC pause meanwhile.\n"
        "all answered: first dispatch -> last finished answer (median over rounds)."
    )
    t = result["total"]
    verdict = "met" if result["meets_target"] else "NOT met"
    print(
        f"target ack p99 <= 100 ms, 0 without a reply, 0 twice, 0 storm duplicates: {verdict} "
        f"(p99 {t['ack_p99_ms']:.1f} ms, {t['unanswered']} without a reply, {t['twice']} twice, "
        f"{s['duplicates']} storm duplicates, {t['missing'] + s['missing']} missing)"
    )
    if result["fake_errors"]:
        print("fake server errors:", *result["fake_errors"][:5], sep="\n  ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=50, help="/ask interactions per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the model takes")
    parser.add_argument("--storm", type=int, default=50, help="mentions in the RESUME storm")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="worker concurrency (default: settings)"
    )
    parser.add_argument("--linger", type=float, default=1.0, help="seconds to watch for dups")
    parser.add_argument("--timeout", type=float, default=None, help="per-round answer timeout")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
