"""The demo company database: departments, employees, projects, assignments, expenses."""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

_SCHEMA = """\
CREATE TABLE departments (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name_ko TEXT NOT NULL,
    name_en TEXT NOT NULL,
    office TEXT NOT NULL
);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name_ko TEXT NOT NULL,
    name_en TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    department_id INTEGER NOT NULL REFERENCES departments (id),
    title TEXT NOT NULL,
    hire_date TEXT NOT NULL,  -- ISO 8601 date
    office TEXT NOT NULL,
    manager_id INTEGER REFERENCES employees (id)
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    department_id INTEGER NOT NULL REFERENCES departments (id),
    status TEXT NOT NULL CHECK (status IN ('planned', 'active', 'completed')),
    start_date TEXT NOT NULL,
    end_date TEXT,
    budget_krw INTEGER NOT NULL
);
CREATE TABLE project_assignments (
    project_id INTEGER NOT NULL REFERENCES projects (id),
    employee_id INTEGER NOT NULL REFERENCES employees (id),
    role TEXT NOT NULL,
    allocation_pct INTEGER NOT NULL CHECK (allocation_pct BETWEEN 1 AND 100),
    PRIMARY KEY (project_id, employee_id)
);
CREATE TABLE expenses (
    id INTEGER PRIMARY KEY,
    expense_date TEXT NOT NULL,  -- ISO 8601 date
    employee_id INTEGER NOT NULL REFERENCES employees (id),
    category TEXT NOT NULL
        CHECK (category IN ('meal', 'taxi', 'entertainment', 'education', 'software', 'travel')),
    amount_krw INTEGER NOT NULL CHECK (amount_krw > 0),
    status TEXT NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'paid')),
    description TEXT NOT NULL
);
"""

_DEPARTMENTS = [
    (1, "PEOPLE", "인사팀", "People", "Seoul HQ"),
    (2, "FIN", "재무팀", "Finance", "Seoul HQ"),
    (3, "IT", "IT팀", "IT", "Seoul HQ"),
    (4, "ROBOT", "로봇개발팀", "Robotics R&D", "Pangyo Lab"),
    (5, "SW", "소프트웨어팀", "Software", "Seoul HQ"),
    (6, "SALES", "영업팀", "Sales", "Seoul HQ"),
    (7, "MFG", "생산팀", "Manufacturing", "Busan Plant"),
]

# id, name_ko, name_en, department_id, title, hire_date, manager_id (office: the department's)
_EMPLOYEES: list[tuple[int, str, str, int, str, str, int | None]] = [
    (1, "김서연", "Kim Seo-yeon", 1, "Head of People", "2016-03-02", None),
    (2, "박지훈", "Park Ji-hoon", 1, "HR Manager", "2019-07-15", 1),
    (3, "이하은", "Lee Ha-eun", 1, "Recruiter", "2023-02-01", 1),
    (4, "정민준", "Jung Min-jun", 2, "CFO", "2015-09-01", None),
    (5, "최유진", "Choi Yu-jin", 2, "Accountant", "2020-04-06", 4),
    (6, "강도윤", "Kang Do-yoon", 2, "Financial Analyst", "2024-01-08", 4),
    (7, "윤재원", "Yoon Jae-won", 3, "IT Lead", "2017-05-22", None),
    (8, "장수빈", "Jang Su-bin", 3, "Systems Engineer", "2021-10-05", 7),
    (9, "에밀리 카터", "Emily Carter", 3, "Security Engineer", "2022-06-13", 7),
    (10, "한지민", "Han Ji-min", 4, "Head of Robotics R&D", "2014-11-03", None),
    (11, "오승현", "Oh Seung-hyun", 4, "Senior Robotics Engineer", "2018-02-19", 10),
    (12, "서예린", "Seo Ye-rin", 4, "Robotics Engineer", "2022-08-01", 10),
    (13, "다니엘 베버", "Daniel Weber", 4, "Mechanical Engineer", "2023-05-15", 10),
    (14, "임태양", "Lim Tae-yang", 4, "Control Engineer", "2025-03-04", 11),
    (15, "송하준", "Song Ha-jun", 5, "Head of Software", "2016-08-16", None),
    (16, "권나연", "Kwon Na-yeon", 5, "Backend Engineer", "2020-01-13", 15),
    (17, "프리야 나이르", "Priya Nair", 5, "ML Engineer", "2021-09-06", 15),
    (18, "배준서", "Bae Jun-seo", 5, "Frontend Engineer", "2024-07-01", 15),
    (19, "조은비", "Jo Eun-bi", 5, "QA Engineer", "2025-09-01", 16),
    (20, "황민서", "Hwang Min-seo", 6, "Head of Sales", "2017-01-09", None),
    (21, "사토 겐지", "Kenji Sato", 6, "Account Manager (Japan)", "2022-04-11", 20),
    (22, "신우진", "Shin Woo-jin", 6, "Account Manager", "2023-10-16", 20),
    (23, "문성호", "Moon Seong-ho", 7, "Plant Manager", "2015-04-01", None),
    (24, "유다인", "Yoo Da-in", 7, "Quality Engineer", "2021-03-02", 23),
    (25, "노현우", "Noh Hyun-woo", 7, "Production Technician", "2024-11-18", 23),
]

