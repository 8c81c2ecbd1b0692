"""One odd file never stops ``deskbot ingest``: each is stored clean or refused in one line.

Files hold what their tools wrote: a NUL in a PDF's metadata title, in its text, in a table
cell; a stray NUL in a text file; a file name that is not UTF-8. The batch goes on past a
file the database refuses, and that file leaves nothing half-written.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docx
import psycopg
import pytest

from tests.conftest import CliResult, FreshDatabase
from tests.test_parsing import grid, make_pdf, rewrite_pdf, text

pytestmark = pytest.mark.e2e

Run = Callable[..., CliResult]


def _pdf_with_nuls() -> bytes:
    rows = [["Item", "Price"], ["Wid\x00get", "4\x002"], ["Bolt", "7"]]
    page = [
        text(72, 780, "Shipping note: pal\x00lets leave at dawn."),
        *grid(72, 700, [150, 150], rows),
        text(72, 560, "End of the note."),
    ]
    return rewrite_pdf(
        make_pdf([page]), lambda w: w.add_metadata({"/Title": "Ship\x00ping report"})
    )


def _docx_with_nuls() -> bytes:
    """A DOCX whose title, paragraph and table cell hold a NUL.

    python-docx refuses to write one (XML 1.0 has no NUL, not even as ``&#0;``), so the
    placeholders are swapped for NUL bytes in the package's XML by hand.
    """
    document = docx.Document()
    document.core_properties.title = "Hand@@NUL@@book"
    document.add_paragraph("Lockers are opened on Fri@@NUL@@days.")
    document.add_table(rows=1, cols=2).rows[0].cells[0].text = "Key@@NUL@@card"
    written = io.BytesIO()
    document.save(written)
    out = io.BytesIO()
    with zipfile.ZipFile(written) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item).replace(b"@@NUL@@", b"\x00"))
    return out.getvalue()


def _write_odd_folder(folder: Path) -> None:
    """Files in the order ``expand_paths`` takes them, a plain one last."""
    folder.mkdir()
    (folder / "1-shipping.pdf").write_bytes(_pdf_with_nuls())
    (folder / "2-handbook.docx").write_bytes(_docx_with_nuls())
    (folder / "3-notes.md").write_bytes(
        b"# Depot ru\x00les\n\nForklifts charge over\x00night in bay 4.\n\n"
        b"| Tool | Shelf |\n| --- | --- |\n| Ham\x00mer | B7 |\n"
    )
    (folder / "4-memo.txt").write_bytes(b"The canteen closes ear\x00ly on Fridays.\n")
    (folder / "5-after.md").write_text("# After\n\nVisitors sign in at the gatehouse.\n")


def _search(run_cli: Run, env: dict[str, str], query: str) -> list[dict[str, Any]]:
    found = run_cli("search", query, "--mode", "lexical", "--json", env=env)
    assert found.code == 0, found.stderr
    results: list[dict[str, Any]] = json.loads(found.stdout)
    return results


def test_nuls_in_titles_text_and_cells_are_cleaned_and_the_batch_goes_on(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    _write_odd_folder(tmp_path / "odd")

    done = run_cli("ingest", str(tmp_path / "odd"), "--collection", "odd", "--json", env=env)

    assert done.code in (0, 1), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    results = {Path(r["path"]).name: r for r in json.loads(done.stdout)}
    assert set(results) == {
        "1-shipping.pdf",
        "2-handbook.docx",
        "3-notes.md",
        "4-memo.txt",
        "5-after.md",
    }
    stored = {name for name, r in results.items() if r["status"] == "stored"}
    assert stored == {"1-shipping.pdf", "3-notes.md", "4-memo.txt", "5-after.md"}
    # A DOCX cannot hold a NUL (XML 1.0): the package is refused as corrupt, in one line.
    handbook = results["2-handbook.docx"]
    assert (handbook["status"], handbook["reason"]) == ("refused", "corrupt")
    assert "\n" not in handbook["detail"]

    for query, words in [
        ("pallets", "Shipping note: pallets leave at dawn."),
        ("Widget", "Widget"),
        ("overnight", "Forklifts charge overnight in bay 4."),
        ("Hammer", "Hammer"),
        ("early canteen", "The canteen closes early on Fridays."),
    ]:
        hits = _search(run_cli, env, query)
        assert hits and words in hits[0]["content"], (query, hits)
        assert not any("\x00" in json.dumps(hit) for hit in hits)
    titles = {hit["citation"]["title"] for hit in _search(run_cli, env, "pallets Widget")}
    assert "Shipping report" in titles
    assert "Depot rules" in {hit["citation"]["section"] for hit in _search(run_cli, env, "Hammer")}


def test_a_file_name_that_is_not_utf8_is_stored(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9-menu.md")).write_text("# Menu\n\nSoup of the day: lentils.\n")
    (folder / "z-after.md").write_text("# After\n\nThe lift is serviced on Mondays.\n")

    done = run_cli("ingest", str(folder), "--collection", "names", "--json", env=env)

    assert done.code == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["status"] for r in results] == ["stored", "stored"]
    assert Path(results[0]["path"]).name == "caf\\xe9-menu.md"
    [hit] = _search(run_cli, env, "lentils")[:1]
    assert hit["citation"]["source"].endswith("caf\\xe9-menu.md")


def test_a_file_the_database_refuses_is_refused_alone_and_leaves_nothing_behind(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    # A rule the database enforces and the ingest knows nothing of: the write of the
    # second file fails half-way (its document row is in, its chunks are not).
    with psycopg.connect(fresh_database.url, autocommit=True) as conn:
        check = "CHECK (content NOT LIKE '%contraband%')"
        conn.execute(f"ALTER TABLE chunks ADD CONSTRAINT no_contraband {check}")
    env = {"DATABASE_URL": fresh_database.url, "DESKBOT_LOG_LEVEL": "DEBUG"}
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a-first.md").write_text("# First\n\nThe loading dock opens at six.\n")
    (folder / "b-seized.md").write_text("# Seized\n\nCustoms held the contraband crates.\n")
    (folder / "c-last.md").write_text("# Last\n\nThe night shift ends at two.\n")

    done = run_cli("ingest", str(folder), "--collection", "batch", "--json", env=env)

    assert done.code == 1, done.stderr
    results = {Path(r["path"]).name: r for r in json.loads(done.stdout)}
    assert [results[n]["status"] for n in ("a-first.md", "b-seized.md", "c-last.md")] == [
        "stored",
        "refused",
        "stored",
    ]
    seized = results["b-seized.md"]
    assert seized["reason"] == "failed"
    assert seized["detail"].startswith("storing failed (")
    assert "CheckViolation" in seized["detail"] or "IntegrityError" in seized["detail"]
    assert "\n" not in seized["detail"]
    # The traceback is in the debug log, not in the result.
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(
        "b-seized.md" in entry["msg"] and "no_contraband" in entry.get("exc", "")
        for entry in logged
    ), done.stderr
    with psycopg.connect(fresh_database.url) as conn:
        sources = [row[0] for row in conn.execute("SELECT source FROM documents ORDER BY source")]
        orphans = conn.execute(
            "SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)"
        ).fetchone()
    assert [Path(s).name for s in sources] == ["a-first.md", "c-last.md"]
    assert orphans == (0,)
