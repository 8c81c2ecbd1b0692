"""Parsing in worker processes: a hang is killed, a crash is one refused file.

Files are parsed in worker processes kept between files: a fresh process per file cost
0.2-0.5 s more than the parse itself (pypdf, pdfminer and their fonts warm up in each new
process), which was most of a re-ingest. Workers come from a forkserver, so a new one starts
in milliseconds. A worker is retired after :data:`_WORKER_FILES` files, and killed when it
overruns its timeout, crashes or its caller goes away. The pool belongs to one ingestor and
is closed with it.

Each worker also runs under a memory limit (``RLIMIT_AS``, set in the worker alone, never in
the forkserver): a file whose parse needs more is refused as ``too_large`` (Python's
``MemoryError``) or, when a C library dies of it, as ``crashed``; the worker is replaced and
the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import resource
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from knowledge.documents import ParsedDocument
from knowledge.errors import ParseError

__all__ = ["ParsePool"]

_WORKER_FILES = 25
_MIB = 1024 * 1024

_context: Any = None


def _mp_context() -> Any:
    global _context  # one forkserver per process, whatever the number of pools
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        # Workers run ``_serve_parses`` from this module: preload it with its imports.
        _context.set_forkserver_preload(["knowledge._parse_pool", "knowledge.parsing"])
    return _context


class _OverranError(Exception):
    """The worker did not answer within the timeout."""


class _NotStartedError(Exception):
    """The worker exited before it could serve a file."""


class _ParseWorker:
    """One child process that parses the files it is sent, one at a time."""

    def __init__(self, memory_bytes: int | None) -> None:
        ctx = _mp_context()
        self.conn, child_end = ctx.Pipe(duplex=True)
        args = (child_end, memory_bytes)
        self.process = ctx.Process(target=_serve_parses, args=args, daemon=True)
        self.process.start()
        child_end.close()
        self.files = 0
        self.started = False

    def parse(self, path: str, max_bytes: int, timeout: float) -> tuple[str, Any]:
        """``("ok", ParsedDocument)`` or ``("refused", ParseError)``; blocks.

        Raises:
            _OverranError: No answer within ``timeout``.
            _NotStartedError: The worker died before it said it was ready.
            EOFError, OSError: The worker died.
        """
        if not self.started:
            try:
                if not self.conn.poll(timeout):
                    raise _OverranError
                self.conn.recv()
            except (EOFError, OSError):
                raise _NotStartedError from None
            self.started = True
        self.files += 1
        self.conn.send((path, max_bytes))
        if not self.conn.poll(timeout):
            raise _OverranError
        reply: tuple[str, Any] = self.conn.recv()
        return reply

    def close(self, *, kill: bool) -> None:
        """Stop the process: politely when it is idle and alive, else by killing it."""
        if kill or not self.process.is_alive():
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(5)
        self.conn.close()


def _serve_parses(conn: Connection, memory_bytes: int | None) -> None:
    from knowledge.parsing import parse_file

    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    # Ctrl-C reaches the whole process group; the pool's owner decides when a worker ends
    # (it closes the pipe or kills it), so a worker must not die printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # pypdf and pdfminer log every oddity of a file as a warning; with no handler, Python
    # would print them on the user's terminal. What matters reaches the result table.
    logging.getLogger().addHandler(logging.NullHandler())
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        path, max_bytes = request
        try:
            conn.send(("ok", parse_file(Path(path), max_bytes=max_bytes)))
        except ParseError as exc:
            conn.send(("refused", exc))
        except MemoryError:  # in the parser's own code, or pickling a huge result
            limit = f" of {memory_bytes // _MIB:,} MB" if memory_bytes else ""
            message = f"needs more memory than the parser's limit{limit}"
            conn.send(("refused", ParseError(message, reason="too_large")))
        except Exception as exc:  # the parser's bug must not become the ingest's crash
            message = f"the parser failed ({type(exc).__name__})"
            conn.send(("refused", ParseError(message, reason="crashed")))


class ParsePool:
    """Worker processes that parse files, reused between files until :meth:`aclose`.

    Args:
        memory_mb: Each worker's address-space limit in MiB; ``None`` for none.
    """

    def __init__(self, *, memory_mb: int | None = None) -> None:
        self._memory_bytes = memory_mb * _MIB if memory_mb else None
        self._idle: list[_ParseWorker] = []
        self._closed = False

    async def parse(self, path: Path, *, max_bytes: int, timeout: float) -> ParsedDocument:
        """Parse ``path`` in a worker process; a hang past ``timeout`` kills the worker.

        Raises:
            ParseError: The file was refused, the parser crashed, or it ran out of time.
        """
        worker = await self._take()
        healthy = False
        try:
            status, value = await asyncio.to_thread(worker.parse, str(path), max_bytes, timeout)
            healthy = True
        except _OverranError:
            message = f"parsing took longer than {timeout:g} s and was stopped"
            raise ParseError(message, reason="timeout") from None
        except _NotStartedError:
            # The usual cause: a script calling the ingest at import time. Each worker process
            # imports the script's main module again, and starts the ingest there too.
            raise ParseError(
                "the parser process exited before it started (in a script, call the ingest "
                'under `if __name__ == "__main__":`)',
                reason="crashed",
            ) from None
        except (EOFError, OSError):
            raise ParseError("the parser crashed", reason="crashed") from None
        finally:
            await self._give_back(worker, healthy=healthy)
        return _document(status, value)

    async def aclose(self) -> None:
        """Stop the idle workers; one still parsing stops when its file is done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for worker in idle:
            await asyncio.to_thread(worker.close, kill=False)

    async def _take(self) -> _ParseWorker:
        self._closed = False  # parsing again after a close starts workers again
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                return worker
            await asyncio.to_thread(worker.close, kill=True)
        return await asyncio.to_thread(_ParseWorker, self._memory_bytes)

    async def _give_back(self, worker: _ParseWorker, *, healthy: bool) -> None:
        if healthy and worker.files < _WORKER_FILES and not self._closed:
            self._idle.append(worker)
        else:  # overran, crashed, retired, closed, or the caller was cancelled mid-parse
            await asyncio.to_thread(worker.close, kill=not healthy)


def _document(status: str, value: Any) -> ParsedDocument:
    if status != "ok":
        raise value if isinstance(value, ParseError) else ParseError(str(value), reason="crashed")
    if not isinstance(value, ParsedDocument):
        raise ParseError("the parser returned something unexpected", reason="crashed")
    return value
