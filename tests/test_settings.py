"""Settings: names, validation messages, secrets kept secret, logging."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli.exits import exit_code_for
from bot.errors import ConfigError
from bot.logs import bind, configure_logging
from bot.settings import Settings, load_settings, redact_url

pytestmark = pytest.mark.unit

Make = Callable[..., Settings]


def test_defaults_mean_embedded_and_offline(make_settings: Make) -> None:
    settings = make_settings()
    assert settings.database_url is None  # deskbot runs its own PostgreSQL
    assert not settings.llm_configured
    assert settings.slack_api_url == "https://slack.com/api/"


def test_conventional_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/deskbot")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    monkeypatch.setenv("DESKBOT_DATA_DIR", "~/deskbot-data")
    monkeypatch.setenv("DESKBOT_RATE_LIMIT", "7")
    settings = load_settings()
    assert settings.database_url is not None
    assert settings.llm_configured
    assert settings.data_dir == Path("~/deskbot-data").expanduser()
    assert settings.rate_limit == 7


def test_secrets_never_show(make_settings: Make) -> None:
    settings = make_settings(
        database_url="postgresql://u:db-pass@h/d",
        openai_api_key="sk-live-key",
        slack_bot_token="xoxb-secret",
        discord_token="discord-secret",
    )
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in ("db-pass", "sk-live-key", "xoxb-secret", "discord-secret"):
        assert secret not in shown


def test_all_problems_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("DESKBOT_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "DATABASE_URL: must be a postgresql:// URL, got sqlite://" in message
    assert "DESKBOT_LOG_FORMAT: Input should be 'auto', 'json' or 'text'" in message
    assert exit_code_for(caught.value) == 2  # the CLI's mapping decides the code


def test_a_malformed_port_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:99999")
    with pytest.raises(ConfigError, match=r"^REDIS_URL: must be a redis://"):
        load_settings()


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    settings = load_settings()
    assert settings.database_url is None  # deskbot runs its own PostgreSQL
    assert not settings.llm_configured


def test_redact_url() -> None:
    assert redact_url("postgresql://me:pw@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact_url("redis://:pw@cache/0") == "redis://:***@cache/0"
    assert redact_url("postgresql://db/x") == "postgresql://db/x"


def test_adapter_requirements(make_settings: Make) -> None:
    bare = make_settings()
    assert bare.adapter_missing("discord") == ["DISCORD_TOKEN"]
    http = make_settings(slack_bot_token="xoxb-1", slack_signing_secret="s")
    assert http.adapter_missing("slack", "http") == []
    assert http.adapter_missing("slack", "socket") == ["SLACK_APP_TOKEN"]
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN: required to start the slack"):
        http.require_adapter("slack", "socket")


@pytest.mark.usefixtures("logging_restored")
def test_json_logs_carry_bound_ids() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = logging.getLogger("deskbot.test")
    with bind(request_id="req-1"), bind(job_id="job-9"):
        log.info("answered", extra={"ms": 12.5})
    log.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "answered"
    assert (first["request_id"], first["job_id"], first["ms"]) == ("req-1", "job-9", 12.5)
    assert "request_id" not in second


@pytest.mark.usefixtures("logging_restored")
def test_text_logs_for_terminals() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream=stream)
    with bind(job_id="j1"):
        logging.getLogger("deskbot.test").debug("working")
    assert "debug   deskbot.test: working  job_id=j1" in stream.getvalue()
