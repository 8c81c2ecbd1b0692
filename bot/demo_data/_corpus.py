"""The demo corpus: Korean and English Markdown, two HTML pages, one PDF with a ruled table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

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
