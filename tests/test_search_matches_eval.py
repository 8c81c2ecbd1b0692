"""What users get is what is measured: ``deskbot search`` and ``deskbot eval retrieval``
rank a Korean question the same way, with the Korean dense weight.

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


def _korquad() -> dict[str, object]:
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
            for title, text in PASSAGES.items()
        ],
    }


def _top_title(run_cli: Run, env: dict[str, str], mode: str) -> str:
    result = run_cli("search", QUESTION, "--mode", mode, "-k", "1", "--json", env=env)
    assert result.code == 0, result.stderr
    [top] = json.loads(result.stdout)
    return str(top["citation"]["title"])


def test_search_and_eval_rank_a_korean_question_alike(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url, **SETTINGS}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for title, text in PASSAGES.items():
        (corpus / f"{title}.txt").write_text(text + "\n", encoding="utf-8")
    ingested = run_cli("ingest", str(corpus), "--collection", "guide", env=env)
    assert ingested.code == 0, ingested.stderr
    # The retrievers disagree, so the fusion weight decides the hybrid top hit.
    assert _top_title(run_cli, env, "dense") == ANSWER
    assert _top_title(run_cli, env, "lexical") != ANSWER

    searched = _top_title(run_cli, env, "hybrid")

    dataset = tmp_path / "korquad.json"
    dataset.write_text(json.dumps(_korquad(), ensure_ascii=False), encoding="utf-8")
    evaluated = run_cli("eval", "retrieval", "--format", "korquad", str(dataset), "--json", env=env)
    assert evaluated.code == 0, evaluated.stderr
    recall = {mode: m["recall@1"] for mode, m in json.loads(evaluated.stdout).items()}
    assert recall["dense"] == 1.0
    assert recall["lexical"] == 0.0
    # A Korean question gets the Korean dense weight in both, so both find the answer.
    assert searched == ANSWER
    assert recall["hybrid"] == 1.0
