"""The demo data writers: what ``deskbot demo`` ingests, queries and charts on first run."""

from __future__ import annotations

import csv
import itertools
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.demo_data import (
    DEMO_QUESTIONS,
    DEMO_STOCK_END,
    write_demo_corpus,
    write_demo_database,
    write_demo_stocks,
)
from knowledge.documents import ParsedDocument, Table
from knowledge.parsing import parse_file

pytestmark = pytest.mark.unit

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ParsedDocument]:
    paths = write_demo_corpus(tmp_path_factory.mktemp("corpus"))
    return {path.name: parse_file(path) for path in paths}


def tables(doc: ParsedDocument) -> list[Table]:
    return [block.table for block in doc.blocks if block.table is not None]


# --- corpus -----------------------------------------------------------------------------


def test_corpus_has_korean_and_english_markdown_html_and_a_pdf(
    corpus: dict[str, ParsedDocument],
) -> None:
    mime_types = sorted(doc.mime_type for doc in corpus.values())
    assert mime_types.count("text/markdown") == 5
    assert mime_types.count("text/html") == 2
    assert mime_types.count("application/pdf") == 1
    korean = [doc for doc in corpus.values() if HANGUL.search(doc.text)]
    assert len(korean) == 4  # three Markdown pages and the office guide
    assert all(doc.title and not doc.title.endswith((".md", ".pdf")) for doc in corpus.values())


def test_korean_markdown_reads_as_korean(corpus: dict[str, ParsedDocument]) -> None:
    leave = corpus["hr-leave-policy-ko.md"]
    assert leave.title == "한빛로보틱스 휴가 정책"
    assert "매년 1월 1일에 연차 15일이 부여됩니다" in leave.text
    (special_leave,) = tables(leave)
    assert special_leave.headers == ["구분", "유급 휴가 일수", "증빙 서류"]
    assert ["배우자 출산", "20일", "출생증명서"] in special_leave.rows


def test_pdf_travel_table_comes_out_whole(corpus: dict[str, ParsedDocument]) -> None:
    pdf = corpus["travel-policy-2026.pdf"]
    (table,) = tables(pdf)
    assert table.headers == ["Region", "Daily allowance (USD)", "Hotel cap (USD)", "Approval"]
    assert table.caption == "2026 travel allowance by region"
    assert len(table.rows) == 7
    assert table.rows[0] == ["Tokyo, Japan", "120", "220", "Team lead"]
    assert table.rows[-1] == ["Other regions", "100", "150", "CFO"]
    assert "SkyDesk Travel" in pdf.text
    assert pdf.title == "Hanbit Robotics 2026 Travel Policy"


def test_html_office_guide_table_and_prose(corpus: dict[str, ParsedDocument]) -> None:
    office = corpus["seoul-office-guide-ko.html"]
    (floors,) = tables(office)
    assert floors.headers == ["층", "시설", "비고"]
    assert ["3층", "IT 헬프데스크, 전산실", "노트북 수령과 수리"] in floors.rows
    assert "extension 1234" in corpus["employee-faq.html"].text


@pytest.mark.parametrize(
    ("fact", "where"),
    [
        ("연차 15일", "hr-leave-policy-ko.md"),
        ("주 2일까지 재택근무", "remote-work-guide-ko.md"),
        ("1인 1회 12,000원", "expense-rules-ko.md"),
        ("vpn.hanbit-robotics.example", "it-security-vpn.md"),
        ("Safety training", "onboarding-guide.md"),
        ("extension 1234", "employee-faq.html"),
        ("IT 헬프데스크", "seoul-office-guide-ko.html"),
        ("Hotel cap", "travel-policy-2026.pdf"),
    ],
)
def test_each_answer_lives_in_one_file(
    corpus: dict[str, ParsedDocument], fact: str, where: str
) -> None:
    assert [name for name, doc in corpus.items() if fact in doc.text] == [where]


def test_corpus_is_small_enough_to_embed_quickly(tmp_path: Path) -> None:
    paths = write_demo_corpus(tmp_path)
    assert 8_000 < sum(path.stat().st_size for path in paths) < 25_000


def test_corpus_bytes_are_the_same_every_run(tmp_path: Path) -> None:
    first = write_demo_corpus(tmp_path / "a")
    second = write_demo_corpus(tmp_path / "b")
    assert [path.name for path in first] == [path.name for path in second]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    assert all(path.parent == tmp_path / "a" for path in first)


# --- database ---------------------------------------------------------------------------

TABLES = {"departments", "employees", "projects", "project_assignments", "expenses"}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    path = write_demo_database(tmp_path / "demo" / "company.sqlite")
    with closing(sqlite3.connect(path)) as connection:
        yield connection


