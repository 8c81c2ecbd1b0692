"""A local model behind an OpenAI-compatible HTTP API, for workers on other machines.

``deskbot serve-model DIR`` runs :func:`serve`: ``POST /v1/chat/completions`` (``tools``,
``tool_choice: "none"``, ``max_tokens``, ``stream`` with server-sent events and
``stream_options.include_usage``) and ``GET /v1/models``, on aiohttp. Workers point
``OPENAI_BASE_URL`` at ``http://HOST:PORT/v1`` and use it like any OpenAI-compatible
endpoint. The model answers through the same :class:`~finetune.local.LocalBackend` as
``DESKBOT_LLM=local`` in-process, so tool calls are parsed the same way; ``max_tokens`` may
lower a turn's bound, never raise it past ``--max-new-tokens``. One generation runs at a
time; requests queue.

Errors are OpenAI-shaped JSON: 400 for a request the model cannot take (no messages, an
unknown role, a conversation longer than its context), 500 when the model's own output is
malformed. Once a stream has begun, an error is sent as a last ``{"error": ...}`` event,
which the OpenAI SDK raises as an ``APIError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from finetune.local import LocalBackend
from finetune.toolcalls import LocalModelError, MalformedToolCallError

__all__ = ["chat_app", "serve"]

log = logging.getLogger(__name__)
BACKEND = web.AppKey("backend", LocalBackend)


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def wire(self) -> dict[str, Any]:
        """The message with text content (content parts joined) and ``developer`` as system."""
        message = self.model_dump(exclude_none=True)
        message["role"] = "system" if self.role == "developer" else self.role
        if isinstance(self.content, list):
            message["content"] = "".join(str(p.get("text", "")) for p in self.content)
        message.setdefault("content", "")
        return message


class _ChatRequest(BaseModel):
    """The fields of a Chat Completions request this server reads; others are ignored."""

    model_config = ConfigDict(extra="ignore")

    messages: list[_Message]
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None

    @property
    def offered(self) -> list[dict[str, Any]]:
        """The tools the model may call (none with ``tool_choice: "none"``)."""
        return [] if self.tool_choice == "none" else list(self.tools or ())

    @property
    def limit(self) -> int | None:
        """The client's bound on new tokens (the server's own applies too)."""
        return self.max_completion_tokens or self.max_tokens


def chat_app(backend: LocalBackend) -> web.Application:
    """The aiohttp application serving ``backend`` under ``/v1``."""
    app = web.Application()
    app[BACKEND] = backend
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/health", _health)
    return app


async def serve(
    backend: LocalBackend,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``backend`` until SIGINT or SIGTERM; ``on_ready`` gets the base URL once listening.

    The weights are loaded before the port opens, so the first request does not wait.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await backend.load()
    runner = web.AppRunner(chat_app(backend), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port  # port 0: the OS chose
        url = f"http://{host}:{bound}/v1"
        log.info("serving %s at %s", backend.model, url)
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
    finally:
        await runner.cleanup()
        await backend.close()


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _models(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    entry = {"id": backend.model, "object": "model", "created": 0, "owned_by": "deskbot"}
    return web.json_response({"object": "list", "data": [entry]})


async def _chat(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    try:
        body = _ChatRequest.model_validate(await request.json())
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"invalid request: {_first_line(exc)}")
    messages = [m.wire() for m in body.messages]
    if body.stream:
        return await _stream(request, backend, body, messages)
    try:
        completion = await backend.complete(messages, tools=body.offered, max_new_tokens=body.limit)
    except LocalModelError as exc:
        return _error(500 if isinstance(exc, MalformedToolCallError) else 400, str(exc))
    return web.json_response(_completion_body(completion))


def _completion_body(completion: dict[str, Any]) -> dict[str, Any]:
    choices = [{**c, "logprobs": None} for c in completion["choices"]]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        **completion,
        "choices": choices,
    }


async def _stream(
    request: web.Request, backend: LocalBackend, body: _ChatRequest, messages: list[Any]
) -> web.StreamResponse:
    """Server-sent chunks: the role, each piece of prose, the tool calls, the finish, usage."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    chunk = _Chunks(backend.model)

    async def send(payload: dict[str, Any]) -> None:
        await response.write(f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode())

    async def on_text(piece: str) -> None:
        await send(chunk.delta({"content": piece}))

    await send(chunk.delta({"role": "assistant", "content": ""}))
    try:
        completion = await backend.complete(
            messages, tools=body.offered, on_text=on_text, max_new_tokens=body.limit
        )
    except LocalModelError as exc:
        await send({"error": {"message": str(exc), "type": "model_error", "code": None}})
        await response.write_eof()
        return response
    choice = completion["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    if calls:
        indexed = [{"index": i, **call} for i, call in enumerate(calls)]
        await send(chunk.delta({"tool_calls": indexed}))
    await send(chunk.delta({}, finish=choice["finish_reason"]))
    if (body.stream_options or {}).get("include_usage"):
        await send(chunk.usage(completion["usage"]))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


class _Chunks:
    """``chat.completion.chunk`` bodies sharing one id, as the API streams them."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def delta(self, delta: dict[str, Any], *, finish: str | None = None) -> dict[str, Any]:
        """A chunk carrying ``delta`` (and the finish reason on the last one)."""
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self._base(), "choices": [choice]}

    def usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The closing chunk with the token counts and no choices."""
        return {**self._base(), "choices": [], "usage": usage}


def _error(status: int, message: str) -> web.Response:
    kind = "invalid_request_error" if status == 400 else "model_error"
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(payload, status=status)


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}"
    return str(exc).splitlines()[0]
