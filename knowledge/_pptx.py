"""PowerPoint decks (``.pptx``) with python-pptx: slides in order, each slide a page.

A slide's title is a heading (``Slide N`` when it has none), so every passage of the slide
cites it; its other shapes follow top to bottom, left to right (a group's shapes in their
place), tables as tables with the first row as headers, then the speaker notes. Pictures,
charts and media carry no text here.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from knowledge._packages import open_package
from knowledge._tables import grid_blocks, text_block
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["read_pptx"]


def read_pptx(path: Path) -> tuple[list[Block], str | None, int]:
    """The deck's blocks (each with its slide number as page), title and slide count."""
    from lxml.etree import XMLSyntaxError
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    with open_package(path, "PPTX", old_format=".ppt"):
        pass
    try:
        deck = Presentation(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise ParseError(f"corrupt or truncated PPTX: {type(exc).__name__}") from None
    except XMLSyntaxError as exc:
        raise ParseError(f"corrupt PPTX: malformed XML ({exc})") from None
    blocks: list[Block] = []
    for number, slide in enumerate(deck.slides, 1):
        blocks.extend(_on_page(block, number) for block in _slide(slide, number))
    return blocks, deck.core_properties.title, len(deck.slides)


def _on_page(block: Block, page: int) -> Block:
    table = replace(block.table, page=page) if block.table is not None else None
    return replace(block, page=page, table=table)


def _slide(slide: Any, number: int) -> Iterator[Block]:
    title_shape = slide.shapes.title
    title = _text(title_shape) if title_shape is not None else ""
    yield Block(kind="heading", text=" ".join(title.split()) or f"Slide {number}")
    others = [shape for shape in slide.shapes if title_shape is None or shape != title_shape]
    for shape in _reading_order(others):
        yield from _shape(shape)
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = frame.text.strip() if frame is not None else ""
        if notes:
            yield text_block(f"Speaker notes: {notes}")


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    return sorted(shapes, key=lambda shape: (shape.top or 0, shape.left or 0))


def _shape(shape: Any) -> Iterator[Block]:
    if getattr(shape, "shapes", None) is not None:  # a group
        for inner in _reading_order(shape.shapes):
            yield from _shape(inner)
    elif getattr(shape, "has_table", False):
        grid: list[list[str | None]] = [
            [cell.text for cell in row.cells] for row in shape.table.rows
        ]
        yield from grid_blocks(grid, header_rows=1, caption=None)
    elif getattr(shape, "has_text_frame", False):
        text = _text(shape)
        if text.strip():
            yield text_block(text)


def _text(shape: Any) -> str:
    """The shape's paragraphs, one per line (a bullet list stays a list)."""
    if not getattr(shape, "has_text_frame", False):
        return ""
    lines = (paragraph.text.strip() for paragraph in shape.text_frame.paragraphs)
    return "\n".join(line for line in lines if line)
