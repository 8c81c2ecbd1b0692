"""A scripted OpenAI-compatible server: tests queue replies, then inspect the requests.

    server.reply_text("Hello")                               # a plain answer
    server.reply_text("Hello", delay=2.0)                    # ... after 2 s (a slow model)
    server.reply_tool_calls(("search_documents", {"query": "vacation"}))
    server.reply_error(429, "slow down", retry_after=0)      # then the SDK retries
    server.answer_with(lambda body: Reply(text="Hi"))        # a rule for whatever is unscripted
    client = AsyncOpenAI(base_url=server.base_url, api_key=OPENAI_KEY)  # tests.secret_values

Each ``POST /v1/chat/completions`` takes the next scripted reply, answered as JSON or, when
the request says ``"stream": true``, as server-sent events chunk by chunk, the way the real
API does. A request with nothing scripted gets a 500 and is recorded in :attr:`errors`, so
the test fails instead of hanging.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import FakeHTTPServer, Recorded, Response

__all__ = ["Reply", "ScriptedOpenAI"]


@dataclass
class Reply:
    """One scripted reply: text, tool calls or an HTTP error, sent after ``delay`` seconds."""

    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: tuple[int, str, float | None] | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    delay: float = 0.0


class ScriptedOpenAI(FakeHTTPServer):
    """Answers Chat Completions from a queue of scripted replies."""

    def __init__(self, *, model: str = "gpt-test") -> None:
        super().__init__()
        self.model = model
        self._script: deque[Reply] = deque()
        self._rule: Callable[[dict[str, Any]], Reply] | None = None

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` (or ``OPENAI_BASE_URL``)."""
        return f"{self.url}/v1"

    def reply_text(
        self,
        text: str,
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        delay: float = 0.0,
    ) -> None:
        """Queue an assistant message with ``text``, sent ``delay`` seconds after the request."""
        self._script.append(
            Reply(
                text=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                delay=delay,
            )
        )

    def reply_tool_calls(self, *calls: tuple[str, dict[str, Any]]) -> None:
        """Queue an assistant message that calls these tools (in parallel)."""
        self._script.append(Reply(tool_calls=list(calls)))

    def reply_error(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        """Queue an HTTP error (429, 500 ...) in OpenAI's error shape."""
        self._script.append(Reply(error=(status, message, retry_after)))

    def answer_with(self, rule: Callable[[dict[str, Any]], Reply]) -> None:
        """Answer requests the queue does not cover with ``rule(request body)``.

        The rule runs on the request's server thread: it may block (hold a reply until the
        test lets it go) without holding up other requests.
        """
        self._rule = rule

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        return len(self._script)

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the Chat Completions requests received, in order."""
        return [r.json() for r in self.requests if r.path.endswith("/chat/completions")]

    def handle(self, request: Recorded) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "missing bearer token")
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            return _error(404, f"not scripted: {request.method} {request.path}")
        try:
            body = request.json()
        except ValueError:  # cut off: its client was killed while sending
            body = None
        if not isinstance(body, dict):
            return _error(400, "the request body is not a JSON object")
        try:
            reply = self._script.popleft()
        except IndexError:
            if self._rule is None:
                self.errors.append("chat completion requested with nothing scripted")
                return _error(500, "nothing scripted for this request")
            reply = self._rule(body)
        if reply.delay > 0:  # a slow model; each request has its own server thread
            time.sleep(reply.delay)
        if reply.error is not None:
            status, message, retry_after = reply.error
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return _error(status, message, **headers)
        if body.get("stream"):
            return self._stream(
                reply, include_usage=bool((body.get("stream_options") or {}).get("include_usage"))
            )
        return Response.json(self._completion(reply))

    def _message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:12]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for name, args in reply.tool_calls
            ]
        return message

    def _usage(self, reply: Reply) -> dict[str, int]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }

    def _envelope(self, obj: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": obj,
            "created": int(time.time()),
            "model": self.model,
        }

    def _completion(self, reply: Reply) -> dict[str, Any]:
        finish = "tool_calls" if reply.tool_calls else "stop"
        return {
            **self._envelope("chat.completion"),
            "choices": [{"index": 0, "message": self._message(reply), "finish_reason": finish}],
            "usage": self._usage(reply),
        }

    def _stream(self, reply: Reply, *, include_usage: bool) -> Response:
        envelope = self._envelope("chat.completion.chunk")
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if reply.text:
            words = reply.text.split(" ")
            deltas += [{"content": w if i == 0 else f" {w}"} for i, w in enumerate(words)]
        for index, call in enumerate(self._message(reply).get("tool_calls", [])):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {
                                "name": call["function"]["name"],
                                "arguments": arguments[:half],
                            },
                        }
                    ]
                }
            )
            deltas.append(
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}
            )
        events = [
            {**envelope, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            for d in deltas
        ]
        finish = "tool_calls" if reply.tool_calls else "stop"
        events.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            events.append({**envelope, "choices": [], "usage": self._usage(reply)})
        chunks = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        return Response(200, headers={"Content-Type": "text/event-stream"}, chunks=chunks)


def _error(status: int, message: str, **headers: str) -> Response:
    kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    return Response.json(
        {"error": {"message": message, "type": kind, "param": None, "code": kind}},
        status=status,
        **headers,
    )
