"""Sample data for ``deskbot demo``: a fictional company's documents, database and stock prices.

Everything here describes *Hanbit Robotics* (한빛로보틱스), a company that does not exist.
The writers are deterministic: the same call writes the same bytes, so re-ingesting the
corpus on a later run finds every file unchanged.

- :func:`write_demo_corpus`: Korean and English Markdown, two HTML pages and one PDF with a
  ruled table; each fact a demo question asks about lives in exactly one file.
- :func:`write_demo_database`: a SQLite file (departments, employees, projects,
  project_assignments, expenses) with foreign keys.
- :func:`write_demo_stocks`: Yahoo-style daily CSV files of synthetic prices.
"""

from __future__ import annotations

from bot.demo_data._corpus import write_demo_corpus
from bot.demo_data._database import write_demo_database
from bot.demo_data._stocks import DEMO_STOCK_END, write_demo_stocks

__all__ = [
    "DEMO_QUESTIONS",
    "DEMO_STOCK_END",
    "write_demo_corpus",
    "write_demo_database",
    "write_demo_stocks",
]

DEMO_QUESTIONS: list[str] = [
    "연차는 며칠이야?",
    "재택근무는 일주일에 며칠까지 할 수 있어?",
    "What is the hotel cap in Tokyo?",
    "How do I set up the VPN?",
    "IT 헬프데스크는 몇 층에 있어?",
    "How many employees does each department have?",
    "2026년 10월에 제출(submitted) 상태로 남아 있는 경비의 합계는 얼마야?",
    "What was the closing price of HNBT on 2026-11-27?",
]
"""Example questions answerable from the demo corpus, database and stock files."""
