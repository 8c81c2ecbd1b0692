"""Health, readiness and metrics over HTTP: what an orchestrator and Prometheus ask.

    GET /healthz   200 while the process serves at all (no checks: liveness)
    GET /readyz    200 when the database, Redis (when configured) and the model answer;
                   503 otherwise; a JSON body names each check and what it found
    GET /metrics   Prometheus text format (:mod:`bot.metrics`); the queue gauges are read
                   just before

Every process serves them on ``DESKBOT_HEALTH_PORT`` when it is set (:func:`serve_health`);
the Slack HTTP adapter also serves them on its own port (:func:`add_health_routes`). The
checks are cheap (``SELECT 1``, ``PING``, ``GET /models``), each under a short timeout, and
a result is cached for a few seconds and shared by requests arriving meanwhile, so a scrape
storm costs the services one round of checks per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

from bot.app import App
from bot.errors import ConfigError
from bot.metrics import observe_queue
from bot.state import QueueStatus

__all__ = ["Check", "Health", "add_health_routes", "serve_health"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECK_TIMEOUT = 2.0
"""Seconds one readiness check may take before it counts as failed."""
CACHE_SECONDS = 5.0
"""How long a readiness result (and a queue reading) is reused."""


@dataclass(frozen=True)
class Check:
    """One readiness check's outcome."""

    ok: bool
    detail: str


class _Cached(Generic[T]):
    """The latest value of ``fetch`` for ``ttl`` seconds; concurrent callers share one fetch."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], ttl: float) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self._value: tuple[float, T] | None = None
        self._running: asyncio.Task[T] | None = None

    async def get(self) -> T:
        if self._value is not None and time.monotonic() < self._value[0]:
            return self._value[1]
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._refresh())
        return await asyncio.shield(self._running)

    async def _refresh(self) -> T:
        value = await self.fetch()
        self._value = (time.monotonic() + self.ttl, value)
        return value


class Health:
    """The readiness checks and the queue reading of one process's :class:`App`."""

    def __init__(
        self, app: App, *, timeout: float = CHECK_TIMEOUT, ttl: float = CACHE_SECONDS
    ) -> None:
        self.app = app
        self.timeout = timeout
        self._http = httpx.AsyncClient(timeout=timeout)
        self._checks = _Cached(self._run_checks, ttl)
        self._queue = _Cached(self.app.state.queue.status, min(ttl, 1.0))

    async def checks(self) -> dict[str, Check]:
        """Database, Redis and model, as found at most ``ttl`` seconds ago."""
        return await self._checks.get()

    async def queue_status(self) -> QueueStatus:
        """The queue's status, read at most a second ago."""
        return await self._queue.get()

    async def close(self) -> None:
        """Close the HTTP client the model check uses."""
        await self._http.aclose()

    async def _run_checks(self) -> dict[str, Check]:
        names = ("database", "redis", "model")
        probes = (self._database(), self._redis(), self._model())
        results = await asyncio.gather(*(self._timed(p) for p in probes))
        return dict(zip(names, results, strict=True))

    async def _timed(self, probe: Awaitable[str]) -> Check:
        try:
            async with asyncio.timeout(self.timeout):
                return Check(True, await probe)
        except TimeoutError:
            return Check(False, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # the check's whole point: report, never raise
            return Check(False, _first_line(exc))

    async def _database(self) -> str:
        async with self.app.database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return "answers"

    async def _redis(self) -> str:
        state = self.app.state
        if state.backend == "memory":
            return "not configured: in-process queue"
        await state.ping()
        return f"{state.display_url} answers"

    async def _model(self) -> str:
        settings = self.app.settings
        if settings.llm == "local":
            return f"local model {self.app.backend.model} in this process"
        if not settings.llm_configured:
            return "not configured: retrieval-only answers"
        base = (settings.openai_base_url or "https://api.openai.com/v1").rstrip("/")
        key = settings.openai_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        response = await self._http.get(f"{base}/models", headers=headers)
        if response.status_code in (401, 403):
            raise RuntimeError(f"{base} refused the API key ({response.status_code})")
        if response.status_code >= 500:
            raise RuntimeError(f"{base} answered {response.status_code}")
        return f"{base} answers"


def _first_line(exc: BaseException) -> str:
    """An error's first line, without SQLAlchemy's wrapping (no URLs with passwords)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return (lines[0] if lines else type(cause).__name__)[:300]


def add_health_routes(application: web.Application, health: Health) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` from ``application``."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = await health.checks()
        ready = all(c.ok for c in checks.values())
        body = {
            "ready": ready,
            "failed": [name for name, c in checks.items() if not c.ok],
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(health.timeout):
                observe_queue(await health.queue_status())
        except Exception:  # the other metrics still answer; readyz says what is down
            log.debug("queue status unavailable for /metrics", exc_info=True)
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    application.router.add_get("/healthz", healthz)
    application.router.add_get("/readyz", readyz)
    application.router.add_get("/metrics", metrics)


@contextlib.asynccontextmanager
async def serve_health(
    app: App, port: int | None, *, cache_seconds: float = CACHE_SECONDS
) -> AsyncIterator[int | None]:
    """Serve health, readiness and metrics on ``port`` (all interfaces) while inside.

    Yields the port listened on: ``None`` when there is no server (``DESKBOT_HEALTH_PORT``
    unset); ``port`` 0 takes any free one. ``cache_seconds``: how long a readiness result
    is reused.

    Raises:
        ConfigError: the port cannot be listened on.
    """
    if port is None:
        yield None
        return
    health = Health(app, ttl=cache_seconds)
    application = web.Application()
    add_health_routes(application, health)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, port=port).start()
    except OSError as exc:
        await runner.cleanup()
        await health.close()
        raise ConfigError(f"DESKBOT_HEALTH_PORT: cannot listen on {port}: {exc.strerror}") from None
    # With port 0, IPv4 and IPv6 each get a free port of their own: name the IPv4 one.
    bound = int(min(runner.addresses, key=len)[1])
    log.info("health and metrics on :%d (/healthz, /readyz, /metrics)", bound)
    try:
        yield bound
    finally:
        await runner.cleanup()
        await health.close()
