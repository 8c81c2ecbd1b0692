"""What a PDF page's content stream does, counted from its operators without interpreting it.

Counting a page's operators takes a few milliseconds; pdfplumber, which interprets every
character, is run only on pages whose counts say a table may be there.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pypdf import PageObject

__all__ = ["PageOperators"]


@dataclass(frozen=True)
class PageOperators:
    """What a page's content stream (and the forms it draws) does, counted cheaply.

    ``None`` counts mean the stream could not be read: every check then answers yes.
    """

    counts: Counter[bytes] | None
    text_in_forms: bool

    @classmethod
    def of(cls, page: PageObject) -> PageOperators:
        """Scan the page's operators (a few milliseconds; nothing is interpreted)."""
        try:
            contents = page.get_contents()
            if contents is None:
                return cls(Counter(), text_in_forms=False)
            own, forms = _operators(contents.get_data(), page.get("/Resources"), depth=0)
        except Exception:
            return cls(None, text_in_forms=True)
        text_in_forms = any(forms[op] for op in _TEXT_OPERATORS)
        return cls(own + forms, text_in_forms=text_in_forms)

    def may_have_ruled_table(self) -> bool:
        """Whether the page paints enough lines for pdfplumber to find a ruled table.

        pdfplumber reads every object of a page (each character included) before it looks
        for tables, which is most of the cost of parsing a PDF. Its line strategy needs two
        rows and two columns: three rules of one direction and three of the other, or three
        horizontal rules and one vertical (it is told where the missing outer sides are).
        A table ruled only above, under its header and below (papers' style) needs three
        horizontal rules. A page painting fewer than three segments cannot hold either (a
        rectangle counts two: it gives two of each direction).
        """
        if self.counts is None:
            return True
        painted = sum(self.counts[op] for op in _PAINT_OPERATORS)
        segments = sum(self.counts[op] for op in _SEGMENT_OPERATORS)
        return painted > 0 and segments + 2 * self.counts[b"re"] >= 3


# Strings are blanked before tokenizing, so that text cannot pass for an operator; what is
# left can over-count (inline image data), which costs time, never a table or text.
_PDF_STRING = re.compile(rb"\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>")
_PDF_TOKEN = re.compile(rb"/[^\s()<>\[\]{}/%]*|[^\s()<>\[\]{}/%]+")
_PAINT_OPERATORS = (b"S", b"s", b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*")
_SEGMENT_OPERATORS = (b"l", b"c", b"v", b"y", b"h")
_TEXT_OPERATORS = (b"Tj", b"TJ", b"'", b'"')
_MAX_FORM_DEPTH = 8


def _operators(data: bytes, resources: Any, *, depth: int) -> tuple[Counter[bytes], Counter[bytes]]:
    """Token counts of a content stream, and those of the forms it draws (recursively)."""
    tokens = _PDF_TOKEN.findall(_PDF_STRING.sub(b" ", data))
    own = Counter(tokens)
    forms: Counter[bytes] = Counter()
    if not own[b"Do"] or depth >= _MAX_FORM_DEPTH or resources is None:
        return own, forms
    xobjects = resources.get_object().get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else {}
    drawn = {name for name, op in itertools.pairwise(tokens) if op == b"Do" and name[:1] == b"/"}
    for name in drawn:
        form = xobjects.get(name.decode("latin-1"))
        form = form.get_object() if form is not None else None
        if form is not None and form.get("/Subtype") == "/Form":
            inner = form.get("/Resources", resources)
            counts, deeper = _operators(form.get_data(), inner, depth=depth + 1)
            forms.update(counts)
            forms.update(deeper)
    return own, forms
