"""A small threaded HTTP server on 127.0.0.1 that records every request.

The scripted OpenAI server and the fake Slack API build on it. It runs in its own thread,
so sync clients (slack_sdk's WebClient) and async ones (openai's AsyncOpenAI, aiohttp)
reach it alike, over real sockets.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeHTTPServer", "Recorded", "Response"]


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, list[str]] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (last value wins)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    """What to send back: a status, headers and either a body or SSE chunks."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Response:
        """A JSON response."""
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **headers},
        )


class FakeHTTPServer:
    """Subclasses implement :meth:`handle`; requests are recorded in :attr:`requests`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeHTTPServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, request: Recorded) -> Response:
        """Answer one request (runs on a server thread)."""
        raise NotImplementedError

    def _record(self, request: Recorded) -> Response:
        with self._lock:
            self.requests.append(request)
        try:
            return self.handle(request)
        except Exception as exc:  # a bug in a fake must fail the test, not hang it
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return Response.json({"error": {"message": str(exc)}}, status=500)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Recorded(
                    method=self.command,
                    path=parts.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    query=parse_qs(parts.query),
                )
                response = fake._record(request)
                # The client may be gone: a test killed it while its call was held.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(response)

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if response.chunks is None:
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                    return
                self.end_headers()
                for chunk in response.chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
