"""docker-compose.yml and .env.example stay true to each other and to Settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, SETTINGS_ENV

pytestmark = pytest.mark.unit


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _documented() -> dict[str, str]:
    """Variable -> the comment line just above it in .env.example."""
    documented: dict[str, str] = {}
    comment = ""
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.startswith("# "):
            comment = line
        elif "=" in line and not line.startswith("#"):
            documented[line.split("=", 1)[0]] = comment
            comment = ""
    return documented


def test_compose_has_every_service_with_images_and_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "slack", "discord", "worker"}
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    for name in ("migrate", "slack", "discord", "worker"):
        assert services[name]["build"] == "."
        assert services[name]["command"][0] == "deskbot"
    assert services["migrate"]["command"] == ["deskbot", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("slack", "discord", "worker"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_every_variable_compose_uses_is_documented() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    for service in _compose()["services"].values():
        used |= set((service.get("environment") or {}).keys())
    used -= {"POSTGRES_USER", "POSTGRES_DB"}  # the postgres image's own, set inline
    missing = used - set(_documented())
    assert not missing, f"document these in .env.example: {sorted(missing)}"


def test_env_example_lists_every_setting_with_a_comment() -> None:
    documented = _documented()
    assert set(SETTINGS_ENV) <= set(documented), set(SETTINGS_ENV) - set(documented)
    unknown = set(documented) - set(SETTINGS_ENV) - {"POSTGRES_PASSWORD"}
    assert not unknown, f".env.example names variables deskbot does not read: {unknown}"
    for name, comment in documented.items():
        assert comment, f"{name} has no comment line"


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    torch = next(i for i, line in enumerate(lines) if "torch==" in line)
    project = next(i for i, line in enumerate(lines) if "pip install '." in line)
    assert torch < project
    assert "whl/cpu" in lines[torch]


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()


def test_example_env_file_parses_as_valid_settings(tmp_path: Path) -> None:
    from bot.settings import Settings

    example = tmp_path / ".env"
    example.write_text((REPO / ".env.example").read_text())
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.database_url is None  # deskbot runs its own PostgreSQL
    assert settings.redis_url is None
    assert not settings.llm_configured


def test_slack_manifest_matches_the_adapter() -> None:
    manifest = yaml.safe_load((REPO / "slack-manifest.yml").read_text())
    settings = manifest["settings"]
    events = set(settings["event_subscriptions"]["bot_events"])
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]

    assert {"app_mention", "message.im", "message.channels"} <= events
    assert {"app_mentions:read", "chat:write", "im:history", "commands", "files:read"} <= scopes
    assert commands == ["/deskbot"]
    assert settings["interactivity"]["is_enabled"] is True
    for url in (
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    ):
        assert url.endswith("/slack/events")  # the one endpoint deskbot slack --http serves
