"""Knowledge commands through the front door: ingest, search, docs, eval."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, FreshDatabase

pytestmark = pytest.mark.e2e

Run = Callable[..., CliResult]

KORQUAD = {
    "version": "KorQuAD_v1.0_dev",
    "data": [
        {
            "title": "휴가_제도",
            "paragraphs": [
                {
                    "context": "연차 휴가는 입사 1년 후 15일이 주어지며 다음 해로 이월되지 않는다.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "연차 휴가는 며칠이 주어지나?",
                            "answers": [{"text": "15일", "answer_start": 14}],
                        }
                    ],
                },
                {
                    "context": "출장비는 영수증을 첨부하면 매월 말에 정산된다.",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "출장비는 언제 정산되나?",
                            "answers": [{"text": "매월 말", "answer_start": 15}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "보안",
            "paragraphs": [
                {
                    "context": "회사 노트북의 디스크는 반드시 암호화해야 하며 VPN으로만 접속한다.",
                    "qas": [
                        {
                            "id": "q3",
                            "question": "노트북 디스크는 어떻게 해야 하나?",
                            "answers": [{"text": "암호화", "answer_start": 18}],
                        }
                    ],
                }
            ],
        },
    ],
}


def test_eval_retrieval_prints_every_metric_per_mode(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    dataset = tmp_path / "korquad.json"
    dataset.write_text(json.dumps(KORQUAD, ensure_ascii=False))
    result = run_cli(
        "eval",
        "retrieval",
        "--format",
        "korquad",
        str(dataset),
        "--json",
        env={"DATABASE_URL": fresh_database.url},
    )
    assert result.code == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores) == {"hybrid", "dense", "lexical"}
    for metrics in scores.values():
        assert set(metrics) == {"ndcg@10", "map", "mrr", "recall@1", "recall@5", "recall@10"}
    assert scores["lexical"]["recall@1"] == 1.0
    assert scores["hybrid"]["recall@1"] == 1.0
    # The throwaway collection is gone afterwards.
    listed = run_cli("docs", "list", "--json", env={"DATABASE_URL": fresh_database.url})
    assert json.loads(listed.stdout) == []


def test_eval_retrieval_bad_dataset_is_one_line(run_cli: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run_cli("eval", "retrieval", "--format", "korquad", str(broken))
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_search_on_an_empty_database_finds_nothing(
    run_cli: Run, fresh_database: FreshDatabase
) -> None:
    result = run_cli("search", "연차", env={"DATABASE_URL": fresh_database.url})
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "Nothing relevant found."


def test_unknown_collection_and_document(run_cli: Run, fresh_database: FreshDatabase) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    missing = run_cli("search", "x", "--collection", "nope", env=env)
    assert missing.code == 1
    assert missing.stderr.strip() == "deskbot: no collection named 'nope'"
    gone = run_cli("docs", "show", "00000000-0000-0000-0000-000000000000", env=env)
    assert gone.code == 1
    assert "no document with id" in gone.stderr
    bad = run_cli("docs", "delete", "not-a-uuid", env=env)
    assert bad.code == 2
