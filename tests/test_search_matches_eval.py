"""What users get is what is measured: ``deskbot search`` and ``deskbot eval retrieval``
rank a Korean question the same way, with the Korean dense weight and the same settings.

The dense weights are set to their extremes so the query's script decides the top hit: a
Korean question fuses with weight 1 (dense only), a Latin one with weight 0 (lexical
only). The two passages are written so that BM25 and the embedder disagree: the decoy
repeats the question's words about something else, the answer uses none of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, FreshDatabase

pytestmark = pytest.mark.e2e

Run = Callable[..., CliResult]

QUESTION = "강아지 사료는 어디에서 살 수 있나요?"
PASSAGES = {
    "안내 가": "주차권은 어디에서 살 수 있나요? 주차권은 안내 데스크에서 삽니다.",
    "안내 나": "반려견용 먹이와 간식은 동물병원 옆 펫숍에서 판매한다.",
}
ANSWER = "안내 나"
SETTINGS = {
    "DESKBOT_SEARCH_DENSE_WEIGHT": "1",
    "DESKBOT_SEARCH_DENSE_WEIGHT_LATIN": "0",
    "DESKBOT_SEARCH_MIN_SIMILARITY": "0",
}


def _korquad(passages: dict[str, str] = PASSAGES) -> dict[str, object]:
    """One article per passage, titled like the file the passage is ingested from."""
    return {
        "version": "KorQuAD_v1.0_dev",
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": text,
                        "qas": [{"id": "q", "question": QUESTION, "answers": []}]
                        if title == ANSWER
                        else [],
                    }
                ],
            }
            for title, text in passages.items()
        ],
    }


def _ingest(run_cli: Run, env: dict[str, str], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for title, text in PASSAGES.items():
        (corpus / f"{title}.txt").write_text(text + "\n", encoding="utf-8")
    ingested = run_cli("ingest", str(corpus), "--collection", "guide", env=env)
    assert ingested.code == 0, ingested.stderr


def _search(run_cli: Run, env: dict[str, str], mode: str) -> list[str]:
    """The titles ``deskbot search`` lists for the question, best first."""
    result = run_cli("search", QUESTION, "--mode", mode, "--json", env=env)
    assert result.code == 0, result.stderr
    return [str(hit["citation"]["title"]) for hit in json.loads(result.stdout)]


def _recall_at_1(run_cli: Run, env: dict[str, str], tmp_path: Path) -> dict[str, float]:
    """``deskbot eval retrieval``'s Recall@1 per mode on the same passages and question."""
    dataset = tmp_path / "korquad.json"
    dataset.write_text(json.dumps(_korquad(), ensure_ascii=False), encoding="utf-8")
    evaluated = run_cli("eval", "retrieval", "--format", "korquad", str(dataset), "--json", env=env)
    assert evaluated.code == 0, evaluated.stderr
    return {mode: m["recall@1"] for mode, m in json.loads(evaluated.stdout).items()}


def test_search_and_eval_rank_a_korean_question_alike(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url, **SETTINGS}
    _ingest(run_cli, env, tmp_path)
    # The retrievers disagree, so the fusion weight decides the hybrid top hit.
    assert _search(run_cli, env, "dense")[0] == ANSWER
    assert _search(run_cli, env, "lexical")[0] != ANSWER

    searched = _search(run_cli, env, "hybrid")[0]

    recall = _recall_at_1(run_cli, env, tmp_path)
    assert recall["dense"] == 1.0
    assert recall["lexical"] == 0.0
    # A Korean question gets the Korean dense weight in both, so both find the answer.
    assert searched == ANSWER
    assert recall["hybrid"] == 1.0


def test_eval_keeps_the_relevance_floor_search_keeps(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    # No passage is that similar to the question: dense search finds nothing relevant.
    env = {"DATABASE_URL": fresh_database.url, **SETTINGS, "DESKBOT_SEARCH_MIN_SIMILARITY": "0.99"}
    _ingest(run_cli, env, tmp_path)
    assert _search(run_cli, env, "dense") == []
    hybrid_top = _search(run_cli, env, "hybrid")[0]

    recall = _recall_at_1(run_cli, env, tmp_path)
    assert recall["dense"] == 0.0
    assert recall["hybrid"] == (1.0 if hybrid_top == ANSWER else 0.0)


def test_each_embedder_has_its_own_relevance_floor(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    # MiniLM's cosines run far below e5's: at e5's floor (0.80) its dense side found nothing.
    env = {"DATABASE_URL": fresh_database.url, "DESKBOT_EMBEDDER": "minilm-int8"}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "laptops.txt").write_text(
        "Staff request replacement notebooks through the IT helpdesk portal.\n", encoding="utf-8"
    )
    (corpus / "lunch.txt").write_text(
        "The cafeteria serves lunch from noon until two.\n", encoding="utf-8"
    )
    assert run_cli("ingest", str(corpus), "--collection", "guide", env=env).code == 0

    def dense(**extra: str) -> list[str]:
        question = "How do I get a new laptop?"  # no word in common with either file
        found = run_cli("search", question, "--mode", "dense", "--json", env={**env, **extra})
        assert found.code == 0, found.stderr
        return [str(hit["citation"]["title"]) for hit in json.loads(found.stdout)]

    assert dense() == ["laptops"]  # 0.48 clears MiniLM's 0.20; lunch (0.08) does not
    assert dense(DESKBOT_SEARCH_MIN_SIMILARITY="0.80") == []  # a set floor still rules


def test_eval_measures_search_before_a_deferred_ingests_fill(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    # Before the fill only the passages a search finds by their words get a vector: the
    # decoy shares the question's words and is embedded on demand; this answer shares none
    # (not even the bigram 에서), so it waits for the fill a real ingest runs and
    # ``--deferred`` leaves out.
    env = {"DATABASE_URL": fresh_database.url, **SETTINGS}
    passages = {**PASSAGES, ANSWER: "반려견 먹이와 간식은 동물병원 옆 펫숍이 판매한다."}
    dataset = tmp_path / "korquad.json"
    dataset.write_text(json.dumps(_korquad(passages), ensure_ascii=False), encoding="utf-8")

    def recall(*flags: str) -> float:
        evaluated = run_cli(
            "eval", "retrieval", "--format", "korquad", str(dataset), "--mode", "hybrid",
            *flags, "--json", env=env,
        )  # fmt: skip
        assert evaluated.code == 0, evaluated.stderr
        return float(json.loads(evaluated.stdout)["hybrid"]["recall@1"])

    assert recall("--deferred") == 0.0
    assert recall() == 1.0  # stored with its vectors
