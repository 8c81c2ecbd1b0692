"""Training data: runs the agent stored exported through the CLI, imports, and the scrubber."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.agent import Agent, ConversationStore, OpenAIBackend, ThreadKey
from bot.storage import Database
from finetune.data import split_by_thread
from finetune.scrub import Scrubber
from tests.conftest import CliResult, FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.finetune_support import deskbot_in_process
from tests.secret_values import OPENAI_KEY
from tools.base import Tool, ToolContext, ToolRegistry

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliResult]


@pytest.fixture
def deskbot_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``deskbot`` through click's runner in this process (``run_cli`` without the process)."""
    return deskbot_in_process(tmp_path / "data")


@Tool.from_function
async def get_weather(city: str) -> dict[str, str]:
    """Today's weather in a city.

    Args:
        city: The city.
    """
    return {"sky": "sunny", "contact": "forecaster@weather.example.com"}


@pytest.fixture
async def agent(database: Database, openai_server: ScriptedOpenAI) -> AsyncIterator[Agent]:
    store = ConversationStore(database.engine)
    backend = OpenAIBackend(model="gpt-test", api_key=OPENAI_KEY, base_url=openai_server.base_url)
    yield Agent(backend, ToolRegistry([get_weather]), store, instructions="Be brief.")
    await store.drain()


async def ask_with_tool(
    agent: Agent, server: ScriptedOpenAI, thread: str, city: str, answer: str
) -> Any:
    server.reply_tool_calls(("get_weather", {"city": city}))
    server.reply_text(answer)
    return await agent.ask(
        ThreadKey("slack", thread), f"Weather in {city}?", ToolContext.operator()
    )


async def store_runs(agent: Agent, server: ScriptedOpenAI) -> None:
    """Four threads: two tool runs (one liked), a repeat of one, a disliked run, a chat-only run."""
    liked = await ask_with_tool(agent, server, "t1", "Seoul", "Sunny. Call me at 010-1234-5678.")
    await agent.store.record_feedback(liked.run_id, "U1", 1)
    await ask_with_tool(agent, server, "t2", "Busan", "Sunny in Busan.")
    await ask_with_tool(agent, server, "t3", "Busan", "Sunny in Busan.")  # same conversation
    disliked = await ask_with_tool(agent, server, "t4", "Jeju", "Rain, probably.")
    await agent.store.record_feedback(disliked.run_id, "U1", -1)
    server.reply_text("Hello!")
    await agent.ask(ThreadKey("slack", "t5"), "Hi", ToolContext.operator())
    server.reply_text("Still sunny.")  # a follow-up in t1: the earlier turn is its history
    await agent.ask(ThreadKey("slack", "t1"), "And tomorrow?", ToolContext.operator())
    await agent.store.drain()


@pytest.fixture
def tools_file(tmp_path: Path) -> Path:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(ToolRegistry([get_weather]).schemas()), encoding="utf-8")
    return path


