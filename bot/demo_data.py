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

import csv
import math
import os
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fpdf import FPDF

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

DEMO_STOCK_END = date(2026, 11, 27)
"""The last trading day in the demo stock files (a Friday)."""

# --- corpus -----------------------------------------------------------------------------

_LEAVE_POLICY_KO = """\
# 한빛로보틱스 휴가 정책

> 데모용 가상 회사 "한빛로보틱스"의 예시 규정입니다. 실제 회사와 관계없습니다. \
시행일: 2026년 1월 1일. 담당: 인사팀.

연차 유급휴가는 다음과 같이 부여됩니다.

- 입사 1년 미만: 한 달 개근할 때마다 1일씩, 최대 11일이 발생합니다.
- 입사 1년 이상: 매년 1월 1일에 연차 15일이 부여됩니다.
- 근속 3년차부터 2년마다 1일씩 더해지며, 최대 25일까지 부여됩니다.
- 쓰지 못한 연차는 5일까지 다음 해 3월 31일까지 이월할 수 있고, 나머지는 연차수당으로 정산합니다.
- 반차(4시간)와 반반차(2시간) 단위로도 쓸 수 있습니다.

## 휴가 신청 방법

1. 인사 포털 "한빛피플"에 로그인합니다.
2. [근태] > [휴가 신청]에서 휴가 종류와 날짜를 고릅니다.
3. 3일 이상 이어지는 휴가는 5영업일 전까지, 그 밖의 휴가는 1영업일 전까지 신청합니다.
4. 팀장이 승인하면 팀 캘린더에 자동으로 등록됩니다.

## 병가와 경조사 휴가

유급 병가는 연 5일입니다. 3일 이상 이어서 쓰면 진단서를 제출합니다. \
유급 병가를 모두 쓴 뒤에는 연차를 먼저 쓰고, 그다음 최대 60일의 무급 병가를 신청할 수 있습니다.

경조사 휴가와 특별 휴가는 아래 일수만큼 유급으로 주어지며, 증빙 서류는 휴가를 마친 뒤 \
7일 안에 한빛피플에 올립니다.

| 구분 | 유급 휴가 일수 | 증빙 서류 |
|---|---|---|
| 본인 결혼 | 5일 | 청첩장 |
| 자녀 결혼 | 1일 | 청첩장 |
| 배우자 출산 | 20일 | 출생증명서 |
| 부모 또는 배우자 사망 | 5일 | 부고 또는 사망진단서 |
| 조부모 또는 형제자매 사망 | 3일 | 부고 |
| 리프레시 휴가 (근속 5년마다) | 10일 | 없음 |
"""

_REMOTE_WORK_KO = """\
# 재택근무 가이드

> 데모용 가상 회사 한빛로보틱스의 문서입니다.

- 수습 기간(입사 후 3개월)을 마친 정규직 직원은 주 2일까지 재택근무를 할 수 있습니다.
- 부산 공장의 생산 인력과 판교 연구소의 시험장 담당자는 업무 특성상 대상이 아닙니다.
- 매주 수요일은 "팀 데이"로, 모든 직원이 사무실로 출근합니다.

## 근무 시간

코어타임은 오전 10시부터 오후 4시까지이며, 이 시간에는 메신저와 전화에 바로 응답해야 합니다. \
하루 근무 시간은 사무실 근무와 같은 8시간이고, 시작과 종료를 한빛피플의 [출퇴근 기록]에 남깁니다.

## 재택근무 신청 절차

1. 전 주 금요일 오후 5시까지 한빛피플에서 재택근무 일정을 등록합니다.
2. 팀장이 승인하면 확정됩니다. 당일에 바꿀 때는 먼저 팀장에게 메신저로 알립니다.

## 장비와 지원금

- 회사 노트북과 모니터 1대를 집으로 가져갈 수 있습니다. 한빛피플에서 IT 자산 반출을 신청하세요.
- 재택근무 통신비로 매월 3만 원이 급여와 함께 지급됩니다.
- 사내 시스템은 반드시 VPN에 접속한 뒤 씁니다. 설정 방법은 IT 보안 가이드에 있습니다.
"""

