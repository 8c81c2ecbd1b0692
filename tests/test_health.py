"""/healthz, /readyz and /metrics over HTTP: the Slack HTTP adapter's port, the health port
of an in-process app, and a running ``deskbot worker`` process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from bot.app import App, open_app
from bot.embedded_pg import EmbeddedPostgres
from bot.health import Health, serve_health
from bot.metrics import count_decision
from bot.moderation import Incoming, ModerationStore, Moderator
from bot.settings import Settings
from bot.slack.server import http_app, slack_adapter
from bot.storage import Database
from tests.conftest import REPO, FreshDatabase, assert_no_secret
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.secret_values import OPENAI_KEY
from tests.test_moderation import GUILD, HATEFUL, WordClassifier
from tests.test_slack import SECRET, Stack, event

pytestmark = pytest.mark.e2e


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? (\S+)$" if labels else None
    for line in metrics.splitlines():
        if labels and pattern and re.match(pattern, line):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.split(" ", 1)[1])
    return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def slack_http(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
    redis_url: str,
) -> AsyncIterator[Stack]:
    """The Slack HTTP endpoint with Redis: it acknowledges and enqueues; no worker here."""
    settings = make_settings(
        database_url=fresh_database.url,
        redis_url=redis_url,
        slack_bot_token=slack_api.token,
        slack_signing_secret=SECRET,
        slack_api_url=slack_api.api_url,
        openai_base_url=openai_server.base_url,
        openai_api_key=OPENAI_KEY,
    )
    async with open_app(settings) as app:
        health = Health(app)
        server = TestServer(http_app(slack_adapter(app), health=health))
        await server.start_server()
        async with httpx.AsyncClient(timeout=10) as http:
            yield Stack(app, str(server.make_url("/slack/events")), slack_api, openai_server, http)
        await server.close()
        await health.close()


async def test_the_slack_http_port_serves_health_readiness_and_metrics(
    slack_http: Stack,
) -> None:
    base = slack_http.url.removesuffix("/slack/events")
    http = slack_http.http
    alive = await http.get(f"{base}/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})

    ready = await http.get(f"{base}/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (body["ready"], body["failed"]) == (True, [])
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "model": True,
    }
    await http.get(f"{base}/readyz")  # within the cache: the model is not asked again
    asked = [r for r in slack_http.openai.requests if r.path.endswith("/models")]
    assert len(asked) == 1

    before = (await http.get(f"{base}/metrics")).text
    assert (await slack_http.post(event("1700000001.000100", "<@U0DESKBOT> hi"))).status_code == 200
    retried = await slack_http.post(event("1700000001.000100", "<@U0DESKBOT> hi"), retry=1)
    assert retried.status_code == 200
    deadline = time.monotonic() + 15
    while True:  # bolt enqueues after the ack; the queue reading is reused for a second
        scraped = await http.get(f"{base}/metrics")
        if sample(scraped.text, "deskbot_queue_waiting") == 1 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    after = scraped.text
    for name, grew in (
        ("deskbot_events_received_total", 2),
        ("deskbot_events_deduplicated_total", 1),
    ):
        delta = sample(after, name, platform="slack") - sample(before, name, platform="slack")
        assert delta == grew, name
    assert sample(after, "deskbot_queue_waiting") == 1  # enqueued for a worker elsewhere
    assert sample(after, "deskbot_queue_oldest_age_seconds") >= 0
    assert "user" not in re.findall(r"\{([^}]*)\}", after)  # no user ids as labels


async def test_readyz_names_the_database_and_the_model_when_they_are_unreachable(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    pg_server: EmbeddedPostgres,
) -> None:
    closed = free_port()
    settings = make_settings(
        database_url=fresh_database.url,
        openai_base_url=f"http://127.0.0.1:{closed}/v1",
        openai_api_key=OPENAI_KEY,
    )
    app: App
    async with (
        open_app(settings) as app,
        serve_health(app, 0, cache_seconds=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
    ):
        first = await http.get("/readyz")
        assert first.status_code == 503
        assert first.json()["failed"] == ["model"]
        assert first.json()["checks"]["redis"] == {
            "ok": True,
            "detail": "not configured: in-process queue",
        }

        admin = pg_server.url("postgres", driver=None)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{fresh_database.name}" WITH (FORCE)')
        began = time.monotonic()
        down = await http.get("/readyz")
        assert time.monotonic() - began < 5  # each check is bounded by a short timeout
        assert down.status_code == 503
        body = down.json()
        assert body["failed"] == ["database", "model"]
        detail = body["checks"]["database"]["detail"]
        # the server's refusal, or (on a loaded machine) the check's own time limit
        assert fresh_database.name in detail or detail == "no answer within 2 s"
        assert "\n" not in body["checks"]["database"]["detail"]
        assert (await http.get("/healthz")).status_code == 200  # alive, only not ready


def test_a_worker_process_serves_its_own_metrics_on_the_health_port(
    redis_url: str, fresh_database: FreshDatabase, tmp_path: Path, openai_server: ScriptedOpenAI
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "REDIS_URL": redis_url,
        "DATABASE_URL": fresh_database.url,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "DESKBOT_HEALTH_PORT": str(port),
        "DESKBOT_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("deskbot")), "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(redis_url)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                alive = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, "the health port never opened"
                time.sleep(0.2)
        assert alive.status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert (ready.status_code, ready.json()["failed"]) == (200, [])
        # A job no handler takes is dead-lettered; the worker's own metrics say so.
        job = {"id": "j1", "kind": "teleport", "payload": "{}", "enqueued_at": repr(time.time())}
        client.xadd("deskbot:jobs", job)  # type: ignore[arg-type]
        while not client.xlen("deskbot:jobs:dead"):
            assert time.monotonic() < deadline + 30
            time.sleep(0.1)
        time.sleep(1.1)  # the queue reading is reused for a second
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
        client.close()
    assert_no_secret(out + err, "deskbot worker")
    assert worker.returncode == 0, err
    assert sample(metrics, "deskbot_jobs_dead_lettered_total", kind="teleport") == 1
    assert sample(metrics, "deskbot_queue_dead_letters") == 1
    assert sample(metrics, "deskbot_queue_waiting") == 0
    assert "Traceback" not in err


def test_compose_checks_each_deskbot_service_on_its_health_port() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("slack", "discord", "worker"):
        port = services[name]["environment"]["DESKBOT_HEALTH_PORT"]
        test = services[name]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]  # the image has Python, not curl
        assert f"http://127.0.0.1:{port}/readyz" in test[-1]
    assert "healthcheck" not in services["migrate"]  # one-shot: nothing to probe


async def test_moderation_decisions_are_counted_by_action_and_mode(database: Database) -> None:
    store = ModerationStore(database.engine, appeal_days=7)
    moderator = Moderator(WordClassifier(), store, policy_ttl=0, observers=[count_decision])
    labels = {"action": "delete", "mode": "shadow"}
    before = REGISTRY.get_sample_value("deskbot_moderation_decisions_total", labels) or 0.0
    assert await moderator.moderate(Incoming(GUILD, "c1", "m1", "u1", HATEFUL)) is not None
    assert await moderator.moderate(Incoming(GUILD, "c1", "m2", "u1", "good morning")) is None
    await moderator.aclose()
    assert REGISTRY.get_sample_value("deskbot_moderation_decisions_total", labels) == before + 1
