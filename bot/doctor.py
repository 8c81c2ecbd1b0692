"""``deskbot doctor``: what is configured, what runs, and what is still missing."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Literal

from bot.settings import Adapter, Settings
from bot.state import open_state
from bot.storage import open_database

__all__ = ["Check", "Report", "run_doctor"]

Status = Literal["ok", "warn", "fail"]

# "pgvector" in the report is the server extension, not the Python package.
_LIBRARIES = ("openai", "slack-bolt", "discord.py", "sqlalchemy", "psycopg", "redis")


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str


@dataclass
class Report:
    """Everything doctor found; ``ok`` is the exit status's source."""

    versions: dict[str, str]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed: the configuration can run."""
        return all(check.status != "fail" for check in self.checks)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for ``doctor --json``."""
        return {
            "ok": self.ok,
            "versions": self.versions,
            "checks": [asdict(c) for c in self.checks],
        }


def _versions() -> dict[str, str]:
    found = {"deskbot": _version("deskbot"), "python": platform.python_version()}
    for name in _LIBRARIES:
        found[name] = _version(name)
    return found


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


async def run_doctor(settings: Settings) -> Report:
    """Check every configured service.

    Raises:
        DeskbotError: The database or Redis is configured but unusable; the message is
            the one line the user needs (which variable, what is wrong).
    """
    report = Report(versions=_versions())
    report.checks.append(await _check_database(settings, report))
    report.checks.append(await _check_state(settings))
    report.checks.append(_check_llm(settings))
    adapters: tuple[Adapter, ...] = ("slack", "discord")
    for adapter in adapters:
        if adapter == "discord" and settings.discord_token is not None:
            report.checks.append(await _check_discord(settings))
        else:
            report.checks.append(_check_adapter(settings, adapter))
    return report


async def _check_database(settings: Settings, report: Report) -> Check:
    began = time.perf_counter()
    db = await open_database(settings, migrate=True)
    where = db.display_url if db.is_embedded else f"external {db.display_url}"
    try:
        info = await db.info()
    finally:
        await db.close()
    elapsed = time.perf_counter() - began
    report.versions["postgresql"] = info.server_version
    report.versions["pgvector"] = info.pgvector_version or "missing"
    if info.pgvector_version is None:
        return Check("database", "fail", f"{db.display_url}: the pgvector extension is missing")
    schema = "at head" if info.revision == info.head else f"at {info.revision}, head {info.head}"
    detail = (
        f"{where}; PostgreSQL {info.server_version} with pgvector "
        f"{info.pgvector_version}; schema {schema} ({elapsed:.2f} s to ready)"
    )
    return Check("database", "ok", detail)


async def _check_state(settings: Settings) -> Check:
    state = await open_state(settings)
    await state.close()
    if state.backend == "memory":
        return Check(
            "redis",
            "ok",
            "not configured: queue, dedup, rate limits and cache are in-process "
            "(set REDIS_URL to share them between processes)",
        )
    return Check("redis", "ok", f"{state.display_url}: reachable")


def _check_llm(settings: Settings) -> Check:
    if settings.llm == "local":
        return _check_local_model(settings)
    if not settings.llm_configured:
        return Check(
            "llm",
            "warn",
            "not configured: answers are retrieval-only (set OPENAI_API_KEY or OPENAI_BASE_URL)",
        )
    where = settings.openai_base_url or "api.openai.com"
    return Check("llm", "ok", f"OpenAI-compatible endpoint {where}, model {settings.model}")


def _check_local_model(settings: Settings) -> Check:
    """The local model's path, size, device and whether its chat template takes tools."""
    from finetune.local import LocalModelError, describe_model

    if settings.local_model is None:
        return Check("llm", "fail", "DESKBOT_LLM=local needs DESKBOT_LOCAL_MODEL (a directory)")
    try:
        info = describe_model(settings.local_model, adapter=settings.local_adapter)
    except LocalModelError as exc:
        return Check("llm", "fail", f"local model: {exc}")
    adapter = f" + adapter {info.adapter}" if info.adapter else ""
    tools = (
        "chat template takes tools"
        if info.template_has_tools
        else "chat template has no tools: the model cannot call any"
    )
    detail = f"local model {info.path}{adapter}: {info.parameters:,} parameters on {info.device}; "
    return Check("llm", "ok" if info.template_has_tools else "warn", detail + tools)


def _check_adapter(settings: Settings, adapter: Adapter) -> Check:
    missing = settings.adapter_missing(adapter)
    if missing:
        return Check(adapter, "warn", f"cannot start: needs {' and '.join(missing)}")
    return Check(adapter, "ok", "tokens present")


async def _check_discord(settings: Settings) -> Check:
    """The token and the privileged intents, as Discord sees them."""
    from bot.discord.portal import check_application
    from bot.discord.rest import RestError

    try:
        status, detail = await check_application(settings)
    except (RestError, OSError) as exc:
        return Check("discord", "warn", f"{settings.discord_api_url} did not answer: {exc}")
    return Check("discord", status, detail)