_EXPENSE_RULES_KO = """\
# 경비 처리 규정

> 데모용 가상 회사 한빛로보틱스의 문서입니다.

- 업무 비용은 법인카드로 결제하는 것이 원칙입니다. \
개인 카드로 결제했다면 사용일로부터 30일 안에 정산을 신청합니다.
- 모든 경비는 재무 시스템 "한빛페이"에 영수증 사진과 함께 등록합니다.
- 승인된 경비는 다음 달 급여와 함께 지급됩니다.
- 해외 출장(travel)의 일비와 숙박비 한도는 별도 문서 "2026 Travel Policy"(PDF)를 따릅니다.

## 항목별 한도

항목별 한도와 승인자는 아래 표와 같습니다. 50만 원을 넘는 접대비는 사전에 CFO 승인을 받아야 합니다.

| 항목 | 한도 | 승인자 |
|---|---|---|
| 야근 식대 (meal) | 오후 8시 이후, 1인 1회 12,000원 | 팀장 |
| 택시비 (taxi) | 오후 10시 이후 귀가 시 실비 | 팀장 |
| 고객 접대비 (entertainment) | 1회 50만 원 | 본부장 |
| 도서·교육비 (education) | 1인 연 100만 원 | 팀장 |
| 소프트웨어 구독 (software) | 1인 월 5만 원 | IT팀 |

## 처리 상태

한빛페이의 경비 상태는 submitted(제출), approved(승인), rejected(반려), paid(지급) 네 가지입니다. \
반려된 경비는 사유를 확인한 뒤 7일 안에 다시 제출할 수 있습니다.
"""

_ONBOARDING_EN = """\
# Onboarding Guide for New Hires

> Hanbit Robotics is a fictional company; this guide is demo content for deskbot.

Welcome to Hanbit Robotics! This page walks you through your first week.

- Two days before you start, you receive your company email address \
(firstname.lastname@hanbit-robotics.example) and a temporary password by text message.
- Bring your ID card and a copy of your bank account details for payroll.

## Day 1 schedule

Your first day runs from 09:30 to 17:00. Wear comfortable shoes: the safety training includes \
a walk through the robot test area.

| Time | Activity | Where |
|---|---|---|
| 09:30 | Welcome and badge photo | Reception desk |
| 10:00 | Company introduction by the People team | Meeting room Hangang |
| 11:30 | Laptop pickup and account setup | IT help desk |
| 12:30 | Lunch with your team and your buddy | Cafeteria |
| 14:00 | Safety training (mandatory, 90 minutes) | Meeting room Hangang |
| 16:00 | One-to-one with your manager | Your team area |

## Your buddy

Every new hire is paired with a buddy from a neighbouring team for the first 30 days. \
Your buddy's name is in your welcome email. Meet at least once a week; lunch with your buddy \
is covered up to KRW 20,000 per person, twice a month.

## First-week checklist

1. Set up multi-factor authentication and the VPN (see "IT Security and VPN Setup").
2. Finish the "Information Security Basics" e-learning in HanbitPeople by Friday.
3. Register your bank account for payroll in HanbitPeople.
4. Join the #general, #help-it and #announcements channels.
5. Book a 30-minute coffee chat with your department head.
"""

_IT_SECURITY_EN = """\
# IT Security and VPN Setup

> Demo content for the fictional company Hanbit Robotics.

- Passwords have at least 14 characters and must be changed every 180 days.
- Multi-factor authentication (MFA) with the Hanbit Authenticator app is mandatory for email, \
HanbitPeople, HanbitPay and the VPN.
- Never share one-time codes: the IT team will never ask for them.
- Laptop screens lock automatically after 5 minutes without input.

## How to set up the VPN

The VPN client is called HanbitConnect. You need it to reach internal systems from home or \
while travelling.

1. Open Software Center on your company laptop and install HanbitConnect 4.2.
2. Start HanbitConnect and enter the server address `vpn.hanbit-robotics.example`.
3. Sign in with your company email address and password.
4. Approve the push notification in the Hanbit Authenticator app.
5. When the shield icon in the menu bar turns green, you are connected.

If step 4 fails, check that your phone sets its clock automatically and try again. \
The VPN disconnects after 12 hours; reconnect with steps 3 to 5.

## Devices and incidents

- Only company-managed laptops can connect to the VPN. Personal devices can use webmail only.
- USB storage devices are blocked; share files through the company drive.
- Report a lost laptop or phone, or a suspicious email, within 1 hour: write to \
security@hanbit-robotics.example or press "Report phishing" in your mail client.
"""

