"""Rules drawn on a PDF page (horizontal edges joined into rules, stacks of them) and the
caption line above a table.
"""

from __future__ import annotations

import re
from typing import Any

from pdfplumber.page import Page as PlumberPage

from knowledge._tables import normalize_cell

__all__ = ["WORD_GAP", "Rule", "caption_above", "horizontal_rules", "rule_stacks", "side_rules"]

# Ems between two glyphs that start a new word. pdfplumber's default, 3 points, joins the
# words of small type ("Table1", "concentration(g)"); a fifth of the type's size does not.
WORD_GAP = 0.2
# A horizontal rule: its left and right ends and its height on the page (from the top).
Rule = tuple[float, float, float]

_CAPTION_PREFIX = re.compile(r"^(table|tab\.)\s+\w|^<?(표|表)", re.IGNORECASE)
# Points: how far above a table a caption line may sit, and tolerances for joining rules.
_CAPTION_REACH = 24.0
_RULE_TOLERANCE = 3.0
_MAX_ROW_GAP = 120.0
_MAX_CAPTION = 200


def side_rules(page: PlumberPage) -> list[dict[str, Any]]:
    """Vertical rules at both ends of stacked horizontal rules of the same extent.

    Many tables have horizontal rules and inner column rules but no outer left and right
    borders; pdfplumber's line strategy needs the borders to close the cells.
    """
    rules: list[dict[str, Any]] = []
    for stack in rule_stacks(horizontal_rules(page)):
        top, bottom = stack[0][2], stack[-1][2]
        x0 = min(rule[0] for rule in stack)
        x1 = max(rule[1] for rule in stack)
        for x in (x0, x1):
            rules.append(
                {
                    "object_type": "line",
                    "x0": x,
                    "x1": x,
                    "top": top,
                    "bottom": bottom,
                    "width": 0.0,
                    "height": bottom - top,
                }
            )
    return rules


def horizontal_rules(page: PlumberPage) -> list[Rule]:
    """Horizontal edges as ``(x0, x1, y)``, with touching segments of one row joined."""
    edges = sorted(
        (float(edge["top"]), float(edge["x0"]), float(edge["x1"]))
        for edge in page.horizontal_edges
        if float(edge["width"]) >= 10
    )
    joined: list[tuple[float, float, float]] = []
    for y, x0, x1 in edges:
        if joined:
            last_x0, last_x1, last_y = joined[-1]
            near_row = abs(last_y - y) <= _RULE_TOLERANCE
            if near_row and x0 <= last_x1 + _RULE_TOLERANCE:
                joined[-1] = (last_x0, max(last_x1, x1), last_y)
                continue
        joined.append((x0, x1, y))
    return joined


def rule_stacks(rules: list[Rule], *, max_gap: float = _MAX_ROW_GAP) -> list[list[Rule]]:
    """Groups of three or more rules with the same ends, each at most ``max_gap`` points
    below the previous (a row's height, by default)."""
    stacks: list[list[Rule]] = []
    for rule in sorted(rules, key=lambda item: item[2]):
        for stack in stacks:
            last = stack[-1]
            same_ends = (
                abs(last[0] - rule[0]) <= _RULE_TOLERANCE
                and abs(last[1] - rule[1]) <= _RULE_TOLERANCE
            )
            if same_ends and 0 < rule[2] - last[2] <= max_gap:
                stack.append(rule)
                break
        else:
            stacks.append([rule])
    return [stack for stack in stacks if len(stack) >= 3]


def caption_above(page: PlumberPage, bbox: tuple[float, float, float, float]) -> str | None:
    """The line right above the table if it reads like a title ("Table 3 ...", "표 2", short),
    or that line and the one above it when the upper one starts "Table 3" (papers set the
    label on a line of its own over the description)."""
    top = bbox[1]
    lines = _lines_above(page, bbox, 2 * _CAPTION_REACH)
    near = [line for line in lines if line["top"] >= top - _CAPTION_REACH]
    if not near:
        return None
    text = normalize_cell(str(near[-1]["text"]))
    if _looks_like_caption(text):
        return text
    label = normalize_cell(str(lines[-2]["text"])) if len(lines) >= 2 else ""
    if label and _CAPTION_PREFIX.match(label) and len(label) + len(text) < _MAX_CAPTION:
        return f"{label} {text}"
    return None


def _lines_above(
    page: PlumberPage, bbox: tuple[float, float, float, float], reach: float
) -> list[dict[str, Any]]:
    x0, top, x1, _ = bbox
    left, right = max(page.bbox[0], x0 - 20), min(page.bbox[2], x1 + 20)
    upper = max(page.bbox[1], top - reach)
    if top - upper < 1 or right - left < 1:
        return []
    lines: list[dict[str, Any]] = page.within_bbox((left, upper, right, top)).extract_text_lines(
        strip=True, x_tolerance_ratio=WORD_GAP
    )
    return lines


def _looks_like_caption(text: str) -> bool:
    if not text or not any(char.isalpha() for char in text):
        return False
    if _CAPTION_PREFIX.match(text):
        return True
    return len(text) <= 60 and len(text.split()) <= 10 and not text.endswith((".", ","))
