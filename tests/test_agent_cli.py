"""The agent through its front doors: ``ask``, ``tools``, ``chat`` and ``demo``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.demo_data import write_demo_stocks
from tests.conftest import CliResult
from tests.fakes.openai_server import ScriptedOpenAI
from tests.secret_values import OPENAI_KEY

pytestmark = pytest.mark.e2e

RunCli = Callable[..., CliResult]

HANDBOOK = """# Travel policy

The hotel cap in Tokyo is 180 USD per night. Trips abroad need approval from a team lead.

# 휴가

연차 휴가는 입사 첫해 15일입니다.
"""


@pytest.fixture
def handbook(run_cli: RunCli, tmp_path: Path) -> Path:
    path = tmp_path / "handbook.md"
    path.write_text(HANDBOOK, encoding="utf-8")
    result = run_cli("ingest", str(path), "--collection", "handbook")
    assert result.code == 0, result.stderr
    return path


def llm_env(server: ScriptedOpenAI) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": OPENAI_KEY, "DESKBOT_MODEL": "m"}


def test_ask_json_has_answer_citations_and_tool_calls(
    run_cli: RunCli, handbook: Path, openai_server: ScriptedOpenAI
) -> None:
    openai_server.reply_tool_calls(("search_documents", {"query": "hotel cap Tokyo"}))
    openai_server.reply_text("The hotel cap in Tokyo is 180 USD per night [1].")

    result = run_cli("ask", "What is the hotel cap in Tokyo?", "--json", env=llm_env(openai_server))

    assert result.code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["answer"] == "The hotel cap in Tokyo is 180 USD per night [1]."
    assert body["status"] == "completed"
    assert [(c["number"], c["title"]) for c in body["citations"]] == [(1, "Travel policy")]
    assert body["tool_calls"] == [
        {"name": "search_documents", "arguments": {"query": "hotel cap Tokyo"}, "error": None}
    ]
    assert openai_server.chat_requests()[0]["model"] == "m"


def test_ask_streams_text_and_lists_sources(
    run_cli: RunCli, handbook: Path, openai_server: ScriptedOpenAI
) -> None:
    openai_server.reply_tool_calls(("search_documents", {"query": "연차"}))
    openai_server.reply_text("입사 첫해 연차는 15일입니다 [1].")

    result = run_cli("ask", "연차는 며칠이야?", env=llm_env(openai_server))

    assert result.code == 0, result.stderr
    assert "입사 첫해 연차는 15일입니다 [1]." in result.stdout
    assert "[1] Travel policy" in result.stdout
    assert openai_server.chat_requests()[0]["stream"] is True


def test_ask_exits_1_when_the_model_cannot_answer(
    run_cli: RunCli, openai_server: ScriptedOpenAI
) -> None:
    openai_server.reply_error(401, "invalid api key")

    result = run_cli("ask", "Hi", "--json", env=llm_env(openai_server))

    assert result.code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "failed"
    assert "invalid api key" in body["answer"]


def test_tools_list_and_call(run_cli: RunCli, tmp_path: Path) -> None:
    write_demo_stocks(tmp_path / "stocks")
    env = {"DESKBOT_STOCK_DATA_DIR": str(tmp_path / "stocks")}

    listed = run_cli("tools", "list", env=env)
    quote = run_cli("tools", "call", "get_stock_quote", "--args", '{"ticker": "HNBT"}', env=env)
    unknown = run_cli("tools", "call", "get_stock_quote", "--args", '{"ticker": "NOPE"}', env=env)
    missing = run_cli("tools", "call", "run_sql", "--args", '{"query": "SELECT 1"}', env=env)
    bad_json = run_cli("tools", "call", "get_stock_quote", "--args", "{", env=env)

    assert listed.code == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == ["search_documents", "get_stock_quote", "get_stock_history"]
    assert quote.code == 0, quote.stderr
    assert json.loads(quote.stdout)["ticker"] == "HNBT"
    assert unknown.code == 1
    assert "NOPE" in unknown.stderr
    assert "HNBT" in unknown.stderr  # the error names the tickers that exist
    assert missing.code == 2
    assert missing.stderr.startswith("deskbot: no tool named 'run_sql' is enabled")
    assert bad_json.code == 2
    assert "--args" in bad_json.stderr


def test_tools_call_searches_within_the_callers_scope(run_cli: RunCli, tmp_path: Path) -> None:
    secret = tmp_path / "salaries.md"
    secret.write_text("# Salaries\n\nThe CEO salary is 900 million won.\n", encoding="utf-8")
    assert run_cli("ingest", str(secret), "--collection", "hr", "--private").code == 0
    arguments = json.dumps({"query": "CEO salary"})

    as_operator = run_cli("tools", "call", "search_documents", "--args", arguments)
    as_user = run_cli(
        "tools", "call", "search_documents", "--args", arguments, "--user", "U1", "--channel", "C1"
    )

    assert as_operator.code == 0, as_operator.stderr
    assert "900 million" in json.loads(as_operator.stdout)["passages"][0]["content"]
    assert as_user.code == 0, as_user.stderr
    assert json.loads(as_user.stdout)["passages"] == []


def test_chat_offline_answers_commands_and_remembers_the_session(
    run_cli: RunCli, handbook: Path, tmp_path: Path
) -> None:
    write_demo_stocks(tmp_path / "stocks")
    env = {"DESKBOT_STOCK_DATA_DIR": str(tmp_path / "stocks")}
    lines = "/help\nWhat is the hotel cap in Tokyo?\n/stock HNBT\n/sql SELECT 1\n/bogus\n"

    first = run_cli("chat", env=env, input=lines)
    second = run_cli("chat", env=env, input="/new\n")
    third = run_cli("chat", env=env, input="")

    assert first.code == 0, first.stderr
    out = first.stdout
    assert "retrieval-only" in out
    assert "/sql SELECT" in out  # the help
    assert "Retrieval-only answer" in out
    assert "180 USD" in out
    assert "[1] Travel policy" in out
    assert "HNBT" in out
    assert "/run_sql: no database is configured (set DESKBOT_SQL_URL)." in out
    assert "Unknown command /bogus" in out
    assert "Continuing your conversation (2 earlier messages)" in second.stdout
    assert "Continuing your conversation" not in third.stdout


def test_demo_loads_its_data_once_and_chats_offline(run_cli: RunCli) -> None:
    lines = (
        "What is the hotel cap in Tokyo?\n"
        "/sql SELECT count(*) AS n FROM employees\n"
        "/stock HNBT 2026-11-01 2026-11-27\n"
    )

    first = run_cli("demo", input=lines, timeout=300)
    again = run_cli("demo", "--no-chat", timeout=300)

    assert first.code == 0, first.stderr
    out = first.stdout
    assert "collection 'demo' (8 new, 0 refused)" in out
    for tool in ("search_documents", "run_sql", "describe_database", "get_stock_history"):
        assert tool in out
    assert "Retrieval-only answer" in out
    assert "220" in out  # the Tokyo hotel cap, from the PDF's table
    assert "travel-policy-2026" in out  # cited
    assert "25" in out  # employees
    assert "HNBT" in out
    assert again.code == 0, again.stderr
    assert "(0 new, 0 refused)" in again.stderr


def test_chat_ingest_reports_each_file_and_the_refusals_by_reason(
    run_cli: RunCli, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "badges.md").write_text("# Badges\n\nBadges open every door on weekdays.\n")
    (folder / "empty.txt").write_bytes(b"")

    result = run_cli("chat", input=f"/ingest {folder} office\n")

    assert result.code == 0, result.stderr
    out = " ".join(result.stdout.split())  # the console wraps long lines
    assert f"stored {folder / 'badges.md'} (1 chunks)" in out
    assert f"refused {folder / 'empty.txt'} (empty file (0 bytes))" in out
    assert "1 stored, 0 unchanged, 1 refused (1 empty)" in out