_FAQ_EN_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Hanbit Robotics Employee FAQ</title></head>
<body>
<h1>Employee FAQ: pay and benefits</h1>
<p><em>Hanbit Robotics is a fictional company. This FAQ is demo content for deskbot.</em></p>
<p><strong>When is payday?</strong> Salaries are paid on the 25th of each month. When the 25th
is a weekend or public holiday, pay arrives on the business day before.</p>
<p><strong>Is there an annual health check-up?</strong> Yes. Every employee gets one check-up a
year at a partner hospital, paid by the company up to KRW 500,000. Book it in HanbitPeople
under Benefits.</p>
<p><strong>Who answers questions about benefits?</strong> Email people@hanbit-robotics.example.
The People team replies within 2 business days.</p>
<h2>Employee FAQ: IT and visitors</h2>
<p><strong>How do I contact the IT help desk?</strong> Call extension 1234, post in the #help-it
channel or email helpdesk@hanbit-robotics.example. The help desk is staffed on weekdays from
08:30 to 18:30.</p>
<p><strong>Which Wi-Fi network do I use?</strong> Employees use <code>HANBIT-CORP</code> and sign
in with their company account. Visitors use <code>HANBIT-GUEST</code>; its password changes
every Monday and is posted at reception.</p>
<p><strong>Can I bring a visitor?</strong> Register visitors in HanbitPeople by 17:00 on the day
before the visit. A host must accompany visitors at all times.</p>
</body>
</html>
"""

_OFFICE_GUIDE_KO_HTML = """\
<!DOCTYPE html>
<html lang="ko">
<head><meta charset="utf-8"><title>한빛로보틱스 서울 본사 오피스 안내</title></head>
<body>
<h1>서울 본사 오피스 안내</h1>
<p>데모용 가상 회사 한빛로보틱스의 문서입니다. 건물 이름도 가상입니다.
서울 본사는 한빛타워 1층부터 7층까지 씁니다. 층별 시설은 아래 표와 같습니다.</p>
<table>
<caption>한빛타워 층별 안내</caption>
<thead><tr><th>층</th><th>시설</th><th>비고</th></tr></thead>
<tbody>
<tr><td>1층</td><td>로비, 안내데스크, 카페 한빛라운지</td><td>카페 08:00-17:00</td></tr>
<tr><td>2층</td><td>구내식당</td><td>점심 11:30-13:30</td></tr>
<tr><td>3층</td><td>IT 헬프데스크, 전산실</td><td>노트북 수령과 수리</td></tr>
<tr><td>4층</td><td>인사팀, 재무팀, 총무</td><td>사원증 발급</td></tr>
<tr><td>5층</td><td>대회의실 한강, 회의실 북한산·남산</td><td>외부 손님 회의</td></tr>
<tr><td>6층</td><td>소프트웨어팀</td><td>-</td></tr>
<tr><td>7층</td><td>영업팀, 임원실</td><td>출입 권한 필요</td></tr>
</tbody>
</table>
<h2>회의실 예약</h2>
<p>회의실은 사내 캘린더에서 예약합니다. 한 번에 최대 2시간, 4주 앞까지 예약할 수 있습니다.
예약 시작 후 10분 안에 회의실 태블릿에서 체크인하지 않으면 예약이 자동으로 취소됩니다.</p>
<h2>주차와 사원증</h2>
<p>주차장은 지하 2층과 3층입니다. 직원 정기 주차는 월 5만 원이며 4층 총무에 신청합니다.
방문객은 안내데스크에서 2시간 무료 주차권을 받을 수 있습니다.</p>
<p>사원증을 잃어버리면 바로 총무(내선 2200)에 알리세요. 재발급 비용은 1만 원입니다.</p>
</body>
</html>
"""

# The PDF uses fpdf2's core Helvetica font, which covers Latin-1 only: no Korean font ships
# with this project or the machines it runs on, so the PDF is English (and ASCII) throughout.
_TRAVEL_TITLE = "Hanbit Robotics 2026 Travel Policy"
_TRAVEL_INTRO = [
    "This policy applies to all employees travelling abroad on company business from "
    "1 January 2026. Hanbit Robotics is a fictional company; this document is demo content "
    "for deskbot.",
    "Book flights and hotels through SkyDesk Travel, the company travel agency, at least "
    "14 days before departure. Economy class is standard. Business class is allowed for "
    "flights longer than 8 hours, with the department head's approval.",
    "The daily allowance covers meals, local transport and incidentals, and is paid in USD "
    "for each calendar day abroad. Hotels are reimbursed at cost, up to the hotel cap per "
    "night in the table below. The approver named in the table approves the trip in "
    "HanbitPay before anything is booked.",
]
_TRAVEL_CAPTION = "2026 travel allowance by region"
_TRAVEL_TABLE = [
    ["Region", "Daily allowance (USD)", "Hotel cap (USD)", "Approval"],
    ["Tokyo, Japan", "120", "220", "Team lead"],
    ["Osaka, Japan", "110", "180", "Team lead"],
    ["Shanghai, China", "100", "170", "Team lead"],
    ["Singapore", "130", "240", "Department head"],
    ["Frankfurt, Germany", "140", "230", "Department head"],
    ["San Francisco, USA", "160", "320", "Department head"],
    ["Other regions", "100", "150", "CFO"],
]
_TRAVEL_OUTRO = [
    "Submit the travel expense report in HanbitPay within 14 days of your return, with hotel "
    "invoices and boarding passes attached. Return any unused advance with the report.",
    "Questions about this policy go to travel@hanbit-robotics.example.",
]

_TEXT_FILES = {
    "hr-leave-policy-ko.md": _LEAVE_POLICY_KO,
    "remote-work-guide-ko.md": _REMOTE_WORK_KO,
    "expense-rules-ko.md": _EXPENSE_RULES_KO,
    "onboarding-guide.md": _ONBOARDING_EN,
    "it-security-vpn.md": _IT_SECURITY_EN,
    "employee-faq.html": _FAQ_EN_HTML,
    "seoul-office-guide-ko.html": _OFFICE_GUIDE_KO_HTML,
}
_PDF_NAME = "travel-policy-2026.pdf"


def write_demo_corpus(folder: Path) -> list[Path]:
    """Write the demo knowledge base (Markdown, HTML and one PDF) into ``folder``.

    Existing files of the same names are overwritten; other files are left alone.

    Args:
        folder: Where to write; created if missing.

    Returns:
        The files written, in a fixed order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, text in _TEXT_FILES.items():
        path = folder / name
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    pdf_path = folder / _PDF_NAME
    pdf_path.write_bytes(_travel_policy_pdf())
    paths.append(pdf_path)
    return paths


