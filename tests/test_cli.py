"""The ``deskbot`` command as a user runs it: a separate process, a clean environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO, CliResult, FreshDatabase, assert_no_secret

pytestmark = pytest.mark.e2e

Run = Callable[..., CliResult]


def _one_line_error(result: CliResult) -> str:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_doctor_starts_embedded_postgres_and_reports_pgvector(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("doctor")
    assert result.code == 0, result.stderr
    assert "embedded PostgreSQL in" in result.stdout
    assert "with pgvector 0." in result.stdout
    assert "schema at head" in result.stdout
    assert "deskbot can run." in result.stdout
    # The last process out stopped the server.
    assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists()


def test_two_processes_share_one_embedded_server(run_cli: Run, tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli("doctor", "--json"), range(2)))
    for result in results:
        assert result.code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] is True
        assert report["versions"]["pgvector"].startswith("0.")
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists()


def test_doctor_on_an_external_database(run_cli: Run, fresh_database: FreshDatabase) -> None:
    result = run_cli("doctor", "--json", env={"DATABASE_URL": fresh_database.url})
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    database = next(c for c in report["checks"] if c["name"] == "database")
    assert database["detail"].startswith("external ")
    llm = next(c for c in report["checks"] if c["name"] == "llm")
    assert llm["status"] == "warn"


def test_unreachable_database_is_exit_2_and_one_line(run_cli: Run) -> None:
    result = run_cli("doctor", env={"DATABASE_URL": "postgresql://nope:1/x"})
    assert result.code == 2
    assert _one_line_error(result).startswith("deskbot: DATABASE_URL: cannot connect to nope:1/x")


def test_password_never_appears_in_errors(run_cli: Run) -> None:
    url = "postgresql://admin:s3cret-pw@127.0.0.1:9/x"
    result = run_cli("doctor", env={"DATABASE_URL": url})
    assert result.code == 2
    line = _one_line_error(result)
    assert "s3cret-pw" not in line
    assert "127.0.0.1:9" in line


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL: must be a postgresql:// URL"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL: must be a redis:// or rediss:// URL"),
        ({"DESKBOT_LOG_LEVEL": "LOUD"}, "DESKBOT_LOG_LEVEL: Input should be"),
        ({"DESKBOT_WORKER_CONCURRENCY": "0"}, "DESKBOT_WORKER_CONCURRENCY: must be greater"),
        ({"OPENAI_BASE_URL": "localhost:8000"}, "OPENAI_BASE_URL: must be an http://"),
    ],
)
def test_invalid_configuration_is_exit_2_naming_the_variable(
    run_cli: Run, env: dict[str, str], expected: str
) -> None:
    result = run_cli("doctor", env=env)
    assert result.code == 2
    assert _one_line_error(result).startswith(f"deskbot: {expected}")


def test_env_file_is_read(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://from-dotenv/db\n")
    result = run_cli("doctor")
    assert result.code == 2
    assert "DATABASE_URL" in _one_line_error(result)


def test_adapter_without_its_token_is_exit_2(run_cli: Run) -> None:
    slack = run_cli("slack", "--socket")
    assert slack.code == 2
    assert _one_line_error(slack) == (
        "deskbot: SLACK_BOT_TOKEN and SLACK_APP_TOKEN: required to start the slack adapter "
        "in socket mode"
    )
    http = run_cli("slack", "--http", env={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert http.code == 2
    assert _one_line_error(http).startswith("deskbot: SLACK_SIGNING_SECRET: required")
    discord = run_cli("discord")
    assert discord.code == 2
    assert _one_line_error(discord) == (
        "deskbot: DISCORD_TOKEN: required to start the discord adapter"
    )


def test_worker_needs_redis(run_cli: Run) -> None:
    result = run_cli("worker")
    assert result.code == 2
    assert _one_line_error(result).startswith("deskbot: REDIS_URL: required by `deskbot worker`")


def test_db_upgrade_and_current(run_cli: Run, fresh_database: FreshDatabase) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.code == 0, upgraded.stderr
    current = run_cli("db", "current", env=env)
    assert current.code == 0
    revision = upgraded.stdout.split()[-1]
    assert current.stdout.strip() == f"current {revision}; head {revision}"


def test_usage_error_is_exit_2(run_cli: Run) -> None:
    result = run_cli("doctor", "--no-such-flag")
    assert result.code == 2
    assert "No such option" in result.stderr


def test_worker_process_drains_the_redis_queue_and_stops_on_sigterm(
    redis_url: str, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "REDIS_URL": redis_url,
        "DATABASE_URL": fresh_database.url,
        "DESKBOT_LOG_FORMAT": "json",
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
    try:
        # A job of a kind this release has no handler for is dead-lettered, not retried.
        client.xadd(
            "deskbot:jobs", {"id": "j1", "kind": "teleport", "payload": "{}", "enqueued_at": "0"}
        )
        deadline = time.monotonic() + 30
        while not client.xlen("deskbot:jobs:dead") and time.monotonic() < deadline:
            time.sleep(0.1)
        dead = client.xrange("deskbot:jobs:dead")
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
        client.close()
    assert_no_secret(out + err, "deskbot worker")
    assert worker.returncode == 0, err
    assert [fields[b"kind"] for _, fields in dead] == [b"teleport"]
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["msg"] == "worker stopped" for e in logs)
    assert any(e.get("job_id") == "j1" for e in logs)