def export(deskbot_cli: RunCli, db: FreshDatabase, tools: Path, out: Path, *flags: str) -> Any:
    args = ("finetune", "export", "--out", str(out), "--tools", str(tools), "--json", *flags)
    result = deskbot_cli(*args, env={"DATABASE_URL": db.url})
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_export_writes_stored_tool_runs_in_the_training_form(
    agent: Agent,
    openai_server: ScriptedOpenAI,
    deskbot_cli: RunCli,
    fresh_database: FreshDatabase,
    tools_file: Path,
    tmp_path: Path,
) -> None:
    await store_runs(agent, openai_server)

    report = export(
        deskbot_cli, fresh_database, tools_file, tmp_path / "data.jsonl", "--eval-share", "0.3"
    )

    assert report["runs"] == 6, report
    assert report["dropped"] == {"feedback": 1}
    assert report["duplicates"] == 1, report
    assert report["scrubbed"] == {"email": 3, "phone": 2, "rrn": 0}
    # one thread of four held out (which one follows from its random id): one or two runs
    assert report["train"] + report["eval"] == 4 and report["eval"] in (1, 2)
    train, held = read_lines(tmp_path / "data.jsonl"), read_lines(tmp_path / "data.eval.jsonl")
    examples = train + held
    seoul = next(e for e in examples if "Seoul" in e["messages"][1]["content"])
    system, question, call, result, answer = seoul["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert question == {"role": "user", "content": "Weather in Seoul?"}
    assert call["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Seoul"},
    }
    assert result["role"] == "tool" and result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "[EMAIL]" in result["content"] and "@" not in result["content"]
    assert answer == {"role": "assistant", "content": "Sunny. Call me at [PHONE]."}
    assert seoul["tools"][0]["function"]["name"] == "get_weather"
    follow_up = next(e for e in examples if e["messages"][-1]["content"] == "Still sunny.")
    assert [m["role"] for m in follow_up["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert (seoul in held) == (follow_up in held)  # a thread is never split
    assert follow_up["messages"][2]["content"] == "Sunny. Call me at [PHONE]."


async def test_export_offers_each_run_the_tools_it_recorded(
    agent: Agent,
    openai_server: ScriptedOpenAI,
    deskbot_cli: RunCli,
    fresh_database: FreshDatabase,
    tmp_path: Path,
) -> None:
    await ask_with_tool(agent, openai_server, "t1", "Seoul", "Sunny in Seoul.")
    await ask_with_tool(agent, openai_server, "t2", "Busan", "Rain in Busan.")
    await agent.store.drain()
    with psycopg.connect(fresh_database.url) as conn:  # Busan's run predates recorded tools
        conn.execute(
            "UPDATE runs SET tools = NULL WHERE id = "
            "(SELECT run_id FROM messages WHERE content = 'Weather in Busan?')"
        )
    older = [{"type": "function", "function": {"name": "get_weather", "description": "Old."}}]
    (tmp_path / "older.json").write_text(json.dumps(older), encoding="utf-8")

    report = export(
        deskbot_cli,
        fresh_database,
        tmp_path / "older.json",
        tmp_path / "d.jsonl",
        "--eval-share",
        "0",
    )

    assert report["train"] == 2
    seoul, busan = sorted(read_lines(tmp_path / "d.jsonl"), key=lambda e: "Busan" in str(e))
    offered = ToolRegistry([get_weather]).schemas()
    # what the model saw, key order included (it is part of the prompt)
    assert json.dumps(seoul["tools"]) == json.dumps(offered)
    assert busan["tools"] == older  # --tools stands in for a run that recorded none


async def test_export_filters_by_feedback_and_tool_calls(
    agent: Agent,
    openai_server: ScriptedOpenAI,
    deskbot_cli: RunCli,
    fresh_database: FreshDatabase,
    tools_file: Path,
    tmp_path: Path,
) -> None:
    await store_runs(agent, openai_server)

    liked = export(
        deskbot_cli, fresh_database, tools_file, tmp_path / "a.jsonl", "--feedback", "positive"
    )
    with_tools = export(
        deskbot_cli,
        fresh_database,
        tools_file,
        tmp_path / "b.jsonl",
        "--min-tools",
        "1",
        "--eval-share",
        "0",
    )

    assert liked["train"] + liked["eval"] == 1
    assert with_tools["dropped"] == {"feedback": 1, "too few tool calls": 2}
    assert with_tools["train"] == 2 and with_tools["eval"] == 0
    assert not (tmp_path / "b.eval.jsonl").exists()


def test_import_alpaca_and_sharegpt(deskbot_cli: RunCli, tmp_path: Path) -> None:
    alpaca = tmp_path / "koalpaca.json"
    rows = [
        {"instruction": "휴가는 며칠?", "input": "", "output": "15일입니다."},
        {"instruction": "메일 주소", "input": "홍길동", "output": "hong@example.com 입니다."},
        {"instruction": "휴가는 며칠?", "input": "", "output": "15일입니다."},
        {"instruction": "", "output": "no question"},
    ]
    alpaca.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    sharegpt = tmp_path / "sharegpt.jsonl"
    conversation = [
        {"from": "human", "value": "Weather in Seoul?"},
        {
            "from": "function_call",
            "value": '{"name": "get_weather", "arguments": "{\\"city\\": \\"Seoul\\"}"}',
        },
        {"from": "observation", "value": '{"sky": "sunny"}'},
        {"from": "gpt", "value": "Sunny."},
    ]
    sharegpt.write_text(
        json.dumps({"conversations": conversation, "tools": "[]"}) + "\n", encoding="utf-8"
    )

    first = deskbot_cli(
        "finetune", "import", str(alpaca), "--out", str(tmp_path / "a.jsonl"), "--json"
    )
    second = deskbot_cli("finetune", "import", str(sharegpt), "--out", str(tmp_path / "s.jsonl"))

    assert first.code == 0, first.stderr
    assert json.loads(first.stdout) | {"out": None} == {
        "runs": 4,
        "dropped": {"not alpaca: ValueError": 1},
        "duplicates": 1,
        "scrubbed": {"email": 1, "phone": 0, "rrn": 0},
        "train": 2,
        "eval": 0,
        "out": None,
        "eval_out": None,
    }
    assert read_lines(tmp_path / "a.jsonl")[1]["messages"] == [
        {"role": "user", "content": "메일 주소\n\n홍길동"},
        {"role": "assistant", "content": "[EMAIL] 입니다."},
    ]
    assert second.code == 0, second.stderr
    (example,) = read_lines(tmp_path / "s.jsonl")
    call = example["messages"][1]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": {"city": "Seoul"}}
    assert example["messages"][2] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": '{"sky": "sunny"}',
    }


def test_a_missing_import_file_is_one_line(deskbot_cli: RunCli, tmp_path: Path) -> None:
    result = deskbot_cli(
        "finetune", "import", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o.jsonl")
    )
    assert result.code == 2
    assert (
        result.stderr.strip().startswith("deskbot: cannot read")
        and len(result.stderr.splitlines()) == 1
    )


@pytest.mark.parametrize(
    ("text", "scrubbed", "kind"),
    [
        ("mail kim.minsu@example.co.kr now", "mail [EMAIL] now", "email"),
        ("010-1234-5678", "[PHONE]", "phone"),
        ("전화 01012345678 주세요", "전화 [PHONE] 주세요", "phone"),
        ("+82 10-1234-5678", "[PHONE]", "phone"),
        ("+82-2-123-4567", "[PHONE]", "phone"),
        ("서울 02-123-4567, 경기 031 123 4567", "서울 [PHONE], 경기 [PHONE]", "phone"),
        ("US +1 415 555 0100", "US [PHONE]", "phone"),
        ("UK +44 20 7946 0958.", "UK [PHONE].", "phone"),
        ("900101-1234567", "[RRN]", "rrn"),
        ("주민번호 900101 - 2234567 입니다", "주민번호 [RRN] 입니다", "rrn"),
        ("9001011234567", "[RRN]", "rrn"),
    ],
)
def test_the_scrubber_replaces_personal_data(text: str, scrubbed: str, kind: str) -> None:
    scrubber = Scrubber()
    assert scrubber.text(text) == scrubbed
    assert {k for k, n in scrubber.counts.items() if n} == {kind}


@pytest.mark.parametrize(
    "text",
    [
        "005930 주가",
        "2024-01-15 10:30",
        "order 12345678",
        "가격 71,500원",
        "v1.2.3",
        "+3 points",
        "991399-1234567",
    ],
)
def test_the_scrubber_leaves_numbers_that_are_not_personal(text: str) -> None:
    scrubber = Scrubber()
    assert scrubber.text(text) == text
    assert sum(scrubber.counts.values()) == 0


def test_the_scrubber_reaches_into_tool_arguments() -> None:
    scrubber = Scrubber()
    value = {"to": ["a@b.io", "+82 10 1111 2222"], "n": 3}
    assert scrubber.deep(value) == {"to": ["[EMAIL]", "[PHONE]"], "n": 3}


def test_the_split_holds_out_whole_threads_the_same_way_each_time() -> None:
    examples = [(f"thread-{n % 10}", {"n": n}) for n in range(20)]  # ten threads, two runs each

    train, held = split_by_thread(examples, 0.2)

    assert len(held) == 4 and len(train) == 16
    held_threads = {f"thread-{e['n'] % 10}" for e in held}
    assert len(held_threads) == 2 and not held_threads & {f"thread-{e['n'] % 10}" for e in train}
    assert split_by_thread(list(reversed(examples)), 0.2)[1] == list(reversed(held))
    assert split_by_thread(examples, 0.0)[1] == []
    assert split_by_thread(examples[:1], 0.5) == ([examples[0][1]], [])  # one thread stays in train