def _travel_policy_pdf() -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))  # same bytes on every run
    pdf.set_title(_TRAVEL_TITLE)
    pdf.set_author("Hanbit Robotics (fictional)")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.multi_cell(0, 10, _TRAVEL_TITLE, new_x="LMARGIN", new_y="NEXT")
    _paragraphs(pdf, _TRAVEL_INTRO)
    pdf.set_font("Helvetica", style="B", size=11)
    pdf.multi_cell(0, 8, _TRAVEL_CAPTION, new_x="LMARGIN", new_y="NEXT")
    _ruled_table(pdf, _TRAVEL_TABLE)
    pdf.ln(6)
    _paragraphs(pdf, _TRAVEL_OUTRO)
    return bytes(pdf.output())


def _paragraphs(pdf: FPDF, paragraphs: list[str]) -> None:
    pdf.set_font("Helvetica", size=11)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)


def _ruled_table(pdf: FPDF, rows: list[list[str]]) -> None:
    """Every cell bordered: pdfplumber finds tables from their ruling lines."""
    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(50, 40, 35, 45),
        borders_layout="ALL",
        first_row_as_headings=True,
        line_height=7,
    ) as table:
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)


# --- database ---------------------------------------------------------------------------

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


# --- stocks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ticker:
    """A synthetic stock: starting price, daily drift and volatility, typical volume."""

    symbol: str
    name: str
    seed: int
    start: float
    drift: float
    volatility: float
    volume: int


