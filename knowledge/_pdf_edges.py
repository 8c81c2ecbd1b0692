"""Whether a page's drawn lines can make a ruled table, from PDFium's paths, before pdfplumber.

pdfplumber finds ruled tables from the page's edges alone (the lines, rectangles and curves
it draws); the words come in only once a table is found. Reading the page with pdfplumber
(pdfminer interpreting every character, then pdfplumber's objects) is most of the cost of
parsing a PDF, yet many pages that draw lines draw no table. Here the same edges are made
from PDFium's path objects (a few milliseconds a page, in C) and given to the same finders
pdfplumber and :mod:`knowledge._pdf_aligned` run: no candidate there means no ruled table,
and pdfplumber is not run for one. The edges err towards more: coordinates within 0.01 pt
count as straight where pdfminer asks for equality, so a page is never skipped for a
rounding difference. On pdfplumber's 52 test PDFs, 46 of the 83 pages whose operators
paint lines but hold no table are skipped, and every table is still found.
"""

from __future__ import annotations

import ctypes
import itertools
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pdfplumber.table import TableFinder

from knowledge._pdf_aligned import MAX_TABLE_GAP
from knowledge._pdf_rules import horizontal_rules, rule_stacks, side_rules

__all__ = ["may_hold_ruled_table"]

_STRAIGHT = 0.01  # points: a segment this close to level (or plumb) is an edge
_MAX_FORM_DEPTH = 8
_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def may_hold_ruled_table(page: pdfium.PdfPage) -> bool:
    """False when the page's edges give pdfplumber's finders nothing to start from.

    A page turned by its ``/Rotate`` (which pdfminer applies, swapping across and down)
    always answers True.
    """
    if page.get_rotation() % 180:
        return True
    width, height = page.get_size()
    edges = _Edges(_page_edges(page, height), (0.0, 0.0, width, height))
    if rule_stacks(horizontal_rules(edges), max_gap=MAX_TABLE_GAP):  # type: ignore[arg-type]
        return True
    settings = {"explicit_vertical_lines": side_rules(edges)}  # type: ignore[arg-type]
    return bool(TableFinder(edges, settings).tables)  # type: ignore[arg-type]


class _Edges:
    """What pdfplumber's table finder and the rule helpers read of a page: its edges."""

    def __init__(self, edges: list[dict[str, Any]], bbox: tuple[float, ...]) -> None:
        self.edges = edges
        self.bbox = bbox

    @property
    def horizontal_edges(self) -> list[dict[str, Any]]:
        return [edge for edge in self.edges if edge["orientation"] == "h"]


def _page_edges(page: pdfium.PdfPage, height: float) -> list[dict[str, Any]]:
    """Each painted subpath's straight segments as pdfplumber's edges (top-down y)."""
    paths: list[tuple[Any, _Matrix]] = []
    _paths(
        page.raw, pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject, _IDENTITY, 0, paths
    )
    edges = []
    for raw, matrix in paths:
        for points in _subpaths(raw, matrix):
            points = [(x, height - y) for x, y in points]
            # pdfminer makes a line of a lone segment, and pdfplumber calls any line that
            # is not level vertical; in longer paths a slanted segment is no edge.
            lone = len(points) == 2 or (len(points) == 3 and points[2] == points[0])
            for (x0, y0), (x1, y1) in itertools.pairwise(points):
                across, down = abs(x1 - x0), abs(y1 - y0)
                if down < _STRAIGHT:
                    orientation = "h"
                elif across < _STRAIGHT or lone:
                    orientation = "v"
                else:
                    continue
                top = min(y0, y1)
                edges.append(
                    {
                        "object_type": "edge",
                        "x0": min(x0, x1),
                        "x1": max(x0, x1),
                        "top": top,
                        "bottom": max(y0, y1),
                        "doctop": top,
                        "width": across,
                        "height": down,
                        "orientation": orientation,
                    }
                )
    return edges


def _paths(
    parent: Any, count: Any, get: Any, outer: _Matrix, depth: int, out: list[tuple[Any, _Matrix]]
) -> None:
    """The path objects under ``parent`` (forms opened), each with its matrix to the page."""
    for index in range(count(parent)):
        raw = get(parent, index)
        kind = pdfium_c.FPDFPageObj_GetType(raw)
        matrix = _times(_matrix(raw), outer)
        if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
            out.append((raw, matrix))
        elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < _MAX_FORM_DEPTH:
            _paths(
                raw,
                pdfium_c.FPDFFormObj_CountObjects,
                pdfium_c.FPDFFormObj_GetObject,
                matrix,
                depth + 1,
                out,
            )


def _matrix(raw: Any) -> _Matrix:
    m = pdfium_c.FS_MATRIX()
    if not pdfium_c.FPDFPageObj_GetMatrix(raw, ctypes.byref(m)):
        return _IDENTITY
    return (m.a, m.b, m.c, m.d, m.e, m.f)


def _times(first: _Matrix, then: _Matrix) -> _Matrix:
    a, b, c, d, e, f = first
    a2, b2, c2, d2, e2, f2 = then
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def _subpaths(raw: Any, matrix: _Matrix) -> list[list[tuple[float, float]]]:
    """The path's subpaths as page points; a closed one ends at its start again.

    PDFium gives a curve as its two control points and its end. pdfminer joins the ends
    alone; each curved subpath is given both ways (more edges, never fewer).
    """
    a, b, c, d, e, f = matrix
    x, y = ctypes.c_float(), ctypes.c_float()
    found: list[list[tuple[float, float]]] = []
    points: list[tuple[float, float]] = []
    controls: set[int] = set()  # indexes in ``points`` of control points

    def flush() -> None:
        if len(points) > 1:
            ends = [p for i, p in enumerate(points) if i not in controls]
            found.append(ends)
            if controls:
                found.append(list(points))

    count = pdfium_c.FPDFPath_CountSegments(raw)
    curve = 0  # PDFium's curve segments come in threes: control, control, end
    for index in range(count):
        segment = pdfium_c.FPDFPath_GetPathSegment(raw, index)
        pdfium_c.FPDFPathSegment_GetPoint(segment, ctypes.byref(x), ctypes.byref(y))
        point = (x.value * a + y.value * c + e, x.value * b + y.value * d + f)
        kind = pdfium_c.FPDFPathSegment_GetType(segment)
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
            flush()
            points, controls, curve = [point], set(), 0
            continue
        if kind == pdfium_c.FPDF_SEGMENT_BEZIERTO:
            curve = curve % 3 + 1
            if curve < 3:
                controls.add(len(points))
        points.append(point)
        if pdfium_c.FPDFPathSegment_GetClose(segment) and points:
            points.append(points[0])
    flush()
    return found
