"""No secret reaches a log line, an error or ``doctor --json``.

Every test of the suite runs with the real-looking secrets of ``tests/secret_values.py`` and
under the leak watch of ``tests/conftest.py`` (every log record, the HTTP, Slack, Discord and
OpenAI clients at DEBUG; the output of every ``deskbot`` process a test starts). Here: the
watch itself can fail a test; ``doctor --json`` with every secret set, at DEBUG, on its
success and its error paths (Discord refusing the token, the database unreachable); a Slack
mention answered end to end at DEBUG with the model failing once; and the product's own
net, :class:`bot.logredact.RedactSecrets` on deskbot's log handler.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from bot.logredact import MASK, RedactSecrets, configured_secrets
from bot.logs import configure_logging
from bot.settings import Settings
from tests.conftest import CliResult, FreshDatabase, LeakWatch, assert_no_secret
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.hostile_paths import ANSWER, mention, slack_settings, slack_stack, tool_rule
from tests.secret_values import (
    DB_PASSWORD,
    DISCORD_TOKEN,
    OPENAI_KEY,
    REDIS_PASSWORD,
    SECRETS,
    SLACK_APP_TOKEN,
    SLACK_BOT_TOKEN,
    SLACK_SIGNING_SECRET,
    leaks,
    masked,
    with_password,
)

SQL_PASSWORD = "sql-Rz5Nw8Kp2Xc6Hv9Jq3"


def every_secret_env(database_url: str, redis_url: str) -> dict[str, str]:
    """Every secret setting, each set to a real-looking value."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DESKBOT_SQL_URL": with_password(database_url, SQL_PASSWORD),
        "OPENAI_API_KEY": OPENAI_KEY,
        "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
        "SLACK_APP_TOKEN": SLACK_APP_TOKEN,
        "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
        "DISCORD_TOKEN": DISCORD_TOKEN,
    }


# --- the watch itself ---------------------------------------------------------------------