_TICKERS = [
    _Ticker("HNBT", "Hanbit Robotics (fictional)", 1001, 52.40, 0.0007, 0.021, 850_000),
    _Ticker("DSKB", "Deskbot Systems (fictional)", 1002, 18.75, 0.0002, 0.032, 2_400_000),
    _Ticker("KRBT", "Korea Robot Parts (fictional)", 1003, 7.30, -0.0003, 0.027, 5_100_000),
    _Ticker("DEMO-IDX", "Demo robotics index (fictional)", 1004, 1000.00, 0.0003, 0.009, 0),
]
_STOCK_HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
_STOCK_README = """\
Synthetic demo data: these prices are NOT real market data.

Every ticker here belongs to a fictional company or index made up for the deskbot demo.
The daily prices are a seeded geometric random walk over business days (Monday to Friday,
holidays ignored) from {first} to {last}; Adj Close equals Close (no dividends or splits).

{tickers}
"""


def write_demo_stocks(folder: Path) -> list[Path]:
    """Write Yahoo-style daily price files ``TICKER.csv`` and a README.txt into ``folder``.

    Each CSV has the header ``Date,Open,High,Low,Close,Adj Close,Volume`` and one row per
    business day for two years ending on :data:`DEMO_STOCK_END`.

    Args:
        folder: Where to write; created if missing.

    Returns:
        The CSV files, one per ticker, then the README.
    """
    folder.mkdir(parents=True, exist_ok=True)
    days = _business_days(DEMO_STOCK_END.replace(year=DEMO_STOCK_END.year - 2), DEMO_STOCK_END)
    paths = [_write_ticker(folder, ticker, days) for ticker in _TICKERS]
    readme = folder / "README.txt"
    tickers = "\n".join(f"{ticker.symbol}: {ticker.name}" for ticker in _TICKERS)
    text = _STOCK_README.format(first=days[0], last=days[-1], tickers=tickers)
    readme.write_bytes(text.encode("utf-8"))
    return [*paths, readme]


def _business_days(after: date, last: date) -> list[date]:
    """Monday-to-Friday dates in ``(after, last]``."""
    days = [after + timedelta(days=offset) for offset in range(1, (last - after).days + 1)]
    return [day for day in days if day.weekday() < 5]


def _write_ticker(folder: Path, ticker: _Ticker, days: list[date]) -> Path:
    path = folder / f"{ticker.symbol}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_STOCK_HEADER)
        writer.writerows(_price_rows(ticker, days))
    return path


def _price_rows(ticker: _Ticker, days: list[date]) -> Iterator[list[str]]:
    rng = random.Random(ticker.seed)  # noqa: S311 - reproducible sample data, not secrets
    close = ticker.start
    for day in days:
        open_ = _cents(close * math.exp(rng.gauss(0.0, ticker.volatility * 0.3)))
        move = rng.gauss(ticker.drift, ticker.volatility)
        close = _cents(open_ * math.exp(move))
        high = _cents(max(open_, close) * (1 + abs(rng.gauss(0.0, ticker.volatility * 0.5))))
        low = _cents(min(open_, close) * (1 - abs(rng.gauss(0.0, ticker.volatility * 0.5))))
        # Rounding may not move high below, or low above, the open and close.
        high, low = max(high, open_, close), max(0.01, min(low, open_, close))
        volume = round(ticker.volume * (1 + 12 * abs(move)) * math.exp(rng.gauss(0.0, 0.3)))
        cells = [f"{value:.2f}" for value in (open_, high, low, close, close)]
        yield [day.isoformat(), *cells, str(volume)]


def _cents(value: float) -> float:
    return max(0.01, round(value, 2))