_PROJECTS = [
    (1, "ARM7", "HB-Arm 7 collaborative arm", 4, "active", "2025-06-02", None, 1_800_000_000),
    (2, "AMR2", "Warehouse AMR v2", 4, "active", "2025-11-03", None, 950_000_000),
    (3, "FLEET", "Fleet management cloud", 5, "active", "2025-03-10", None, 620_000_000),
    (4, "VISION", "Bin-picking vision", 5, "completed", "2024-09-02", "2025-12-19", 410_000_000),
    (5, "PORTAL", "HR portal upgrade", 3, "completed", "2025-01-06", "2025-08-29", 180_000_000),
    (6, "ZTVPN", "Zero-trust VPN rollout", 3, "active", "2026-02-02", None, 240_000_000),
    (7, "JPDIST", "Japan distributor program", 6, "active", "2026-04-01", None, 300_000_000),
    (8, "LINE3", "Busan assembly line 3", 7, "planned", "2027-01-04", None, 2_500_000_000),
]  # fmt: skip

_ASSIGNMENTS = [
    (1, 10, "sponsor", 20), (1, 11, "tech lead", 80), (1, 13, "engineer", 100),
    (1, 14, "engineer", 60), (1, 24, "quality", 30),
    (2, 11, "engineer", 20), (2, 12, "tech lead", 100), (2, 14, "engineer", 40),
    (2, 16, "engineer", 30),
    (3, 15, "sponsor", 20), (3, 16, "tech lead", 70), (3, 18, "engineer", 100),
    (3, 19, "qa", 60),
    (4, 17, "tech lead", 50), (4, 12, "engineer", 10),
    (5, 7, "sponsor", 20), (5, 8, "engineer", 50), (5, 2, "product owner", 30),
    (6, 7, "tech lead", 50), (6, 8, "engineer", 50), (6, 9, "security", 80),
    (7, 20, "sponsor", 30), (7, 21, "lead", 80), (7, 22, "account manager", 50),
    (7, 5, "finance", 20),
    (8, 23, "lead", 40), (8, 24, "quality", 40), (8, 25, "technician", 30),
    (8, 6, "finance", 20),
]  # fmt: skip

# category: (description, smallest, largest amount in KRW, rounded to 1,000)
_EXPENSE_KINDS = {
    "meal": ("야근 식대", 8_000, 12_000),
    "taxi": ("심야 택시비", 15_000, 42_000),
    "entertainment": ("고객 접대", 120_000, 480_000),
    "education": ("기술 도서 및 온라인 강의", 25_000, 300_000),
    "software": ("소프트웨어 구독", 15_000, 50_000),
    "travel": ("해외 출장 정산", 600_000, 2_400_000),
}
_EXPENSE_COUNT = 48
_EXPENSE_FIRST = date(2026, 7, 1)
_EXPENSE_DAYS = 150  # through 2026-11-27


def write_demo_database(path: Path) -> Path:
    """Write the demo company's SQLite database to ``path``, replacing it atomically.

    Args:
        path: The database file; its folder is created if missing.

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        with closing(sqlite3.connect(temp_name)) as connection:
            _fill_database(connection)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def _fill_database(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA foreign_keys = ON")
    connection.executescript(_SCHEMA)
    offices = {row[0]: row[4] for row in _DEPARTMENTS}
    employees = [
        (id_, ko, en, _email(en), dept, title, hired, offices[dept], manager)
        for id_, ko, en, dept, title, hired, manager in _EMPLOYEES
    ]
    with connection:
        connection.executemany("INSERT INTO departments VALUES (?, ?, ?, ?, ?)", _DEPARTMENTS)
        connection.executemany(
            "INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", employees
        )
        connection.executemany("INSERT INTO projects VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _PROJECTS)
        connection.executemany("INSERT INTO project_assignments VALUES (?, ?, ?, ?)", _ASSIGNMENTS)
        connection.executemany(
            "INSERT INTO expenses VALUES (?, ?, ?, ?, ?, ?, ?)", list(_expenses())
        )


def _email(name_en: str) -> str:
    """``Kim Seo-yeon`` -> ``kim.seoyeon@hanbit-robotics.example`` (a reserved domain)."""
    first, _, rest = name_en.lower().partition(" ")
    last = rest.replace("-", "").replace(" ", "")
    return f"{first}.{last}@hanbit-robotics.example"


def _expenses() -> Iterator[tuple[int, str, int, str, int, str, str]]:
    """Seeded expense claims from July to November 2026, in date order."""
    rng = random.Random(20260701)  # noqa: S311 - reproducible sample data, not secrets
    categories = list(_EXPENSE_KINDS)
    drafts: list[tuple[date, int, str, int]] = []
    for _ in range(_EXPENSE_COUNT):
        day = _EXPENSE_FIRST + timedelta(days=rng.randrange(_EXPENSE_DAYS))
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        category = rng.choices(categories, weights=(6, 4, 2, 2, 2, 2))[0]
        _, low, high = _EXPENSE_KINDS[category]
        amount = rng.randrange(low, high + 1, 1_000)
        drafts.append((day, rng.randrange(1, len(_EMPLOYEES) + 1), category, amount))
    drafts.sort()
    for number, (day, employee, category, amount) in enumerate(drafts, 1):
        status = _expense_status(day, rng)
        description = _EXPENSE_KINDS[category][0]
        yield number, day.isoformat(), employee, category, amount, status, description


def _expense_status(day: date, rng: random.Random) -> str:
    """Older claims are mostly paid; the latest ones are still waiting for approval."""
    if rng.random() < 0.08:
        return "rejected"
    if day < date(2026, 10, 1):
        return "paid"
    if day < date(2026, 11, 1):
        return rng.choice(["approved", "approved", "submitted"])
    return rng.choice(["submitted", "submitted", "approved"])
