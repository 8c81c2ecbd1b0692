"""Commands stopped by SIGTERM or Ctrl-C stop cleanly: real ``deskbot`` processes.

Each test starts a command on its own embedded PostgreSQL (``$DESKBOT_DATA_DIR/pg``), stops
it mid-work and checks what a user and an operator would: the exit status, one line on
stderr and no traceback, nothing half-written, and no ``postgres`` process left on that data
directory unless another process still uses the server. Ctrl-C is sent as a terminal sends
it, to the whole process group (the ingest's parser processes included).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bot.embedded_pg import EmbeddedPostgres
from tests.conftest import REPO, CliResult, assert_no_secret
from tests.fakes.openai_server import ScriptedOpenAI
from tests.secret_values import OPENAI_KEY

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

DESKBOT = str(Path(sys.executable).with_name("deskbot"))


class Command:
    """One ``deskbot`` process in its own process group, on its own data directory."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = tmp_path / "data"
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path / "home"),
            "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
            "DESKBOT_DATA_DIR": str(self.data_dir),
            "DESKBOT_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [DESKBOT, *args],
            env={**base, **(env or {})},
            cwd=tmp_path,
            stdin=subprocess.PIPE,  # held open: a chat waits for a line nobody types
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def stop(self, signum: int, *, timeout: float = 60) -> CliResult:
        """Send ``signum`` (SIGINT to the whole group, as a terminal's Ctrl-C) and wait."""
        if signum == signal.SIGINT:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=timeout)
        result = CliResult(self.proc.returncode, out.decode(), err.decode())
        assert_no_secret(result.stdout + result.stderr, f"deskbot {self.proc.args[1]}")
        return result

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=30)


