"""Characters of a PDF page, as pdfplumber gives them: boxes, cell text, words and lines.

Shared by the ruled-table reader (:mod:`knowledge._pdf_tables`) and the reader of tables
whose columns are aligned by whitespace (:mod:`knowledge._pdf_aligned`).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import pairwise
from typing import Any

from pdfplumber.utils.text import DEFAULT_X_TOLERANCE, DEFAULT_Y_TOLERANCE
from pdfplumber.utils.text import extract_text as pdfplumber_text

__all__ = ["chars_in", "text_of", "without_stray_blanks"]


def chars_in(chars: list[dict[str, Any]], bbox: tuple[float, float, float, float]) -> list[Any]:
    x0, top, x1, bottom = bbox
    return [
        char
        for char in chars
        if x0 <= (char["x0"] + char["x1"]) / 2 < x1
        and top <= (char["top"] + char["bottom"]) / 2 < bottom
    ]


def text_of(chars: list[dict[str, Any]]) -> str:
    return pdfplumber_text(chars) if chars else ""


def without_stray_blanks(chars: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``chars`` (in drawing order) less the blanks another text run laid inside a word.

    Fixed-width report writers pad each field with spaces, and the padding can run on under
    the next field's text (the WARN reports' dates). Sorted left to right, those blanks land
    between a word's glyphs and pdfplumber breaks the word at each one: "0 3 / 2 5 / 2 0 16".
    A blank is dropped only where it falls between two glyphs drawn one right after the other
    that pdfplumber would join (same line, touching), and was itself drawn apart from them: a
    real word space is drawn between its words, and gaps that read as spaces stay spaces.
    """
    # (first glyph's x0, second glyph's x0, line top, first glyph's index) of such pairs
    spans = sorted(
        (a["x0"], b["x0"], a["top"], index)
        for index, (a, b) in enumerate(pairwise(chars))
        if _joined(a, b)
    )
    if not spans or not any(char["text"].isspace() for char in chars):
        return chars
    starts = [span[0] for span in spans]
    longest = max(end - start for start, end, _, _ in spans)

    def stray(index: int, blank: dict[str, Any]) -> bool:
        x, top = blank["x0"], blank["top"]
        near = spans[bisect_left(starts, x - longest) : bisect_left(starts, x)]
        return any(
            start < x < end
            and abs(top - line) <= DEFAULT_Y_TOLERANCE
            and index not in (first - 1, first + 2)  # not the pair's own leading/trailing blank
            for start, end, line, first in near
        )

    return [
        char
        for index, char in enumerate(chars)
        if not (char["text"].isspace() and stray(index, char))
    ]


def _joined(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether pdfplumber keeps glyph ``b`` in the word of glyph ``a`` just before it."""
    return (
        a["upright"]
        and b["upright"]
        and not a["text"].isspace()
        and not b["text"].isspace()
        and abs(a["top"] - b["top"]) <= DEFAULT_Y_TOLERANCE
        and a["x0"] <= b["x0"] <= a["x1"] + DEFAULT_X_TOLERANCE
    )