@pytest.mark.unit
def test_the_leak_check_finds_a_secret_whole_or_in_part() -> None:
    assert leaks(f"Authorization: Bearer {OPENAI_KEY}") == ["OPENAI_API_KEY"]
    assert leaks(f"token={SLACK_BOT_TOKEN[5:]}") == ["SLACK_BOT_TOKEN"]  # prefix cut off
    assert leaks(f"...{DISCORD_TOKEN.rsplit('.', 1)[1]}") == ["DISCORD_TOKEN"]  # its HMAC
    assert leaks(f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379") == ["REDIS_URL password"]
    assert leaks("xoxb-test sk-test postgresql://postgres:***@/db") == []
    assert masked(f"key {OPENAI_KEY}!") == "key [OPENAI_API_KEY]!"
    with pytest.raises(pytest.fail.Exception, match="printed a secret"):
        assert_no_secret(f"connecting to postgresql://u:{DB_PASSWORD}@db/x", "deskbot worker")


@pytest.mark.unit
def test_the_watch_fails_a_test_whose_library_logs_a_secret_at_debug(
    secret_watch: LeakWatch,
) -> None:
    seen = secret_watch.seen
    logging.getLogger("slack_sdk.web.base_client").debug("body: token=%s", SLACK_BOT_TOKEN)
    try:
        raise ConnectionError(f"cannot reach redis://:{REDIS_PASSWORD}@10.0.0.9:6379")
    except ConnectionError:
        logging.getLogger("bot.worker").warning("queue unavailable", exc_info=True)
    logging.getLogger("bot.jobs").info("job", extra={"auth": f"Bot {DISCORD_TOKEN}"})
    logging.getLogger("httpx").debug("HTTP Request: GET http://127.0.0.1/ok")  # no secret
    found = list(secret_watch.found)
    secret_watch.found.clear()  # this test's leaks were deliberate: it passes
    assert secret_watch.seen == seen + 4
    assert [line.split(":")[0] for line in found] == [
        "slack_sdk.web.base_client DEBUG (SLACK_BOT_TOKEN)",
        "bot.worker WARNING (REDIS_URL password)",
        "bot.jobs INFO (DISCORD_TOKEN)",
    ]
    assert leaks("\n".join(found)) == []  # the report names the secret, never shows it


@pytest.mark.unit
def test_the_test_values_cover_every_secret_setting() -> None:
    secret_settings = [
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    ]
    env_names = {
        name: str(field.validation_alias.choices[0])  # type: ignore[union-attr]
        for name, field in Settings.model_fields.items()
    }
    covered = every_secret_env("postgresql://u:p@db/x", "redis://:p@r:6379")
    assert sorted(env_names[name] for name in secret_settings) == sorted(covered)
    assert len(set(SECRETS.values())) == len(SECRETS)


# --- doctor and a Slack answer at DEBUG ----------------------------------------------------


@pytest.mark.e2e
def test_doctor_json_and_its_logs_hold_no_secret(
    run_cli: Callable[..., CliResult],
    fresh_database: FreshDatabase,
    redis_url: str,
    discord_api: FakeDiscord,
    openai_server: ScriptedOpenAI,
) -> None:
    assert DB_PASSWORD in fresh_database.url and REDIS_PASSWORD in redis_url
    env = {
        **every_secret_env(fresh_database.url, redis_url),
        "OPENAI_BASE_URL": openai_server.base_url,
        "DISCORD_API_URL": discord_api.api_url,
        "DESKBOT_LOG_LEVEL": "DEBUG",
    }
    # run_cli itself fails the test if a run's output holds a secret; these say which run.
    good = run_cli("doctor", "--json", env=env)
    assert leaks(good.stdout + good.stderr) == []
    checks = {c["name"]: c for c in json.loads(good.stdout)["checks"]}
    assert {checks[name]["status"] for name in ("database", "redis", "llm", "slack")} == {"ok"}
    assert "postgres:***@" in checks["database"]["detail"]  # shown, its password masked
    assert ":***@" in checks["redis"]["detail"]
    assert discord_api.calls_to("GET", r"/(?:oauth2/)?applications/@me")  # the token, used
    # Discord refusing the token, then the database unreachable: the error paths.
    with FakeDiscord(token=DISCORD_TOKEN.replace("AbCd", "WxYz")) as other:
        refused = run_cli("doctor", "--json", env={**env, "DISCORD_API_URL": other.api_url})
    assert leaks(refused.stdout + refused.stderr) == []
    (discord,) = [c for c in json.loads(refused.stdout)["checks"] if c["name"] == "discord"]
    assert discord["status"] != "ok"
    unreachable = env["DATABASE_URL"].replace("?host=", "?port=1&host=")
    for args in (("doctor", "--json"), ("doctor",)):
        bad = run_cli(*args, env={**env, "DATABASE_URL": unreachable})
        assert bad.code != 0 and "DATABASE_URL" in bad.stderr
        assert leaks(bad.stdout + bad.stderr) == []


@pytest.mark.e2e
async def test_a_slack_answer_at_debug_logs_no_secret(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    openai_server.reply_error(500, "upstream exploded")  # the retry path logs too
    openai_server.answer_with(tool_rule({"search_documents": ["query"]}))
    values = slack_settings({"database_url": fresh_database.url}, slack_api, openai_server)
    values.update(openai_api_key=OPENAI_KEY, slack_app_token=SLACK_APP_TOKEN)
    async with slack_stack(make_settings(**values), slack_api) as stack:
        await stack.post(mention(1, "what is the hotel cap?"))
        for _ in range(300):
            if any(ANSWER in json.dumps(c.args) for c in slack_api.calls_to("chat.update")):
                break
            await asyncio.sleep(0.1)
    assert slack_api.calls[0].token == SLACK_BOT_TOKEN
    assert len(caplog.records) > 20  # DEBUG really was on: the HTTP clients logged
    # The suite-wide watch (tests/conftest.py) searches every one of those records.


# --- the product's own net: RedactSecrets on deskbot's handler ------------------------------


@pytest.fixture
def deskbot_handler(logging_restored: None) -> io.StringIO:
    """A buffer for ``configure_logging`` to write JSON to; the root logger is put back after."""
    return io.StringIO()


@pytest.mark.unit
def test_deskbot_logs_mask_configured_secrets_and_credential_shapes(
    make_settings: Callable[..., Settings],
    deskbot_handler: io.StringIO,
    secret_watch: LeakWatch,
) -> None:
    env = every_secret_env(
        with_password("postgresql://app@db:5432/deskbot", DB_PASSWORD),
        with_password("redis://cache:6379/0", REDIS_PASSWORD),
    )
    names = {str(f.validation_alias.choices[0]): n for n, f in Settings.model_fields.items()}  # type: ignore[union-attr]
    settings = make_settings(**{names[k]: v for k, v in env.items()})
    assert set(configured_secrets(settings)) == {*SECRETS.values(), SQL_PASSWORD}
    configure_logging("DEBUG", "json", stream=deskbot_handler, secrets=configured_secrets(settings))
    log = logging.getLogger("bot.test_redaction")
    log.info("connecting to %s", env["DATABASE_URL"])
    log.debug("headers %r", {"Authorization": f"Bearer {OPENAI_KEY}"})
    headers = {"Authorization": f"Bearer {OPENAI_KEY}", "X-Id": "req-1"}
    log.info(
        "job",
        extra={
            "token": SLACK_BOT_TOKEN,
            "signing": SLACK_SIGNING_SECRET,
            "headers": headers,  # not a string: JSON would write it with str()
            "attempt": 2,
            "ids": ["req-1"],
        },
    )
    try:
        raise RuntimeError(f"gateway refused {DISCORD_TOKEN}; app {SLACK_APP_TOKEN}")
    except RuntimeError:
        log.exception("discord login failed")
    log.info("sql at %s", env["DESKBOT_SQL_URL"].replace(SQL_PASSWORD, SQL_PASSWORD.upper()))
    written = deskbot_handler.getvalue()
    secret_watch.found.clear()  # the raw records held them on purpose; the handler did not
    lines = [json.loads(line) for line in written.splitlines()]
    assert len(lines) == 5
    assert leaks(written) == [] and SQL_PASSWORD not in written
    assert lines[0]["msg"] == f"connecting to postgresql://app:{MASK}@db:5432/deskbot"
    assert lines[2]["token"] == MASK and lines[2]["signing"] == MASK
    assert MASK in lines[2]["headers"] and "'X-Id': 'req-1'" in lines[2]["headers"]
    assert (lines[2]["attempt"], lines[2]["ids"]) == (2, ["req-1"])  # nothing to mask: as given
    assert lines[3]["exc"].startswith("Traceback") and MASK in lines[3]["exc"]
    # Not a configured value, but a password in a URL all the same.
    assert lines[4]["msg"] == f"sql at postgresql://app:{MASK}@db:5432/deskbot"


@pytest.mark.unit
def test_redaction_leaves_ordinary_text_alone() -> None:
    redact = RedactSecrets(["short", "a-longer-secret-value"]).redact
    ordinary = (
        "task-queue-worker-number-one-two-three done; postgresql://localhost/deskbot; "
        "the bot answered in 1.2 s; Bearer of good news; sk-short; xoxb-"
    )
    assert redact(ordinary) == ordinary
    assert redact("short and a-longer-secret-value") == f"short and {MASK}"  # under 8: kept
    assert redact(f"user pasted {SLACK_BOT_TOKEN} and {OPENAI_KEY}") == (
        f"user pasted {MASK} and {MASK}"
    )
    assert redact(f"x-api: Bot {DISCORD_TOKEN}") == f"x-api: Bot {MASK}"
    # A record whose format string does not fit its arguments would make logging print the
    # raw arguments; it is written as message and arguments, masked.
    record = logging.LogRecord("bot", logging.WARNING, __file__, 1, "%s %s", (OPENAI_KEY,), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == f"%s %s ('{MASK}',)"


@pytest.mark.unit
def test_deskbot_logs_write_nothing_below_their_level(deskbot_handler: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=deskbot_handler)
    logging.getLogger("psycopg").setLevel(logging.DEBUG)  # as a library or a test may
    logging.getLogger("psycopg").debug("connection attempt")
    logging.getLogger("psycopg").info("connected")
    assert [json.loads(line)["msg"] for line in deskbot_handler.getvalue().splitlines()] == [
        "connected"
    ]
