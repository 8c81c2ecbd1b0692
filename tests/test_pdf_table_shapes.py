"""PDF tables as papers and reports draw them, read with the right header over every value.

Academic tables rule only their top, header and bottom (no vertical lines); reports align
columns with whitespace alone; header cells span the columns of their sub-headers; the row
labels' column often has no header. Each table is checked as a user meets it: the stored
row text (``Header: value``) and the chunk a question naming the header would find. Prose
laid out in columns, or as a list, stays prose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.chunking import chunk_document, serialize_row
from knowledge.documents import ParsedDocument, Table
from knowledge.parsing import parse_file
from tests.test_parsing import make_pdf, rule, text

pytestmark = pytest.mark.unit

RIGHT = 430.0  # where the test tables' rules end


def _tables(doc: ParsedDocument) -> list[Table]:
    return [block.table for block in doc.blocks if block.table is not None]


def _rows(path: Path) -> list[str]:
    """Every table row as it is stored and embedded: ``Header: value | ...``."""
    return [
        serialize_row(table.headers, row)
        for table in _tables(parse_file(path))
        for row in table.rows
    ]


def _chunk_lines_with(path: Path, *words: str) -> list[str]:
    """The chunk lines holding every one of ``words``: what a lexical search would match."""
    chunks = chunk_document(parse_file(path), lambda value: len(value.split()) + 2)
    lines = [line for chunk in chunks for line in chunk.content.splitlines()]
    return [line for line in lines if all(word in line for word in words)]


def _pdf(tmp_path: Path, name: str, ops: list[str]) -> Path:
    path = tmp_path / name
    path.write_bytes(make_pdf([ops]))
    return path


def _line(y: float, cells: list[tuple[float, str]]) -> list[str]:
    return [text(x, y, value, 10) for x, value in cells]


MODELS = [
    ("BERT", "0.91", "0.87", "0.89"),
    ("RoBERTa", "0.93", "0.88", "0.90"),
    ("GPT-2", "0.85", "0.80", "0.82"),
    ("T5", "0.90", "0.86", "0.88"),
]
COLUMNS = [76.0, 190.0, 270.0, 350.0]


def _body(top: float) -> list[str]:
    ops: list[str] = []
    for index, cells in enumerate(MODELS):
        ops += _line(top - 14 * index, list(zip(COLUMNS, cells, strict=True)))
    return ops


PROSE_ABOVE = text(72, 780, "We compare four models on the held-out test set.", 11)
PROSE_BELOW = text(72, 560, "All models were trained for three epochs.", 11)


def test_a_table_ruled_only_above_below_and_under_its_headers_is_a_table(
    tmp_path: Path,
) -> None:
    ops = [PROSE_ABOVE, text(72, 740, "Table 2: Scores of each model", 10)]
    ops += [rule(72, 730, RIGHT, 730), rule(72, 706, RIGHT, 706), rule(72, 640, RIGHT, 640)]
    ops += _line(714, [(76, "Model"), (190, "Precision"), (270, "Recall"), (350, "F1")])
    ops += [*_body(692), PROSE_BELOW]
    path = _pdf(tmp_path, "academic.pdf", ops)
    (table,) = _tables(parse_file(path))
    assert table.caption == "Table 2: Scores of each model"
    assert _rows(path) == [
        f"Model: {m} | Precision: {p} | Recall: {r} | F1: {f}" for m, p, r, f in MODELS
    ]
    assert _chunk_lines_with(path, "RoBERTa", "Recall: 0.88")
    prose = [block.text for block in parse_file(path).blocks if block.kind == "text"]
    assert not any("0.87" in paragraph for paragraph in prose)  # no scrambled figures


def test_a_caption_set_over_two_lines_names_the_table(tmp_path: Path) -> None:
    ops = [PROSE_ABOVE, text(72, 752, "Table 4", 10)]
    ops.append(text(72, 740, "Precision and recall of the four models on the test set.", 10))
    ops += [rule(72, 730, RIGHT, 730), rule(72, 706, RIGHT, 706), rule(72, 640, RIGHT, 640)]
    ops += _line(714, [(76, "Model"), (190, "Precision"), (270, "Recall"), (350, "F1")])
    doc = parse_file(_pdf(tmp_path, "caption.pdf", [*ops, *_body(692)]))
    (table,) = _tables(doc)
    assert table.caption == "Table 4 Precision and recall of the four models on the test set."
    prose = [block.text for block in doc.blocks if block.kind == "text"]
    assert prose == ["We compare four models on the held-out test set."]  # caption not twice


def test_a_spanning_header_over_sub_headers_leads_each_of_their_names(tmp_path: Path) -> None:
    ops = [PROSE_ABOVE, rule(72, 730, RIGHT, 730), rule(72, 692, RIGHT, 692)]
    ops += _line(718, [(262, "Scores")])
    ops.append(rule(186, 712, RIGHT, 712))  # the short rule under the spanning header
    ops += _line(700, [(76, "Model"), (190, "Precision"), (270, "Recall"), (350, "F1")])
    ops += [*_body(678), rule(72, 626, RIGHT, 626), PROSE_BELOW]
    path = _pdf(tmp_path, "spanning.pdf", ops)
    assert _rows(path)[0] == (
        "Model: BERT | Scores Precision: 0.91 | Scores Recall: 0.87 | Scores F1: 0.89"
    )
    assert _chunk_lines_with(path, "GPT-2", "Scores Recall: 0.80")


def _ruled(
    horizontal: list[tuple[float, float, float]], vertical: list[tuple[float, float, float]]
) -> list[str]:
    return [rule(x0, y, x1, y) for x0, x1, y in horizontal] + [
        rule(x, y0, x, y1) for x, y0, y1 in vertical
    ]


def test_a_ruled_header_cell_spanning_two_columns_names_both(tmp_path: Path) -> None:
    # "Results" spans Accuracy and Time; Category and Participants span both header rows.
    edges = [72.0, 192.0, 272.0, 372.0, 472.0]
    horizontal = [(72, 472, 760), (272, 472, 740), (72, 472, 720)]
    horizontal += [(72, 472, 700), (72, 472, 680), (72, 472, 660)]
    vertical = [(x, 760, 660) for x in edges if x != 372] + [(372, 740, 660)]
    ops = _ruled(horizontal, vertical)
    ops += _line(736, [(76, "Category"), (196, "Participants")])
    ops += _line(746, [(276, "Results")])
    ops += _line(726, [(276, "Accuracy"), (376, "Time")])
    rows = [("Blind", "5", "34.5%", "1199 sec"), ("Low Vision", "5", "98.3%", "1716 sec")]
    rows += [("Dexterity", "5", "98.3%", "1672 sec")]
    for index, cells in enumerate(rows):
        ops += _line(706 - 20 * index, list(zip([76, 196, 276, 376], cells, strict=True)))
    path = _pdf(tmp_path, "spanning-ruled.pdf", ops)
    assert _rows(path)[1] == (
        "Category: Low Vision | Participants: 5 | Results Accuracy: 98.3% | Results Time: 1716 sec"
    )


def test_a_header_ruled_finer_than_the_body_lands_over_its_value(tmp_path: Path) -> None:
    # The header row has rules the body rows do not: "Count" sits in a narrow cell inside
    # the span of each body row's value cell.
    horizontal = [(72, 412, 760 - 20 * i) for i in range(5)]
    vertical = [(x, 760, 680) for x in (72.0, 192.0, 312.0, 412.0)]
    vertical += [(x, 760, 740) for x in (212.0, 292.0)]
    ops = _ruled(horizontal, vertical)
    ops += _line(746, [(76, "Answer"), (216, "Count"), (316, "%")])
    for index, cells in enumerate([("Yes", "190", "79%"), ("No", "34", "14%"), ("Total", "242")]):
        ops += _line(726 - 20 * index, list(zip([76, 196, 316], cells, strict=False)))
    path = _pdf(tmp_path, "finer-header.pdf", ops)
    assert _rows(path) == [
        "Answer: Yes | Count: 190 | %: 79%",
        "Answer: No | Count: 34 | %: 14%",
        "Answer: Total | Count: 242",
    ]


def test_the_row_labels_column_without_a_header_needs_no_name(tmp_path: Path) -> None:
    horizontal = [(72, 372, 760 - 20 * i) for i in range(4)]
    vertical = [(x, 760, 700) for x in (72.0, 172.0, 272.0, 372.0)]
    ops = _ruled(horizontal, vertical)
    ops += _line(746, [(176, "Permits"), (276, "Handgun")])
    ops += _line(726, [(76, "Alabama"), (176, "71,137"), (276, "26,945")])
    ops += _line(706, [(76, "Alaska"), (176, "1,090"), (276, "3,480")])
    path = _pdf(tmp_path, "labels.pdf", ops)
    assert _rows(path) == [
        "Alabama | Permits: 71,137 | Handgun: 26,945",
        "Alaska | Permits: 1,090 | Handgun: 3,480",
    ]
    assert _chunk_lines_with(path, "Alaska", "Handgun: 3,480")


def test_a_table_aligned_by_whitespace_alone_is_a_table(tmp_path: Path) -> None:
    ops = [PROSE_ABOVE, text(72, 740, "Table 3: Rainfall by station", 10)]
    ops += _line(720, [(76, "Station"), (190, "Rainfall"), (270, "Days"), (350, "Snow")])
    stations = [("Oslo", "763", "142", "41"), ("Bergen", "2250", "231", "12")]
    stations += [("Tromso", "1031", "193", "96"), ("Alta", "413", "121", "58")]
    for index, cells in enumerate(stations):
        ops += _line(704 - 14 * index, list(zip(COLUMNS, cells, strict=True)))
    path = _pdf(tmp_path, "whitespace.pdf", [*ops, PROSE_BELOW])
    assert _rows(path) == [
        f"Station: {s} | Rainfall: {r} | Days: {d} | Snow: {n}" for s, r, d, n in stations
    ]
    assert _chunk_lines_with(path, "Bergen", "Rainfall: 2250")


LEFT_COLUMN = [
    "The committee met twice this year",
    "to review the budget and the plan",
    "for the new library on Main Street.",
    "It approved 3 of the 5 proposals",
    "and asked for 2 more studies on",
    "costs, traffic and the 12 parking",
    "spaces the site would lose in 2025.",
]
RIGHT_COLUMN = [
    "Members asked the city to publish",
    "the 4 reports before the vote and",
    "to hold 2 public hearings in June.",
    "The mayor agreed to 1 hearing and",
    "promised a second one if 300 or",
    "more residents sign the petition",
    "before the end of the 3rd quarter.",
]


def test_two_columns_of_prose_between_rules_stay_prose(tmp_path: Path) -> None:
    ops = [text(72, 790, "City Council Newsletter", 14), rule(72, 780, 520, 780)]
    ops.append(rule(72, 770, 520, 770))
    for index, (left, right) in enumerate(zip(LEFT_COLUMN, RIGHT_COLUMN, strict=True)):
        ops += _line(750 - 14 * index, [(72, left), (310, right)])
    ops.append(rule(72, 640, 520, 640))
    doc = parse_file(_pdf(tmp_path, "columns.pdf", ops))
    assert _tables(doc) == []
    assert "It approved 3 of the 5 proposals" in doc.text


def test_a_numbered_list_stays_prose(tmp_path: Path) -> None:
    items = ["Install the package", "Run the setup wizard", "Add 2 users", "Restart in 5 min"]
    ops = [text(72, 790, "Steps", 12), rule(72, 780, 420, 780), rule(72, 776, 420, 776)]
    for index, item in enumerate(items, 1):
        ops += _line(760 - 14 * index, [(76, f"{index}."), (100, item)])
    ops.append(rule(72, 680, 420, 680))
    doc = parse_file(_pdf(tmp_path, "list.pdf", ops))
    assert _tables(doc) == []
    assert "Add 2 users" in doc.text