def test_database_has_the_tables_with_rows(database: sqlite3.Connection) -> None:
    names = {
        row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert names == TABLES
    for table in TABLES:
        (count,) = database.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert 5 <= count <= 60, table


def test_database_foreign_keys_are_declared_and_hold(database: sqlite3.Connection) -> None:
    referenced = {
        row[2] for table in TABLES for row in database.execute(f"PRAGMA foreign_key_list({table})")
    }
    assert referenced == {"departments", "employees", "projects"}
    assert database.execute("PRAGMA foreign_key_check").fetchall() == []


def test_database_join_answers_who_works_on_a_project(database: sqlite3.Connection) -> None:
    rows = database.execute(
        """
        SELECT e.name_ko, e.name_en, d.name_en, a.role
        FROM project_assignments a
        JOIN projects p ON p.id = a.project_id
        JOIN employees e ON e.id = a.employee_id
        JOIN departments d ON d.id = e.department_id
        WHERE p.code = 'ZTVPN'
        ORDER BY a.allocation_pct DESC, e.id
        """
    ).fetchall()
    assert rows == [
        ("에밀리 카터", "Emily Carter", "IT", "security"),
        ("윤재원", "Yoon Jae-won", "IT", "tech lead"),
        ("장수빈", "Jang Su-bin", "IT", "engineer"),
    ]


def test_database_expenses_follow_the_expense_rules(database: sqlite3.Connection) -> None:
    statuses = {row[0] for row in database.execute("SELECT DISTINCT status FROM expenses")}
    assert statuses <= {"submitted", "approved", "rejected", "paid"}
    assert "submitted" in statuses
    (over_meal_cap,) = database.execute(
        "SELECT count(*) FROM expenses WHERE category = 'meal' AND amount_krw > 12000"
    ).fetchone()
    assert over_meal_cap == 0
    (first, last) = database.execute(
        "SELECT min(expense_date), max(expense_date) FROM expenses"
    ).fetchone()
    assert "2026-07-01" <= first <= last <= "2026-11-27"


def test_database_replaces_an_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "company.sqlite"
    path.write_bytes(b"not a database")
    assert write_demo_database(path) == path
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT count(*) FROM departments").fetchone() == (7,)
    assert [item.name for item in tmp_path.iterdir()] == ["company.sqlite"]  # no temp file left


def test_database_bytes_are_the_same_every_run(tmp_path: Path) -> None:
    first = write_demo_database(tmp_path / "a.sqlite")
    second = write_demo_database(tmp_path / "b.sqlite")
    assert first.read_bytes() == second.read_bytes()


# --- stocks -----------------------------------------------------------------------------

HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
PRICE = re.compile(r"^\d+\.\d{2}$")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == HEADER
        return list(reader)


def test_stock_files_are_named_by_ticker_with_a_readme(tmp_path: Path) -> None:
    paths = write_demo_stocks(tmp_path)
    csvs = [path for path in paths if path.suffix == ".csv"]
    assert 3 <= len(csvs) <= 4
    assert "HNBT.csv" in {path.name for path in csvs}
    assert all(re.fullmatch(r"[A-Z0-9.-]{1,15}", path.stem) for path in csvs)
    readme = tmp_path / "README.txt"
    assert readme in paths
    assert "synthetic" in readme.read_text(encoding="utf-8").lower()


def test_stock_prices_are_consistent(tmp_path: Path) -> None:
    for path in write_demo_stocks(tmp_path)[:-1]:
        for row in read_rows(path):
            assert all(PRICE.match(row[key]) for key in HEADER[1:6]), row
            low, high = float(row["Low"]), float(row["High"])
            assert 0 < low <= min(float(row["Open"]), float(row["Close"])), row
            assert max(float(row["Open"]), float(row["Close"])) <= high, row
            assert row["Adj Close"] == row["Close"]
            assert int(row["Volume"]) >= 0


def test_stock_dates_are_two_years_of_business_days(tmp_path: Path) -> None:
    for path in write_demo_stocks(tmp_path)[:-1]:
        days = [date.fromisoformat(row["Date"]) for row in read_rows(path)]
        assert days[-1] == DEMO_STOCK_END == date(2026, 11, 27)
        assert days[0] == date(2024, 11, 28)
        assert all(day.weekday() < 5 for day in days)
        assert all(
            later - earlier in (timedelta(days=1), timedelta(days=3))
            for earlier, later in itertools.pairwise(days)
        )


def test_stock_bytes_are_the_same_every_run(tmp_path: Path) -> None:
    first = write_demo_stocks(tmp_path / "a")
    second = write_demo_stocks(tmp_path / "b")
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    assert len({path.read_bytes() for path in first}) == len(first)  # tickers differ


def test_demo_questions_are_in_both_languages() -> None:
    assert 6 <= len(DEMO_QUESTIONS) <= 8
    korean = [question for question in DEMO_QUESTIONS if HANGUL.search(question)]
    assert 0 < len(korean) < len(DEMO_QUESTIONS)
