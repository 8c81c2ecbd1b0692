"""Knowledge commands through the front door: ingest, search, docs, eval."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
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


def _write_corpus(folder: Path) -> None:
    folder.mkdir()
    (folder / "handbook.md").write_text(
        "# 휴가\n\n연차 휴가는 입사 1년 후 15일이 주어집니다.\n\n"
        "# Expenses\n\nExpenses are reimbursed monthly after manager approval.\n\n"
        "| Item | Limit |\n| --- | --- |\n| Hotel | 150,000원 |\n| Meals | 40,000원 |\n"
    )
    (folder / "notes.txt").write_text("회사 노트북은 반드시 디스크를 암호화해야 합니다.\n")
    (folder / "permits.csv").write_text('State,Permits\nAlabama,"71,137"\nAlaska,"1,979"\n')
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "program.exe").write_bytes(b"MZ\x90\x00")
    hidden = folder / ".git"
    hidden.mkdir()
    (hidden / "config").write_text("ignored")


def test_ingest_search_show_delete(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    corpus = tmp_path / "corpus"
    _write_corpus(corpus)

    first = run_cli("ingest", str(corpus), "--collection", "handbook", "--json", env=env)
    assert first.code == 1, first.stderr  # some files were refused
    results = {Path(r["path"]).name: r for r in json.loads(first.stdout)}
    assert set(results) == {
        "handbook.md",
        "notes.txt",
        "permits.csv",
        "empty.txt",
        "latin1.txt",
        "program.exe",
    }
    assert {name for name, r in results.items() if r["status"] == "stored"} == {
        "handbook.md",
        "notes.txt",
        "permits.csv",
    }
    assert results["empty.txt"]["detail"] == "empty file (0 bytes)"
    assert "UTF-8" in results["latin1.txt"]["detail"]
    assert "unsupported file type .exe" in results["program.exe"]["detail"]
    assert [results[n]["reason"] for n in ("empty.txt", "latin1.txt", "program.exe")] == [
        "empty",
        "not_text",
        "unsupported",
    ]
    assert results["handbook.md"]["tables"] == 1
    assert results["permits.csv"]["tables"] == 1

    again = run_cli("ingest", str(corpus / "handbook.md"), "--collection", "handbook", env=env)
    assert again.code == 0, again.stderr
    assert "0 stored, 1 unchanged, 0 refused" in again.stdout

    table_hit = run_cli("search", "Alabama permits", "--json", env=env)
    found = json.loads(table_hit.stdout)
    assert any("State: Alabama | Permits: 71,137" in r["content"] for r in found)
    korean = json.loads(run_cli("search", "노트북 암호화", "--json", "-k", "1", env=env).stdout)
    assert korean[0]["citation"]["title"] == "notes"
    shown = run_cli("search", "노트북 암호화", "-k", "1", env=env).stdout.splitlines()
    assert shown[0].startswith(f"[1] notes · {corpus / 'notes.txt'}  (handbook, ")

    (corpus / "notes.txt").write_text(
        "회사 노트북은 반드시 디스크를 암호화해야 합니다.\n\nVPN 필수.\n"
    )
    changed = run_cli("ingest", str(corpus / "notes.txt"), "-c", "handbook", "--json", env=env)
    [notes] = json.loads(changed.stdout)
    assert (notes["status"], notes["version"]) == ("stored", 2)

    listed = json.loads(run_cli("docs", "list", "--json", env=env).stdout)
    assert len(listed) == 3
    tables = {Path(d["source"]).name: d["tables"] for d in listed}
    assert tables["handbook.md"] == 1  # chunk metadata (the table part) was stored
    doc_id = next(d["id"] for d in listed if d["title"] == "notes")
    shown = json.loads(run_cli("docs", "show", doc_id, "--chunks", "--json", env=env).stdout)
    assert shown["version"] == 2
    assert "VPN" in " ".join(c["content"] for c in shown["chunks_list"])
    deleted = run_cli("docs", "delete", doc_id, env=env)
    assert deleted.code == 0
    assert len(json.loads(run_cli("docs", "list", "--json", env=env).stdout)) == 2


def test_ingest_summary_counts_refusals_by_reason(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "guide.md").write_text("# Guide\n\nBadges open every door on weekdays.\n")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")

    result = run_cli("ingest", str(folder), "-c", "mixed", env={"DATABASE_URL": fresh_database.url})

    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary == "1 stored, 0 unchanged, 3 refused (2 unsupported, 1 empty)"


def test_a_parser_past_its_timeout_is_stopped(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    doc = tmp_path / "slow.md"
    doc.write_text("# Title\n\nSome text.\n")
    result = run_cli(
        "ingest",
        str(doc),
        "-c",
        "c",
        "--json",
        env={"DATABASE_URL": fresh_database.url, "DESKBOT_PARSE_TIMEOUT": "0.001"},
    )
    assert result.code == 1
    [refused] = json.loads(result.stdout)
    assert refused["detail"] == "parsing took longer than 0.001 s and was stopped"
    assert refused["reason"] == "timeout"


def test_a_folder_full_of_unsupported_files_is_one_row_of_the_ingest_table() -> None:
    from rich.console import Console

    from bot.cli.knowledge import _results_table
    from knowledge.ingest import FileResult

    def refused(name: str) -> FileResult:
        suffix = Path(name).suffix or "(no extension)"
        detail = f"unsupported file type {suffix}"
        return FileResult(name, "refused", reason="unsupported", detail=detail)

    kept = [FileResult("docs/handbook.md", "stored", chunks=4, version=1)]
    kept.append(
        FileResult("docs/empty.txt", "refused", reason="empty", detail="empty file (0 bytes)")
    )
    junk = [refused(f"docs/img/{n}.png") for n in range(1200)] + [refused("docs/a.exe")] * 3
    console = Console(record=True, width=200)
    console.print(_results_table(kept + junk))
    shown = console.export_text()
    assert "handbook.md" in shown and "empty file (0 bytes)" in shown
    assert "1,203 other files" in shown
    assert "unsupported file types: .png 1,200, .exe 3" in shown
    assert "17.png" not in shown

    few = Console(record=True, width=200)
    few.print(_results_table(kept + junk[:2]))
    assert "0.png" in few.export_text() and "other files" not in few.export_text()


def test_reindex_missing_embeds_only_what_a_failed_fill_left(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "hotel.txt").write_text("Hotel stays are paid up to 180 dollars a night.\n")
    (corpus / "leave.txt").write_text("연차 휴가는 입사 첫해에 15일이 주어진다.\n")
    assert run_cli("ingest", str(corpus), "-c", "handbook", env=env).code == 0
    # As a fill that failed halfway leaves it: one document's chunks without a vector.
    waiting = "SELECT count(*) FROM chunks WHERE embedding IS NULL"
    with psycopg.connect(fresh_database.url, autocommit=True) as conn:
        assert conn.execute(waiting).fetchone() == (0,)
        conn.execute(
            "UPDATE chunks SET embedding = NULL, embedding_dim = NULL WHERE document_id IN "
            "(SELECT id FROM documents WHERE title = 'leave')"
        )
        left = conn.execute(waiting).fetchone()
    assert left is not None and left[0] > 0

    def waiting_listed() -> int:
        listed = run_cli("collections", "list", "--json", env=env)
        return int(json.loads(listed.stdout)[0]["waiting_for_vectors"])

    assert waiting_listed() == left[0]
    filled = run_cli("reindex", "handbook", "--missing", env=env)
    assert filled.code == 0, filled.stderr
    assert f"embedded {left[0]} chunks of handbook with e5-int8" in filled.stdout
    with psycopg.connect(fresh_database.url) as conn:
        assert conn.execute(waiting).fetchone() == (0,)
    assert waiting_listed() == 0
    found = run_cli("search", "휴가 일수", "--mode", "dense", "--json", env=env)
    assert json.loads(found.stdout)[0]["citation"]["title"] == "leave"

    unknown = run_cli("reindex", "nope", "--missing", env=env)
    assert unknown.code != 0 and len(unknown.stderr.strip().splitlines()) == 1
