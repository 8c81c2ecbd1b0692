"""``deskbot finetune eval --compare-rag``: teacher + RAG, LoRA alone, LoRA + RAG."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.conftest import CliResult, FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.finetune_support import deskbot_in_process, tiny_model_dir
from tests.secret_values import OPENAI_KEY

pytestmark = pytest.mark.e2e

RunCli = Callable[..., CliResult]


@pytest.fixture
def deskbot_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``deskbot`` through click's runner in this process (``run_cli`` without the process)."""
    return deskbot_in_process(tmp_path / "data")


HANDBOOK = (
    "# Travel\n\nThe hotel cap in Tokyo is 180 USD per night.\n\n"
    "# 휴가\n\n연차 휴가는 입사 첫해 15일입니다.\n"
)
QUESTIONS = (
    ("What is the hotel cap in Tokyo?", "The hotel cap in Tokyo is 180 USD per night [1]."),
    ("연차는 며칠이야?", "입사 첫해 연차는 15일입니다 [1]."),
)


def test_compare_rag_runs_the_three_systems_and_keeps_no_run(
    deskbot_cli: RunCli,
    openai_server: ScriptedOpenAI,
    fresh_database: FreshDatabase,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    (tmp_path / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    ingested = deskbot_cli(
        "ingest", str(tmp_path / "handbook.md"), "--collection", "handbook", env=env
    )
    assert ingested.code == 0, ingested.stderr
    questions = tmp_path / "questions.jsonl"
    lines = [json.dumps({"question": q, "answer": a}, ensure_ascii=False) for q, a in QUESTIONS]
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for question, answer in QUESTIONS:  # the teacher answers first, each from a search
        openai_server.reply_tool_calls(("search_documents", {"query": question}))
        openai_server.reply_text(answer)
    env |= {
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "DESKBOT_MODEL": "m",
        "DESKBOT_LOCAL_MAX_NEW_TOKENS": "16",  # the random model never stops by itself
    }

    tiny = str(tiny_model_dir(tmp_path_factory))
    result = deskbot_cli(
        "finetune", "eval", "--model", tiny, "--compare-rag", str(questions), "--json", env=env
    )

    assert result.code == 0, result.stderr
    teacher, alone, with_rag = json.loads(result.stdout)["compare_rag"]
    assert [teacher["system"], alone["system"], with_rag["system"]] == [
        "teacher + RAG",
        "LoRA alone",
        "LoRA + RAG",
    ]
    assert teacher | {"seconds": 0} == {
        "system": "teacher + RAG",
        "questions": 2,
        "answered": 1.0,
        "used_a_tool": 1.0,
        "cited": 1.0,
        "chrf": 100.0,
        "seconds": 0,
    }
    assert alone["used_a_tool"] == 0.0 and alone["questions"] == 2
    assert 0 <= alone["chrf"] < 100 and 0 <= with_rag["chrf"] < 100
    with psycopg.connect(fresh_database.url) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_compare_rag_needs_the_teacher(
    deskbot_cli: RunCli, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Hi"}\n', encoding="utf-8")
    tiny = str(tiny_model_dir(tmp_path_factory))

    result = deskbot_cli("finetune", "eval", "--model", tiny, "--compare-rag", str(questions))

    assert result.code == 2
    assert result.stderr.startswith("deskbot: --compare-rag needs the teacher")
