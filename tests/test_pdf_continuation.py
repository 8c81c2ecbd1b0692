"""A table printed over several pages keeps its headers and caption on every page."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge._pdf import continue_tables
from knowledge._tables import table_block, text_block
from knowledge.chunking import serialize_row
from knowledge.documents import Block, Table
from knowledge.parsing import parse_file
from tests.test_parsing import grid, make_pdf, rule, text

pytestmark = pytest.mark.unit

HEADERS = ["Notice Date", "Company", "City", "Employees"]
PAGE_1 = [
    ["06/22/2015", "Maxim Integrated", "San Jose", "150"],
    ["06/30/2015", "McGraw-Hill", "Monterey", "137"],
]
PAGE_2 = [
    ["07/17/2015", "Boeing Company", "Long Beach", "113"],
    ["07/21/2015", "Safeway", "Oakland", "63"],
]
WIDTHS = [90.0, 120.0, 90.0, 70.0]


def _tables(blocks: list[Block]) -> list[Table]:
    return [block.table for block in blocks if block.table is not None]


def test_a_table_carried_over_to_the_next_page_reads_with_the_first_pages_headers(
    tmp_path: Path,
) -> None:
    pdf = tmp_path / "warn.pdf"
    pdf.write_bytes(
        make_pdf(
            [
                [
                    text(72, 768, "Table 4: WARN notices"),
                    *grid(72, 760, WIDTHS, [HEADERS, *PAGE_1]),
                ],
                grid(72, 780, WIDTHS, PAGE_2),
            ]
        )
    )
    first, second = _tables(parse_file(pdf).blocks)
    assert first.headers == HEADERS and first.rows == PAGE_1
    assert second.page == 2
    assert second.headers == HEADERS
    assert second.rows == PAGE_2  # the first row is data, not the headers
    assert second.caption == first.caption == "Table 4: WARN notices"
    row = serialize_row(second.headers, second.rows[0])
    assert (
        row
        == "Notice Date: 07/17/2015 | Company: Boeing Company | City: Long Beach | Employees: 113"
    )


def _block(table: Table) -> Block:
    return table_block(table)


FIRST = Table(headers=HEADERS, rows=PAGE_1, caption="WARN notices", page=1)


def _next(rows: list[list[str]], *, page: int = 2) -> Table:
    return Table(headers=rows[0], rows=rows[1:], page=page)


def test_the_carried_over_table_is_rendered_again_with_its_headers() -> None:
    blocks = continue_tables(
        [_block(FIRST), text_block("Page 1 of 2", page=1), _block(_next(PAGE_2))]
    )
    assert blocks[1].text == "Page 1 of 2"
    assert blocks[2].text.startswith("WARN notices\n| Notice Date | Company | City | Employees |")
    assert "| 07/17/2015 | Boeing Company |" in blocks[2].text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # A repeated header row is a header.
        (FIRST, Table(headers=HEADERS, rows=PAGE_2, page=2)),
        # Not the next page.
        (FIRST, _next(PAGE_2, page=3)),
        # Other columns.
        (FIRST, Table(headers=["Date", "Company"], rows=[["07/21/2015", "Safeway"]], page=2)),
        # Headers with digits where the rows have them ("2023 | 2024"): nothing to tell them apart.
        (
            Table(headers=["Region", "2023", "2024"], rows=[["Seoul", "1,200", "1,350"]], page=1),
            Table(headers=["Busan", "850", "910"], rows=[["Daegu", "430", "470"]], page=2),
        ),
        # The previous table has no header row either (figures in its "headers").
        (
            Table(
                headers=["Stage I", "Under 2 cm"], rows=[["Stage 2", "Spread to 4 nodes"]], page=1
            ),
            Table(headers=["Grade 1", "Under 10 mitoses"], rows=[["Grade 2", "10 to 19"]], page=2),
        ),
        # All text: a new table's headers and a carried-over row look alike.
        (
            Table(headers=["Term", "Meaning"], rows=[["VPN", "private network"]], page=1),
            Table(headers=["Benefit", "Rule"], rows=[["Travel", "economy class"]], page=2),
        ),
    ],
)
def test_a_new_table_on_the_next_page_keeps_its_own_headers(before: Table, after: Table) -> None:
    assert _tables(continue_tables([_block(before), _block(after)])) == [before, after]


def test_only_the_first_table_of_a_page_can_continue_the_previous_page() -> None:
    other = Table(headers=["Code", "Name", "Town", "Staff"], rows=[["A1", "x", "y", "1"]], page=2)
    carried = _next(PAGE_2)
    tables = _tables(continue_tables([_block(FIRST), _block(other), _block(carried)]))
    assert tables == [FIRST, other, carried]


def test_a_table_over_three_pages_reads_with_the_headers_on_each() -> None:
    third = _next(
        [
            ["08/03/2015", "Owens-Brockway", "Oakland", "202"],
            ["08/20/2015", "XOMA", "Berkeley", "39"],
        ],
        page=3,
    )
    tables = _tables(continue_tables([_block(FIRST), _block(_next(PAGE_2)), _block(third)]))
    assert [t.headers for t in tables] == [HEADERS] * 3
    assert [len(t.rows) for t in tables] == [2, 2, 2]
    assert [t.page for t in tables] == [1, 2, 3]


def _ruled_only_around(rows: list[list[str]], widths: list[float]) -> list[str]:
    """Rules above and below the header and under the last row, column rules: the body's
    rows are not ruled apart (a statistics table's style)."""
    x, top, line = 72.0, 760.0, 13.0
    header_bottom = top - 20
    bottom = header_bottom - line * (len(rows) - 1) - 6
    edges = [x + sum(widths[:i]) for i in range(len(widths) + 1)]
    ops = [rule(x, y, edges[-1], y) for y in (top, header_bottom, bottom)]
    ops += [rule(edge, top, edge, bottom) for edge in edges]
    for c, cell in enumerate(rows[0]):
        ops.append(text(edges[c] + 4, top - 14, cell, 10))
    for r, row in enumerate(rows[1:]):
        for c, cell in enumerate(row):
            ops.append(text(edges[c] + 4, header_bottom - 11 - line * r, cell, 10))
    return ops


def test_rows_not_ruled_apart_are_read_as_rows(tmp_path: Path) -> None:
    rows = [
        ["Fiscal year", "Passengers", "y.o.y (%)"],
        ["FY2013", "7,723,293", "102.6"],
        ["FY2014", "7,793,704", "100.9"],
        ["FY2015", "7,901,115", "101.4"],
    ]
    pdf = tmp_path / "traffic.pdf"
    pdf.write_bytes(make_pdf([_ruled_only_around(rows, [90.0, 90.0, 70.0])]))
    [table] = _tables(parse_file(pdf).blocks)
    assert table.headers == rows[0]
    assert table.rows == rows[1:]
    assert serialize_row(table.headers, table.rows[1]) == (
        "Fiscal year: FY2014 | Passengers: 7,793,704 | y.o.y (%): 100.9"
    )


def test_cells_that_wrap_unevenly_stay_one_row(tmp_path: Path) -> None:
    rows = [
        ["Item", "Rule", "Limit"],
        ["Hotel", "Booked through", "150,000"],
        ["", "the travel desk", ""],
    ]
    pdf = tmp_path / "policy.pdf"
    pdf.write_bytes(make_pdf([_ruled_only_around(rows, [90.0, 120.0, 70.0])]))
    [table] = _tables(parse_file(pdf).blocks)
    assert table.rows == [["Hotel", "Booked through the travel desk", "150,000"]]


def test_a_header_band_without_column_rules_is_spread_over_its_columns(tmp_path: Path) -> None:
    # A statistics table: the header band is ruled above and below, but its grouped columns
    # are ruled apart only in the body; pdfplumber reads the group as one cell.
    edges = [72.0, 172.0, 232.0, 292.0, 352.0]
    top, band, row = 760.0, 30.0, 20.0
    body = [["Alabama", "14", "15", "0"], ["Alaska", "9", "3", "0"]]
    bottom = top - band - row * len(body)
    ops = [rule(72, y, 352, y) for y in (top, top - band)]
    ops += [rule(72, top - band - row * (i + 1), 352, top - band - row * (i + 1)) for i in range(2)]
    ops += [rule(x, top, x, bottom) for x in (72, 172, 352)]
    ops += [rule(x, top - band, x, bottom) for x in (232, 292)]
    ops += [text(76, top - 18, "State", 10), text(240, top - 12, "Pre-Pawn", 10)]
    ops += [
        text(x + 4, top - 25, name, 10)
        for x, name in zip(edges[1:-1], ["Handgun", "Long Gun", "Other"], strict=True)
    ]
    for r, cells in enumerate(body):
        baseline = top - band - row * (r + 1) + 6
        ops += [text(x + 4, baseline, cell, 10) for x, cell in zip(edges, cells, strict=False)]
    pdf = tmp_path / "checks.pdf"
    pdf.write_bytes(make_pdf([ops]))
    [table] = _tables(parse_file(pdf).blocks)
    assert table.headers == ["State", "Pre-Pawn Handgun", "Pre-Pawn Long Gun", "Pre-Pawn Other"]
    assert table.rows == body
    assert serialize_row(table.headers, table.rows[0]).startswith(
        "State: Alabama | Pre-Pawn Handgun: 14 | Pre-Pawn Long Gun: 15"
    )


def test_a_title_over_the_columns_is_not_spread(tmp_path: Path) -> None:
    # One line of words a word space apart, wide enough to lie over every column.
    edges = [72.0, 172.0, 232.0, 292.0, 352.0]
    top, band, row = 760.0, 20.0, 20.0
    body = [["Seoul", "14", "15", "0"], ["Busan", "9", "3", "0"]]
    bottom = top - band - row * len(body)
    ops = [rule(72, top - i * 20, 352, top - i * 20) for i in range(4)]
    ops += [rule(x, top, x, bottom) for x in (72, 352)]
    ops += [rule(x, top - band, x, bottom) for x in edges[1:-1]]
    ops.append(text(76, top - 14, "Branch figures for the third quarter of this year", 10))
    for r, cells in enumerate(body):
        baseline = top - band - row * (r + 1) + 6
        ops += [text(x + 4, baseline, cell, 10) for x, cell in zip(edges, cells, strict=False)]
    pdf = tmp_path / "title.pdf"
    pdf.write_bytes(make_pdf([ops]))
    [table] = _tables(parse_file(pdf).blocks)
    assert table.caption == "Branch figures for the third quarter of this year"
