"""The fake Discord's server: an aiohttp app on its own thread and loop, recording requests.

:class:`DiscordServer` serves ``/gateway`` (the websocket) and everything else through a
route table the subclass gives (:meth:`DiscordServer.routes`), under ``/api/v10``: it records
each request as a :class:`Call`, answers 429s a test asked for, checks the bot token where
Discord does, and serves attachment downloads (the CDN) outside the API prefix.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import BodyPartReader, web

from tests.fakes.discord_gateway import Gateway
from tests.fakes.discord_world import World

__all__ = [
    "API_PREFIX",
    "Call",
    "Callback",
    "CommandSync",
    "DiscordServer",
    "Download",
    "Hold",
    "Part",
    "Reply",
    "error",
    "now",
]

API_PREFIX = "/api/v10"


@dataclass
class Part:
    """One part of a multipart request (``payload_json``, ``files[0]``...)."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Call:
    """One REST request as the fake received it (``path`` is relative to ``api_url``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float
    parts: list[Part] = field(default_factory=list)
    status: int = 0


@dataclass
class Download:
    """One attachment download from the CDN."""

    attachment_id: str
    filename: str
    at: float


@dataclass
class Callback:
    """An interaction callback: its type and data, when dispatched and when received."""

    interaction_id: str
    token: str
    type: int
    data: dict[str, Any]
    dispatched_at: float
    at: float

    @property
    def latency(self) -> float:
        """Seconds from dispatching the interaction to receiving this callback."""
        return self.at - self.dispatched_at


@dataclass
class CommandSync:
    """One bulk overwrite of application commands (``guild_id`` None: global)."""

    guild_id: str | None
    names: list[str]
    at: float


@dataclass
class Hold:
    """A request kept waiting by :meth:`DiscordServer.hold` until :meth:`release`."""

    method: str
    pattern: str
    matches: Callable[[Call], bool]
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    call: Call | None = None

    def release(self) -> None:
        """Answer the held request (and any later match) without waiting."""
        self.released.set()


@dataclass
class Reply:
    """What a route answers: a status and a JSON payload (204: none)."""

    status: int = 200
    payload: Any = None


@dataclass
class _Limit:
    method: str
    pattern: str
    retry_after: float
    scope: str
    is_global: bool


def error(status: int, code: int, message: str, **extra: Any) -> Reply:
    """A Discord JSON error body."""
    return Reply(status, {"code": code, "message": message, **extra})


def now() -> float:
    """The clock calls, dispatches and callbacks are stamped with."""
    return time.perf_counter()


Route = tuple[str, re.Pattern[str], Callable[..., Reply], bool]


class DiscordServer:
    """Serving, recording and rate limiting; subclasses give :meth:`routes`."""

    token: str
    world: World
    gateway: Gateway

    def __init__(self) -> None:
        self.url = ""
        self.calls: list[Call] = []
        self.downloads: list[Download] = []
        self._errors: list[str] = []
        self._limits: list[_Limit] = []
        self._holds: list[Hold] = []
        self._routes = self.routes()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-discord", daemon=True)
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None

    def routes(self) -> list[Route]:
        """(method, path pattern after /api/v10, handler, needs the bot token)."""
        raise NotImplementedError

    @property
    def api_url(self) -> str:
        """The REST base (``DISCORD_API_URL``): ``http://127.0.0.1:PORT/api/v10``."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """``ws://127.0.0.1:PORT/gateway``, as GET /gateway/bot answers."""
        return self.gateway.url

    def start(self) -> Self:
        """Serve on a free port from a background thread."""
        self._thread.start()
        if not self._started.wait(10) or not self.url:
            raise RuntimeError("the fake Discord did not start")
        return self

    def stop(self) -> None:
        """Close every gateway connection and the server."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.3,
        *,
        scope: str = "user",
        is_global: bool = False,
    ) -> None:
        """The next ``method`` request whose path (after /api/v10) matches gets a 429."""
        with self.world.lock:
            self._limits.append(_Limit(method.upper(), path_regex, retry_after, scope, is_global))

    def hold(
        self, method: str, path_regex: str, matches: Callable[[Call], bool] | None = None
    ) -> Hold:
        """Keep the first ``method`` request whose path fully matches (and ``matches``) waiting.

        It is recorded but not answered until released; then it is handled as usual (a
        message it creates is created), so a test can kill its caller at exactly that point.
        """
        hold = Hold(method.upper(), path_regex, matches or (lambda call: True))
        with self.world.lock:
            self._holds.append(hold)
        return hold

    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        """REST calls with ``method`` whose path (after /api/v10) fully matches."""
        with self.world.lock:
            calls = list(self.calls)
        return [c for c in calls if c.method == method.upper() and re.fullmatch(path_regex, c.path)]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.gateway.url = f"ws://127.0.0.1:{port}/gateway"

    async def _shutdown(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _http(self, request: web.Request) -> web.StreamResponse:
        under_api = request.path.startswith(API_PREFIX + "/")
        call = Call(
            method=request.method,
            path=request.path.removeprefix(API_PREFIX) if under_api else request.path,
            query=dict(request.query),
            json=None,
            headers={k.lower(): v for k, v in request.headers.items()},
            at=now(),
        )
        with self.world.lock:
            self.calls.append(call)
        try:
            await _read_body(request, call)
            await self._wait_if_held(call)
            response = self._answer(call, under_api=under_api)
        except Exception as exc:  # a bug in the fake must fail the test, not hang it
            self._errors.append(f"{call.method} {call.path}: {type(exc).__name__}: {exc}")
            response = _json(error(400, 0, f"fake Discord bug: {exc}"))
        call.status = response.status
        return response

    async def _wait_if_held(self, call: Call) -> None:
        with self.world.lock:
            hold = next((h for h in self._holds if _holds(h, call)), None)
            if hold is None:
                return
            hold.call = call
        hold.reached.set()
        await asyncio.get_running_loop().run_in_executor(None, hold.released.wait)

    def _answer(self, call: Call, *, under_api: bool) -> web.Response:
        if call.method == "GET" and call.path.startswith("/attachments/"):
            return self._download(call)
        limited = self._take_limit(call) if under_api else None
        if limited is not None:
            return limited
        for method, pattern, handler, needs_token in self._routes if under_api else []:
            match = pattern.fullmatch(call.path)
            if match is None or method != call.method:
                continue
            if needs_token and call.headers.get("authorization") != f"Bot {self.token}":
                return _json(Reply(401, {"message": "401: Unauthorized", "code": 0}))
            with self.world.lock:
                return _json(handler(call, *match.groups()))
        self._errors.append(f"unsupported route: {call.method} {call.path}")
        return _json(Reply(404, {"message": "404: Not Found", "code": 0}))

    def _download(self, call: Call) -> web.Response:
        parts = call.path.split("/")  # /attachments/{id}/{filename}
        with self.world.lock:
            entry = self.world.attachments.get(parts[2]) if len(parts) > 3 else None
            if entry is None:
                return web.Response(status=404, body=b"not found")
            self.downloads.append(Download(parts[2], entry[0]["filename"], call.at))
        content_type = entry[0].get("content_type") or "application/octet-stream"
        return web.Response(body=entry[1], headers={"Content-Type": content_type})

    def _take_limit(self, call: Call) -> web.Response | None:
        with self.world.lock:
            for limit in self._limits:
                if limit.method == call.method and re.fullmatch(limit.pattern, call.path):
                    self._limits.remove(limit)
                    break
            else:
                return None
        retry = limit.retry_after
        headers = {
            "Retry-After": str(math.ceil(retry)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
            "X-RateLimit-Reset-After": f"{retry:.3f}",
            "X-RateLimit-Bucket": "fake" + format(abs(hash(limit.pattern)), "x"),
            "X-RateLimit-Scope": limit.scope,
            "Via": "1.1 google",  # discord.py takes a 429 without Via for a Cloudflare ban
        }
        if limit.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry}
        return _json(Reply(429, {**body, "global": limit.is_global}), headers)


def _holds(hold: Hold, call: Call) -> bool:
    return (
        hold.call is None
        and not hold.released.is_set()
        and hold.method == call.method
        and re.fullmatch(hold.pattern, call.path) is not None
        and hold.matches(call)
    )


async def _read_body(request: web.Request, call: Call) -> None:
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader):
                data = bytes(await part.read(decode=False))
                kind = part.headers.get("Content-Type", "application/octet-stream")
                call.parts.append(Part(part.name or "", part.filename, kind, data))
        payload = next((p for p in call.parts if p.name == "payload_json"), None)
        call.json = json.loads(payload.data) if payload else None
    elif request.can_read_body:
        raw = await request.read()
        call.json = json.loads(raw) if raw and "json" in request.content_type else None


def _json(reply: Reply, headers: Mapping[str, str] | None = None) -> web.Response:
    if reply.status == 204:
        return web.Response(status=204, headers=headers)
    # discord.py parses a body as JSON only when Content-Type is exactly application/json.
    return web.Response(
        status=reply.status,
        body=json.dumps(reply.payload).encode(),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )
