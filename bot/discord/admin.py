"""Document administration from Discord: ``/docs upload``, ``list``, ``delete`` and ``access``.

Uploading, deleting and changing who may read a collection (``/docs access``) are for
members with Manage Server or one of ``DESKBOT_DISCORD_ADMIN_ROLES`` (role ids or user ids);
anyone else gets an ephemeral refusal saying why, and nothing is downloaded or changed.
Attachment sizes are checked against ``DESKBOT_MAX_FILE_MB`` from what the interaction
reports, before any download; the rest becomes a ``discord_ingest`` job: a worker downloads
the files, ingests them through the same use-case as Slack and the CLI, and tells the admin
what was stored, unchanged and refused (ephemerally, or in a DM once the interaction's token
has expired).
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import discord
import httpx

from bot.discord.adapter import (
    TOKEN_LIFETIME,
    first_delivery,
    is_private,
    member_roles,
    scope_channel,
    served_guild,
)
from bot.discord.rest import UNKNOWN_WEBHOOK, DiscordREST, RestError
from bot.ingesting import (
    IngestSummary,
    file_note,
    ingest_files,
    readable_documents,
    refused_before_ingest,
)
from bot.knowledge import Knowledge
from bot.readers import Mentions, readers
from bot.settings import Settings
from bot.state import Job, SharedState
from knowledge.errors import KnowledgeError
from knowledge.ingest import FileResult
from knowledge.search import Scope

__all__ = [
    "INGEST_JOB",
    "AccessChange",
    "DiscordAdmin",
    "DiscordIngest",
    "discord_mentions",
    "summary",
]

log = logging.getLogger(__name__)

INGEST_JOB = "discord_ingest"
_MB = 1024 * 1024
_LISTED = 30
_MARKS = {"stored": "✅", "unchanged": "⚪", "refused": "❌"}


class DiscordAdmin:
    """The ``/docs`` commands, on the gateway side (quick: checks, then a job)."""

    def __init__(self, settings: Settings, state: SharedState, knowledge: Knowledge) -> None:
        self.settings = settings
        self.state = state
        self.knowledge = knowledge

    async def _first_time(self, interaction: discord.Interaction[Any]) -> bool:
        return await first_delivery(self.state, self.settings, interaction)

    def is_admin(self, interaction: discord.Interaction[Any]) -> bool:
        """Manage Server in a served guild, or a listed role id (or user id)."""
        if not served_guild(self.settings, interaction.guild_id):
            return False
        if interaction.guild_id is not None and interaction.permissions.manage_guild:
            return True
        return bool(self.settings.discord_admin_role_set & set(member_roles(interaction.user)))

    async def _refuse(self, interaction: discord.Interaction[Any], what: str) -> None:
        await interaction.response.send_message(
            f"Only members with Manage Server or an admin role "
            f"(DESKBOT_DISCORD_ADMIN_ROLES) may {what}. / 관리자만 할 수 있습니다.",
            ephemeral=True,
        )

    async def upload(
        self,
        interaction: discord.Interaction[Any],
        files: list[discord.Attachment],
        collection: str,
        *,
        private: bool = False,
    ) -> None:
        """Refuse, or check sizes and queue the download and ingest."""
        if not await self._first_time(interaction):
            return
        if not self.is_admin(interaction):
            await self._refuse(interaction, "add documents")
            return
        limit = self.settings.max_file_mb * _MB
        wanted = [a for a in files if a.size <= limit]
        refused = [_too_large(a, self.settings.max_file_mb) for a in files if a.size > limit]
        if not wanted:  # nothing to download: answer now
            report = summary(IngestSummary(collection, tuple(refused)))
            await interaction.response.send_message(report, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            job = _ingest_job(interaction, wanted, refused, collection, private=private)
            await self.state.queue.put(INGEST_JOB, job)
        except Exception:  # the admin sees "thinking" until told otherwise
            log.exception("could not queue /docs upload %s", interaction.id)
            await interaction.edit_original_response(
                content="Cannot take files right now; please try again in a moment."
            )

    async def list(self, interaction: discord.Interaction[Any], collection: str | None) -> None:
        """The documents the caller could search from where they ask."""
        if not await self._first_time(interaction):
            return
        scope = _scope(interaction)
        try:
            docs = await readable_documents(self.knowledge, scope, collection)
        except KnowledgeError as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        if not docs:
            where = f" in `{collection}`" if collection else ""
            await interaction.response.send_message(f"No documents{where}.", ephemeral=True)
            return
        lines = [
            f"• `{d.id}` **{d.title or d.source}** ({d.collection}, v{d.version}, "
            f"{d.chunks} chunks)"
            for d in docs[:_LISTED]
        ]
        more = f"\n…and {len(docs) - _LISTED} more" if len(docs) > _LISTED else ""
        await interaction.response.send_message("\n".join(lines) + more, ephemeral=True)

    async def delete(self, interaction: discord.Interaction[Any], document_id: str) -> None:
        """Delete one document (admins only)."""
        if not await self._first_time(interaction):
            return
        if not self.is_admin(interaction):
            await self._refuse(interaction, "delete documents")
            return
        try:
            doc = await self.knowledge.store.delete_document(uuid.UUID(document_id.strip()))
        except ValueError:
            message = f"`{document_id}` is not a document id; `/docs list` shows them."
        except KnowledgeError as exc:
            message = str(exc)
        else:
            message = f"Deleted **{doc.title or doc.source}** from `{doc.collection}`."
        await interaction.response.send_message(message, ephemeral=True)

    async def access(self, interaction: discord.Interaction[Any], change: AccessChange) -> None:
        """Show or change who may read a collection (admins only), naming them as mentions."""
        if not await self._first_time(interaction):
            return
        if not self.is_admin(interaction):
            await self._refuse(interaction, "change who may read a collection")
            return
        if interaction.guild_id is not None and str(interaction.guild_id) in change.roles:
            message = "@everyone is every member: make the collection public instead."
        else:
            message = await self._access_line(change, _guild_roles(interaction))
        await interaction.response.send_message(
            message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    async def _access_line(self, change: AccessChange, guild_roles: set[str]) -> str:
        """Apply ``change``; the readers now, or the one line saying what was wrong."""
        if change.remove and not (change.roles or change.channels):
            return "`remove:` takes off the role, member or channel given with it; none was."
        store = self.knowledge.store
        try:
            if not change.changes:
                info = await store.get_collection(change.collection)
            else:
                info = await store.set_access(
                    change.collection,
                    visibility=change.visibility,
                    add_roles=() if change.remove else change.roles,
                    remove_roles=change.roles if change.remove else (),
                    add_channels=() if change.remove else change.channels,
                    remove_channels=change.channels if change.remove else (),
                )
        except KnowledgeError as exc:
            return str(exc)
        return f"`{info.name}` — {readers(info, discord_mentions(guild_roles))}"


@dataclass(frozen=True)
class AccessChange:
    """``/docs access``: a collection, and the readers to add (or, with ``remove``, take off).

    ``private`` None leaves the visibility; roles are Discord role or user ids.
    """

    collection: str
    private: bool | None = None
    roles: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    remove: bool = False

    @property
    def visibility(self) -> str | None:
        """``private``, ``public``, or None to leave it."""
        return None if self.private is None else ("private" if self.private else "public")

    @property
    def changes(self) -> bool:
        """False when it only asks who may read the collection now."""
        return self.private is not None or bool(self.roles or self.channels)


def discord_mentions(guild_roles: set[str]) -> Mentions:
    """Readers as Discord mentions: ``<@&id>`` for a guild role, ``<@id>`` for a user.

    A role id and a user id look alike (both snowflakes), so the guild's roles tell them
    apart; an id that is no snowflake (set from the CLI) is shown as it is.
    """

    def role(value: str) -> str:
        if value in guild_roles:
            return f"<@&{value}>"
        return f"<@{value}>" if value.isdigit() else f"`{value}`"

    def channel(value: str) -> str:
        return f"<#{value}>" if value.isdigit() else f"`{value}`"

    return Mentions(role=role, channel=channel)


def _guild_roles(interaction: discord.Interaction[Any]) -> set[str]:
    """The role ids of the guild asked in, or of every guild the bot is in (in a DM)."""
    guilds = [interaction.guild] if interaction.guild else interaction.client.guilds
    return {str(role.id) for guild in guilds for role in guild.roles}


def _ingest_job(
    interaction: discord.Interaction[Any],
    wanted: list[discord.Attachment],
    refused: list[FileResult],
    collection: str,
    *,
    private: bool,
) -> dict[str, Any]:
    """The ``discord_ingest`` job: what to download, and where to report."""
    return {
        "files": [{"url": a.url, "name": a.filename, "size": a.size} for a in wanted],
        "refused": [{"name": r.path, "detail": r.detail} for r in refused],
        "collection": collection,
        "private": private,
        "user": str(interaction.user.id),
        "application_id": str(interaction.application_id),
        "token": interaction.token,
        "token_expires": time.time() + TOKEN_LIFETIME,
    }


def _scope(interaction: discord.Interaction[Any]) -> Scope:
    """The scope of a caller in the channel (a thread counts as its parent) or DM."""
    return Scope(
        channel_id=scope_channel(interaction),
        user_id=str(interaction.user.id),
        roles=frozenset(member_roles(interaction.user)),
        private_conversation=is_private(interaction),
    )


def _too_large(attachment: discord.Attachment, max_mb: float) -> FileResult:
    detail = f"{attachment.size / _MB:.1f} MB, over the {max_mb:g} MB limit"
    return refused_before_ingest(attachment.filename, "too_large", detail)


class DiscordIngest:
    """The ``discord_ingest`` job: download, ingest, report to the admin."""

    def __init__(self, settings: Settings, knowledge: Knowledge, rest: DiscordREST) -> None:
        self.settings = settings
        self.knowledge = knowledge
        self.rest = rest

    async def __call__(self, job: Job) -> None:
        payload = job.payload
        user = str(payload["user"])
        refused = [
            refused_before_ingest(r["name"], "too_large", r["detail"]) for r in payload["refused"]
        ]
        collection = str(payload["collection"])
        with tempfile.TemporaryDirectory(prefix="deskbot-discord-") as folder:
            paths, failed = await self._download(list(payload["files"]), Path(folder))
            try:
                result = await ingest_files(
                    self.knowledge,
                    collection,
                    paths,
                    private=bool(payload.get("private")),
                    user=user,
                    refused=[*failed, *refused],
                    sources={path: path.name for path in paths},  # known by name, not temp path
                )
            except KnowledgeError as exc:  # the collection refused them all: say why
                await self._report(payload, f"Nothing was added to `{collection}`: {exc}")
                return
        await self._report(payload, summary(result))

    async def _download(
        self, files: list[dict[str, Any]], folder: Path
    ) -> tuple[list[Path], list[FileResult]]:
        limit = int(self.settings.max_file_mb * _MB)
        paths: list[Path] = []
        failed: list[FileResult] = []
        async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
            for index, file in enumerate(files):
                name = PurePath(str(file["name"])).name or f"file-{index}"
                try:
                    content = await _fetch(http, str(file["url"]), limit)
                except _DownloadError as exc:
                    failed.append(refused_before_ingest(name, exc.reason, str(exc)))
                    continue
                path = folder / f"{index:02d}" / name
                path.parent.mkdir()
                path.write_bytes(content)
                paths.append(path)
        return paths, failed

    async def _report(self, payload: Any, text: str) -> None:
        """Tell the admin ephemerally, or in a DM once the interaction's token has expired."""
        body = {"content": text, "allowed_mentions": {"parse": []}}
        if time.time() < float(payload["token_expires"]) - 30:
            try:
                await self.rest.edit_original(
                    str(payload["application_id"]), str(payload["token"]), body
                )
                return
            except RestError as exc:
                if exc.code != UNKNOWN_WEBHOOK:
                    raise
        try:
            channel = await self.rest.dm_channel(str(payload["user"]))
            await self.rest.send(channel, body)
        except RestError as exc:  # DMs closed: the ingest is done, do not redo it
            log.warning("could not tell %s about their upload: %s", payload["user"], exc)


class _DownloadError(Exception):
    def __init__(self, reason: Any, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


async def _fetch(http: httpx.AsyncClient, url: str, limit: int) -> bytes:
    """The attachment's bytes, stopping at ``limit`` (the reported size may have lied)."""
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                raise _DownloadError("unreadable", f"download failed (HTTP {response.status_code})")
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > limit:
                    raise _DownloadError("too_large", f"over {limit / _MB:g} MB")
            return bytes(content)
    except httpx.HTTPError as exc:
        raise _DownloadError("unreadable", f"download failed ({type(exc).__name__})") from None


def summary(result: IngestSummary) -> str:
    """The admin's report: what was stored, unchanged, or refused and why."""
    lines = [f"**Documents added to `{result.collection}`**"]
    for file in result.files:
        lines.append(f"{_MARKS[file.status]} {PurePath(file.path).name}: {file_note(file)}")
    lines.append(result.counts())
    return "\n".join(lines)[:2000]
