"""Document administration from Slack: ``/deskbot``, the upload modal, shared files.

``/deskbot access`` (who may read a collection) is parsed and applied in
:mod:`bot.slack.access`; the admin check is here, as for uploads and deletes.

``/deskbot upload`` opens a modal (up to 10 files and a collection); files an admin shares
with the bot in a DM get an "Add to the documents" button that opens the same modal's
collection question. Either way the files become an ``ingest`` job: downloaded with the bot
token (size checked first), ingested, and summarised to the admin in a DM. Only the users
and user groups in ``DESKBOT_SLACK_ADMINS`` may upload, delete or change who may read a
collection; anyone else is told why.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from pathlib import Path, PurePath
from typing import Any

import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ingesting import (
    IngestSummary,
    file_note,
    ingest_files,
    readable_documents,
    refused_before_ingest,
    safe_file_name,
)
from bot.knowledge import Knowledge
from bot.settings import Settings
from bot.slack.access import change_access
from bot.slack.mrkdwn import unescape
from bot.state import Job, SharedState
from knowledge.errors import KnowledgeError
from knowledge.ingest import FileResult
from knowledge.search import Scope

__all__ = ["INGEST_JOB", "SlackAdmin", "SlackIngest"]

log = logging.getLogger(__name__)

INGEST_JOB = "slack_ingest"
MAX_FILES = 10
DEFAULT_COLLECTION = "general"

HELP = (
    "*deskbot* — ask me anything by mentioning me or in a DM.\n"
    "`/deskbot docs [COLLECTION]` lists documents · `/deskbot docs delete ID` deletes one "
    "(admins) · `/deskbot upload` adds files (admins) · "
    "`/deskbot access COLLECTION [public|private] [@user|#channel ...] "
    "[remove @user|#channel ...]` shows or sets who may read a collection (admins)."
)


class SlackAdmin:
    """Handlers for ``/deskbot`` and the upload flow."""

    def __init__(
        self,
        settings: Settings,
        state: SharedState,
        knowledge: Knowledge,
        client: AsyncWebClient,
    ) -> None:
        self.settings = settings
        self.state = state
        self.knowledge = knowledge
        self.client = client

    async def is_admin(self, user_id: str) -> bool:
        """True if the user is listed, or belongs to a listed user group."""
        admins = self.settings.slack_admin_ids
        if user_id in admins:
            return True
        for group in (a for a in admins if a.startswith("S")):
            try:
                users = (await self.client.usergroups_users_list(usergroup=group))["users"]
            except SlackApiError as exc:
                log.warning("cannot read user group %s: %s", group, exc.response.get("error"))
                continue
            if user_id in users:
                return True
        return False

    # --- /deskbot --------------------------------------------------------------------

    async def on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()  # within Slack's 3 s, before any work
        words = str(body.get("text", "")).split()
        user = str(body.get("user_id", ""))
        if not words or words[0] == "help":
            await respond(text=HELP, response_type="ephemeral")
        elif words[0] == "upload":
            await self._upload(body, respond)
        elif words[0] == "docs" and len(words) >= 2 and words[1] == "delete":
            await self._delete(user, words[2:], respond)
        elif words[0] == "docs":  # Slack sends & < > in a command's text as &amp; &lt; &gt;
            await self._list(body, unescape(words[1]) if len(words) > 1 else None, respond)
        elif words[0] == "access":
            await self._access(user, str(body.get("text", "")), respond)
        else:
            await respond(text=f"Unknown command `{words[0]}`.\n{HELP}", response_type="ephemeral")

    async def _refuse(self, respond: Any, what: str) -> None:
        await respond(
            text=f"Only deskbot admins may {what} (DESKBOT_SLACK_ADMINS). "
            f"/ 관리자만 할 수 있습니다.",
            response_type="ephemeral",
        )

    async def _upload(self, body: dict[str, Any], respond: Any) -> None:
        if not await self.is_admin(str(body.get("user_id", ""))):
            await self._refuse(respond, "upload documents")
            return
        await self.client.views_open(trigger_id=body["trigger_id"], view=upload_view())

    async def _list(self, body: dict[str, Any], collection: str | None, respond: Any) -> None:
        """Documents of the collections the caller could search from where they ask."""
        user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
        scope = Scope(
            channel_id=channel,
            user_id=user,
            roles=frozenset({user}),
            private_conversation=channel.startswith("D"),
            operator=await self.is_admin(user),
        )
        try:
            docs = await readable_documents(self.knowledge, scope, collection)
        except KnowledgeError as exc:
            await respond(text=str(exc), response_type="ephemeral")
            return
        if not docs:
            where = f" in `{collection}`" if collection else ""
            await respond(text=f"No documents{where}.", response_type="ephemeral")
            return
        lines = [
            f"• `{d.id}` *{d.title or d.source}* ({d.collection}, v{d.version}, {d.chunks} chunks)"
            for d in docs[:50]
        ]
        more = f"\n…and {len(docs) - 50} more" if len(docs) > 50 else ""
        await respond(text="\n".join(lines) + more, response_type="ephemeral")

    async def _access(self, user: str, text: str, respond: Any) -> None:
        if not await self.is_admin(user):
            await self._refuse(respond, "change who may read a collection")
            return
        await respond(text=await change_access(self.knowledge, text), response_type="ephemeral")

    async def _delete(self, user: str, args: list[str], respond: Any) -> None:
        if not await self.is_admin(user):
            await self._refuse(respond, "delete documents")
            return
        try:
            document_id = uuid.UUID(args[0]) if args else None
        except ValueError:
            document_id = None
        if document_id is None:
            await respond(text="Usage: `/deskbot docs delete ID`", response_type="ephemeral")
            return
        try:
            doc = await self.knowledge.store.delete_document(document_id)
        except KnowledgeError as exc:
            await respond(text=str(exc), response_type="ephemeral")
            return
        await respond(
            text=f"Deleted *{doc.title or doc.source}* from `{doc.collection}`.",
            response_type="ephemeral",
        )

    # --- files shared in a DM --------------------------------------------------------

    async def offer_shared_files(self, event: dict[str, Any]) -> None:
        """Offer to ingest files an admin shared with the bot in a DM."""
        user = str(event.get("user", ""))
        files = [f["id"] for f in event.get("files", []) if "id" in f][:MAX_FILES]
        if not files or not await self.is_admin(user):
            return
        names = ", ".join(str(f.get("name", f["id"])) for f in event.get("files", [])[:MAX_FILES])
        await self.client.chat_postMessage(
            channel=event["channel"],
            text=f"Add {names} to the documents?",
            blocks=[
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"Add *{names}* to the documents?"},
                },
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "deskbot_offer_ingest",
                            "text": {"type": "plain_text", "text": "Add to the documents"},
                            "value": json.dumps(files),
                        }
                    ],
                },
            ],
        )

    async def on_offer_clicked(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        if not await self.is_admin(str(body["user"]["id"])):
            return
        files = json.loads(action.get("value") or "[]")
        await self.client.views_open(
            trigger_id=body["trigger_id"], view=upload_view(file_ids=files)
        )

    # --- the modal -------------------------------------------------------------------

    async def on_upload_submitted(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        values = view.get("state", {}).get("values", {})
        collection = (
            values.get("collection", {}).get("collection", {}).get("value") or DEFAULT_COLLECTION
        ).strip()
        files = [f["id"] for f in values.get("files", {}).get("files", {}).get("files", [])]
        files += json.loads(view.get("private_metadata") or "[]")
        if not files:
            await ack(response_action="errors", errors={"files": "Choose at least one file."})
            return
        await ack()
        user = str(body["user"]["id"])
        if not await self.is_admin(user):
            return
        await self.state.queue.put(
            INGEST_JOB, {"files": files[:MAX_FILES], "collection": collection, "user": user}
        )
        await self.client.chat_postMessage(
            channel=user,
            text=f"Adding {len(files[:MAX_FILES])} file(s) to `{collection}`; "
            "I'll report here when done.",
        )


def upload_view(*, file_ids: list[str] | None = None) -> dict[str, Any]:
    """The upload modal: a file input (unless the files are known) and a collection."""
    blocks: list[dict[str, Any]] = []
    if not file_ids:
        blocks.append(
            {
                "type": "input",
                "block_id": "files",
                "label": {"type": "plain_text", "text": "Files (PDF, DOCX, HTML, MD, TXT, CSV)"},
                "element": {"type": "file_input", "action_id": "files", "max_files": MAX_FILES},
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": "collection",
            "label": {"type": "plain_text", "text": "Collection"},
            "element": {
                "type": "plain_text_input",
                "action_id": "collection",
                "initial_value": DEFAULT_COLLECTION,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": "deskbot_upload",
        "title": {"type": "plain_text", "text": "Add documents"},
        "submit": {"type": "plain_text", "text": "Add"},
        "private_metadata": json.dumps(file_ids or []),
        "blocks": blocks,
    }


class SlackIngest:
    """The ``slack_ingest`` job: download the files, ingest them, report to the admin."""

    def __init__(self, settings: Settings, knowledge: Knowledge, client: AsyncWebClient) -> None:
        self.settings = settings
        self.knowledge = knowledge
        self.client = client

    async def __call__(self, job: Job) -> None:
        payload = job.payload
        user = str(payload["user"])
        collection = str(payload["collection"])
        with tempfile.TemporaryDirectory(prefix="deskbot-slack-") as folder:
            paths, refused = await self._download(list(payload["files"]), Path(folder))
            try:
                result = await ingest_files(
                    self.knowledge,
                    collection,
                    paths,
                    user=user,
                    refused=refused,
                    sources={path: path.name for path in paths},  # known by name, not temp path
                )
            except KnowledgeError as exc:  # the collection refused them all: say why
                text = f"Nothing was added to `{collection}`: {exc}"
                await self.client.chat_postMessage(channel=user, text=text)
                return
        await self.client.chat_postMessage(channel=user, text=summary(result))

    async def _download(
        self, file_ids: list[str], folder: Path
    ) -> tuple[list[Path], list[FileResult]]:
        limit = int(self.settings.max_file_mb * 1024 * 1024)
        token = self.settings.slack_bot_token
        headers = {"Authorization": f"Bearer {token.get_secret_value() if token else ''}"}
        paths: list[Path] = []
        refused: list[FileResult] = []
        async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
            for index, file_id in enumerate(file_ids):
                try:
                    info = (await self.client.files_info(file=file_id))["file"]
                except SlackApiError as exc:
                    detail = f"not readable ({exc.response.get('error')})"
                    refused.append(refused_before_ingest(file_id, "unreadable", detail))
                    continue
                name = safe_file_name(str(info.get("name") or ""), default=file_id)
                if int(info.get("size") or 0) > limit:
                    detail = f"over {self.settings.max_file_mb:g} MB"
                    refused.append(refused_before_ingest(name, "too_large", detail))
                    continue
                try:
                    response = await http.get(str(info["url_private_download"]), headers=headers)
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    detail = f"download failed ({type(exc).__name__})"
                    refused.append(refused_before_ingest(name, "unreadable", detail))
                    continue
                if response.status_code != 200:
                    detail = f"download failed (HTTP {response.status_code})"
                    refused.append(refused_before_ingest(name, "unreadable", detail))
                    continue
                path = folder / f"{index:02d}" / name
                path.parent.mkdir()
                path.write_bytes(response.content)
                paths.append(path)
        return paths, refused


_MARKS = {"stored": ":white_check_mark:", "unchanged": ":white_circle:", "refused": ":x:"}


def summary(result: IngestSummary) -> str:
    """The admin's report: what was stored, unchanged, or refused and why."""
    lines = [f"*Documents added to `{result.collection}`*"]
    for file in result.files:
        lines.append(f"• {_MARKS[file.status]} {PurePath(file.path).name}: {file_note(file)}")
    lines.append(result.counts())
    return "\n".join(lines)