def postgres_processes(data_dir: Path) -> list[int]:
    """Pids of ``postgres`` processes serving ``data_dir/pg``."""
    pgdata = str((data_dir / "pg").resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and pgdata.encode() in argv:
            pids.append(int(entry.name))
    return pids


def connect(data_dir: Path) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the running embedded server that does not count as one of its users."""
    lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    return psycopg.connect(
        host=lines[4], port=lines[3], user="postgres", dbname="deskbot", autocommit=True
    )


def wait_until(check: Callable[[], bool], what: str, *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def count(data_dir: Path, sql: str) -> int:
    try:
        with connect(data_dir) as conn:
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    except (OSError, psycopg.Error, IndexError):
        return 0  # not up yet, or the schema is not there yet
    return int(row[0]) if row else 0


def one_line(result: CliResult, line: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert [x for x in result.stderr.splitlines() if x.strip()] == [line], result.stderr


@pytest.fixture
def attached(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """This test process as a second user of the embedded server the command will use."""
    server = EmbeddedPostgres(tmp_path / "data")
    server.start()
    yield server
    server.stop()


def write_notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"note{i:03d}.md").write_text(
            f"# Note {i}\n\nThe travel budget for region {i} is {i * 10} dollars a night. "
            f"지역 {i} 출장비는 {i * 10} 달러입니다.\n"
        )
    return folder


STOPS = [
    pytest.param(signal.SIGTERM, 143, "deskbot: stopped (SIGTERM)", id="sigterm"),
    pytest.param(signal.SIGINT, 130, "deskbot: interrupted", id="ctrl-c"),
]


@pytest.mark.parametrize(("signum", "code", "line"), STOPS)
def test_a_stopped_ingest_keeps_whole_documents_and_stops_its_server(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    notes = write_notes(tmp_path / "notes", 150)
    ingest = Command(tmp_path, "ingest", str(notes), "--collection", "notes")
    data = ingest.data_dir
    try:
        wait_until(lambda: count(data, "SELECT count(*) FROM documents") >= 3, "3 documents")
    except BaseException:
        ingest.kill()
        raise
    result = ingest.stop(signum)

    assert result.code == code
    one_line(result, line)
    assert postgres_processes(data) == []  # the last user out stopped it
    server = EmbeddedPostgres(data)
    server.start()
    try:
        with psycopg.connect(server.url(driver=None)) as conn:
            documents = conn.execute("SELECT count(*) FROM documents").fetchone()
            bare = conn.execute(
                "SELECT count(*) FROM documents d WHERE NOT EXISTS "
                "(SELECT 1 FROM chunks c WHERE c.document_id = d.id)"
            ).fetchone()
    finally:
        server.stop()
    assert documents is not None and 3 <= documents[0] < 150  # stopped mid-work
    assert bare == (0,)  # every stored document has its chunks
    assert postgres_processes(data) == []


def test_a_stopped_ask_marks_its_run_cancelled_and_leaves_a_shared_server_running(
    tmp_path: Path, attached: EmbeddedPostgres, openai_server: ScriptedOpenAI
) -> None:
    openai_server.reply_text("too late", delay=30)  # the model is still thinking at SIGTERM
    env = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": OPENAI_KEY}
    ask = Command(tmp_path, "ask", "What is the hotel cap?", env=env)
    try:
        wait_until(lambda: bool(openai_server.chat_requests()), "the model call")
    except BaseException:
        ask.kill()
        raise
    result = ask.stop(signal.SIGTERM)

    assert result.code == 143
    one_line(result, "deskbot: stopped (SIGTERM)")
    assert postgres_processes(ask.data_dir) != []  # this test still uses it
    with psycopg.connect(attached.url(driver=None)) as conn:
        runs = conn.execute("SELECT status, error FROM runs").fetchall()
    assert len(runs) == 1
    assert runs[0][0] == "cancelled"
    assert "stopped" in str(runs[0][1])
    attached.stop()
    assert postgres_processes(ask.data_dir) == []


def test_a_chat_waiting_for_a_line_stops_at_once(tmp_path: Path) -> None:
    chat = Command(tmp_path, "chat")
    assert chat.proc.stdout is not None
    os.set_blocking(chat.proc.stdout.fileno(), False)
    shown = b""

    def prompted() -> bool:
        nonlocal shown
        shown += chat.proc.stdout.read() or b""  # type: ignore[union-attr]
        return "you ›".encode() in shown

    try:
        wait_until(prompted, "the chat's prompt")
    except BaseException:
        chat.kill()
        raise
    os.set_blocking(chat.proc.stdout.fileno(), True)
    began = time.monotonic()
    result = chat.stop(signal.SIGTERM, timeout=30)

    assert result.code == 143
    assert time.monotonic() - began < 15  # not waiting for a line nobody types
    one_line(result, "deskbot: stopped (SIGTERM)")
    assert postgres_processes(chat.data_dir) == []


def test_a_stopped_retrieval_eval_drops_its_collection_and_stops_its_server(
    tmp_path: Path,
) -> None:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": f"d{i}", "title": f"Note {i}", "text": f"Region {i} pays {i * 7} dollars."}
        for i in range(3000)
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "region 7"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td7\t1\n")
    evaluation = Command(tmp_path, "eval", "retrieval", "--format", "beir", str(root))
    data = evaluation.data_dir
    try:
        wait_until(lambda: count(data, "SELECT count(*) FROM collections") >= 1, "the collection")
    except BaseException:
        evaluation.kill()
        raise
    result = evaluation.stop(signal.SIGTERM)

    assert result.code == 143
    one_line(result, "deskbot: stopped (SIGTERM)")
    assert postgres_processes(data) == []
    server = EmbeddedPostgres(data)
    server.start()
    try:
        with psycopg.connect(server.url(driver=None)) as conn:
            left = conn.execute("SELECT count(*) FROM collections").fetchone()
    finally:
        server.stop()
    assert left == (0,)  # the throwaway collection went with the command


def test_a_process_killed_outright_does_not_keep_the_server_running(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "notes", 150)
    ingest = Command(tmp_path, "ingest", str(notes), "--collection", "notes")
    data = ingest.data_dir
    try:
        wait_until(lambda: count(data, "SELECT count(*) FROM documents") >= 1, "a document")
    finally:
        ingest.kill()  # SIGKILL: it never detaches
    assert postgres_processes(data) != []  # orphaned, still listed as used by the dead pid

    doctor = subprocess.run(
        [DESKBOT, "doctor", "--json"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path / "home"),
            "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
            "DESKBOT_DATA_DIR": str(data),
            "DESKBOT_LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert doctor.returncode == 0, doctor.stderr
    assert postgres_processes(data) == []  # the next process out stopped it
