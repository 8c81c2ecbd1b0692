"""The deployment files (compose, Dockerfile, Makefile, .env.example, the README install link)
stay true to each other, to Settings and to discord.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from pydantic import AliasChoices

from tests.conftest import REPO, SETTINGS_ENV

pytestmark = pytest.mark.unit


# discord.Permissions flags of what the bot does: read and answer in channels and threads,
# start a thread from a mention, read a thread's history, and attach the sources embed.
_BOT_PERMISSIONS = (
    "view_channel",
    "send_messages",
    "send_messages_in_threads",
    "create_public_threads",
    "read_message_history",
    "embed_links",
)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


# `# NAME=value`: a variable shown with its default but left commented out.
_COMMENTED_OUT = re.compile(r"# ([A-Z][A-Z0-9_]*)=")


def _documented() -> dict[str, str]:
    """Variable -> the comment line just above it in .env.example (commented-out ones too)."""
    documented: dict[str, str] = {}
    comment = ""
    for line in (REPO / ".env.example").read_text().splitlines():
        if _COMMENTED_OUT.match(line) or ("=" in line and not line.startswith("#")):
            documented[line.removeprefix("# ").split("=", 1)[0]] = comment
            comment = ""
        elif line.startswith("# "):
            comment = line
    return documented


def _example_section(title: str) -> dict[str, str]:
    """Variable -> the value .env.example shows for it, in its `# --- title ---` section."""
    values: dict[str, str] = {}
    section = ""
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.startswith("# --- "):
            section = line.strip("# -")
        elif section == title and (_COMMENTED_OUT.match(line) or not line.startswith("#")):
            name, _, value = line.removeprefix("# ").partition("=")
            if name:
                values[name] = value
    return values


def _pip_extras(path: str, marker: str) -> set[str]:
    """The extras of the one `pip install ... '.[a,b]'` line of a file that contains marker."""
    lines = [line for line in (REPO / path).read_text().splitlines() if marker in line]
    assert len(lines) == 1, lines
    found = re.search(r"'\.\[([a-z,]+)\]'", lines[0])
    assert found, lines[0]
    return set(found.group(1).split(","))


def _readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


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


def test_plain_compose_up_starts_every_service_with_the_discord_adapter() -> None:
    services = _compose()["services"]
    assert not [name for name, s in services.items() if "profiles" in s]
    discord = services["discord"]
    assert discord["command"] == ["deskbot", "discord"]
    assert discord["env_file"] == ".env"  # DISCORD_TOKEN comes from there
    assert discord["environment"]["REDIS_URL"]  # the gateway only enqueues; workers answer
    assert services["worker"]["env_file"] == ".env"  # the workers answer with the token too


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


def test_the_image_and_make_install_install_the_discord_and_integrations_extras() -> None:
    assert _pip_extras("Dockerfile", "pip install '.") == {"ml", "discord", "integrations"}
    assert _pip_extras("Makefile", "pip install --quiet --disable-pip-version-check -e") == {
        "ml",
        "dev",
        "discord",
        "integrations",
    }


def test_env_example_shows_every_discord_setting_with_its_default() -> None:
    from bot.settings import Settings

    fields = {
        str(field.validation_alias.choices[0]): field.default
        for name, field in Settings.model_fields.items()
        if name.startswith("discord_") and isinstance(field.validation_alias, AliasChoices)
    }
    assert "DISCORD_TOKEN" in fields
    shown = _example_section("Discord")
    assert set(shown) == set(fields)
    for name, value in shown.items():
        if value:  # an empty value counts as unset: the default applies
            assert value == str(fields[name]), name


# discord.py imports audioop (for voice, which deskbot never uses): deprecated since 3.11.
@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
def test_readme_install_link_carries_exactly_the_permissions_the_bot_uses() -> None:
    import discord

    flags = [discord.Permissions(**{name: True}).value for name in _BOT_PERMISSIONS]
    used = discord.Permissions(**dict.fromkeys(_BOT_PERMISSIONS, True)).value
    section = _readme_section("Discord")
    links = re.findall(r"https://discord\.com/oauth2/authorize\?[^\s)`]+", section)
    assert len(links) == 1, links
    query = parse_qs(urlsplit(links[0]).query)
    assert query["permissions"] == [str(used)]
    assert query["scope"] == ["bot applications.commands"]
    # The sum the README shows: each permission's value with its bit, then the total.
    shown = {int(value): int(bit) for value, bit in re.findall(r"(\d+) \(1<<(\d+)\)", section)}
    assert all(value == 1 << bit for value, bit in shown.items()), shown
    assert sorted(shown) == sorted(flags)
    assert f"= {used}" in section


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
    # /deskbot access reads mentions as ids: Slack sends them so only when asked to escape.
    assert manifest["features"]["slash_commands"][0]["should_escape"] is True
    assert settings["interactivity"]["is_enabled"] is True
    for url in (
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    ):
        assert url.endswith("/slack/events")  # the one endpoint deskbot slack --http serves
