"""A fake Discord: REST API, gateway websocket and attachment CDN in one local server.

The real discord.py client talks to it end to end, pointed at it the way production is:

    fake = FakeDiscord().start()
    discord.http.Route.BASE = discord.webhook.async_.Route.BASE = fake.api_url
    await client.login(fake.token)
    _, url, _ = await client.http.get_bot_gateway()
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
    task = asyncio.create_task(client.connect())

It seeds one guild (see ``discord_world``'s constants), records every REST call in
:attr:`FakeDiscord.calls`, and lets a test act as Discord's users: ``send_message``,
``send_dm``, ``slash``, ``click``... each dispatched over the gateway. The server runs on its
own thread and event loop, so async tests (on another loop) and sync code use it alike;
every test-side method is thread-safe. A bug in the fake (or a route it does not know) is
recorded in :attr:`FakeDiscord.errors`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.fakes.discord_gateway import Gateway
from tests.fakes.discord_guild import AuditEntry
from tests.fakes.discord_http import Call, Callback, CommandSync, Download, Hold, Part, now
from tests.fakes.discord_interactions import (
    InteractionRecord,
    base_payload,
    click_payload,
    modal_payload,
    slash_payload,
)
from tests.fakes.discord_rest import EPHEMERAL, RestRoutes
from tests.fakes.discord_world import (
    ADMIN_ID,
    ADMIN_ROLE_ID,
    APPLICATION_ID,
    BOT_ID,
    BOT_ROLE_ID,
    CHANNEL_ID,
    DEFAULT_TOKEN,
    GUILD_ID,
    HR_ROLE_ID,
    OTHER_CHANNEL_ID,
    OWNER_ID,
    USER_ID,
    World,
    user_payload,
)

__all__ = [
    "ADMIN_ID",
    "ADMIN_ROLE_ID",
    "APPLICATION_ID",
    "BOT_ID",
    "BOT_ROLE_ID",
    "CHANNEL_ID",
    "DEFAULT_TOKEN",
    "GUILD_ID",
    "HR_ROLE_ID",
    "OTHER_CHANNEL_ID",
    "OWNER_ID",
    "USER_ID",
    "AuditEntry",
    "Call",
    "Callback",
    "CommandSync",
    "Download",
    "FakeDiscord",
    "Hold",
    "InteractionRecord",
    "Part",
]


class FakeDiscord(RestRoutes):
    """One guild, its users and channels, served over REST and the gateway."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        intents: Iterable[str] = ("message_content", "members"),
        heartbeat_interval_ms: int = 41250,
        ack_deadline: float | None = 3.0,
    ) -> None:
        """``intents``: the privileged intents enabled in the Developer Portal.

        ``ack_deadline``: seconds after dispatch within which an interaction callback is
        accepted (Discord's 3 s; later ones get 404 Unknown interaction); None: no limit.
        """
        self.token = token
        self.world = World()
        self.gateway = Gateway(
            self.world, token=token, intents=frozenset(intents), heartbeat_ms=heartbeat_interval_ms
        )
        self.ack_deadline = ack_deadline
        self.callbacks: list[Callback] = []
        self.threads: list[dict[str, Any]] = []
        self.command_syncs: list[CommandSync] = []
        self.dispatched_at: dict[str, float] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.audit_log: list[AuditEntry] = []
        self.kicked: dict[str, str | None] = {}
        self.banned: dict[str, str | None] = {}
        self.nonces: dict[tuple[str, str], tuple[str, str, float]] = {}
        super().__init__()

    # --- acting as Discord's users ------------------------------------------------------

    def send_message(
        self,
        channel_id: str = CHANNEL_ID,
        content: str = "",
        *,
        author_id: str = USER_ID,
        mention_bot: bool = False,
        kind: int = 0,
        bot: bool = False,
        attachments: Iterable[dict[str, Any]] = (),
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A member posts in a guild channel or thread: MESSAGE_CREATE (returned).

        ``mention_bot`` starts the content with the bot's mention; ``bot`` makes the author a
        bot; ``kind`` is the message type (0 default, 19 reply, 7 member join...).
        """
        text = f"<@{BOT_ID}> {content}" if mention_bot else content
        with self.world.lock:
            if self.world.guild_of(channel_id) is None:
                raise ValueError(f"{channel_id} is not a guild channel or thread")
            fields: dict[str, Any] = {"type": kind, "attachments": list(attachments)}
            if bot:
                known = self.world.users.get(author_id) or user_payload(author_id, "otherbot")
                fields["author"] = {**known, "bot": True}
            if reply_to is not None:
                fields.update(self.world.reply_fields(channel_id, reply_to) or {})
            event = self.world.for_gateway(
                self.world.new_message(channel_id, author_id, text, **fields)
            )
        self._dispatch("MESSAGE_CREATE", event)
        return event

    def send_dm(self, user_id: str, content: str) -> dict[str, Any]:
        """``user_id`` writes to the bot in their DM channel: MESSAGE_CREATE (returned)."""
        with self.world.lock:
            channel = self.world.dm(user_id)
            event = self.world.new_message(channel["id"], user_id, content)
        self._dispatch("MESSAGE_CREATE", dict(event))
        return dict(event)

    def edit_message(self, channel_id: str, message_id: str, content: str) -> dict[str, Any]:
        """The author edits a message: MESSAGE_UPDATE (returned)."""
        with self.world.lock:
            message = self.world.find_message(channel_id, message_id)
            if message is None:
                raise KeyError(message_id)
            self.world.edit_message(message, {"content": content})
            event = self.world.for_gateway(message)
        self._dispatch("MESSAGE_UPDATE", event)
        return event

    def start_thread(
        self,
        channel_id: str = CHANNEL_ID,
        name: str = "a thread",
        *,
        message_id: str | None = None,
        owner_id: str = USER_ID,
    ) -> dict[str, Any]:
        """A member starts a public thread (from ``message_id`` if given): THREAD_CREATE."""
        with self.world.lock:
            thread_id = message_id or self.world.ids.next()
            thread = self.world.thread(channel_id, name, owner_id, thread_id)
        event = {**thread, "newly_created": True}
        self._dispatch("THREAD_CREATE", event)
        return event

    def add_attachment(
        self,
        filename: str,
        content: bytes,
        *,
        size: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """An uploaded file the CDN serves; ``size`` may claim more than ``content`` holds."""
        with self.world.lock:
            attachment = self.upload(Part("file", filename, content_type, content))
            if size is not None:
                attachment["size"] = size
        return attachment

    def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user_id: str = USER_ID,
        roles: Iterable[str] = (),
        permissions: int | None = None,
        channel_id: str = CHANNEL_ID,
        dm: bool = False,
        subcommand: str | None = None,
        attachments: Iterable[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """A member runs ``/name`` (``subcommand``: "upload", or "group sub"): INTERACTION_CREATE.

        ``options`` maps option names to values; an attachment dict from
        :meth:`add_attachment` becomes an attachment option. ``roles`` are added to the
        member's seeded roles; ``permissions`` overrides the computed ones. Returns the
        payload (``id``, ``token``...).
        """
        with self.world.lock:
            payload = base_payload(
                self.world,
                2,
                self.world.ids.next(),
                user_id=user_id,
                channel_id=None if dm else channel_id,
                roles=roles,
                permissions=permissions,
            )
            slash_payload(
                self.world,
                payload,
                name,
                options or {},
                subcommand=subcommand,
                attachments=attachments,
            )
            self._register(payload, user_id, None)
        self._dispatch("INTERACTION_CREATE", payload)
        return payload

    def click(
        self,
        custom_id: str,
        *,
        message: Mapping[str, Any],
        user_id: str = USER_ID,
        component_type: int = 2,
        values: Iterable[str] | None = None,
        roles: Iterable[str] = (),
        permissions: int | None = None,
    ) -> dict[str, Any]:
        """``user_id`` presses a button (or picks ``values``) on ``message``: INTERACTION_CREATE.

        Any message the bot posted, in a guild channel, thread or DM. In a guild the member
        carries its permissions (``roles`` added, ``permissions`` overriding, as ``slash``).
        """
        with self.world.lock:
            stored = self.world.find_message(message["channel_id"], message["id"]) or message
            payload = base_payload(
                self.world,
                3,
                self.world.ids.next(),
                user_id=user_id,
                channel_id=stored["channel_id"],
                roles=roles,
                permissions=permissions,
            )
            click_payload(
                self.world,
                payload,
                custom_id,
                dict(stored),
                component_type=component_type,
                values=values,
            )
            self._register(payload, user_id, stored["id"])
        self._dispatch("INTERACTION_CREATE", payload)
        return payload

    def submit_modal(
        self,
        custom_id: str,
        values: Mapping[str, str],
        *,
        user_id: str = USER_ID,
        channel_id: str | None = None,
        dm: bool = False,
        message: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``user_id`` submits the modal ``custom_id`` (text input custom_id -> value).

        INTERACTION_CREATE type 5 (returned), in ``channel_id`` (default: where the modal
        was opened, else #general), the user's DM if ``dm``, and on ``message`` when the modal
        came from a button. The rows mirror the modal the bot sent (KeyError: no such input).
        """
        with self.world.lock:
            shown = self._shown_modal(custom_id, user_id)
            where = channel_id or (shown[1] if shown else CHANNEL_ID)
            payload = base_payload(
                self.world,
                5,
                self.world.ids.next(),
                user_id=user_id,
                channel_id=None if dm else where,
            )
            modal_payload(payload, custom_id, values, shown[0] if shown else None)
            stored = None
            if message is not None:
                stored = self.world.find_message(message["channel_id"], message["id"]) or message
                payload["message"] = dict(stored)
            self._register(payload, user_id, stored["id"] if stored else None)
        self._dispatch("INTERACTION_CREATE", payload)
        return payload

    # --- steering the fake ------------------------------------------------------------

    def reconnect(
        self, *, replay_all: bool = False, op7: bool = False, invalidate: bool = False
    ) -> None:
        """Drop the gateway connection resumably (close 4000; ``op7``: send RECONNECT).

        ``replay_all``: the RESUME replays every event of the session (a resume storm).
        ``invalidate``: the session ends instead; its RESUME gets op 9 INVALID_SESSION and
        discord.py IDENTIFYs again (after the 5 s it waits); events meanwhile are lost.
        """
        drop = functools.partial(
            self.gateway.reconnect, replay_all=replay_all, op7=op7, invalidate=invalidate
        )
        self._loop.call_soon_threadsafe(drop)

    def revoke_token(self) -> None:
        """The bot token is reset after login: REST still takes it, IDENTIFY closes 4004."""
        self.gateway.token = "revoked-" + self.token  # one attribute: atomic across threads

    def close_dms(self, user_id: str) -> None:
        """``user_id`` turns off DMs from server members: the bot's DMs get 403 code 50007."""
        with self.world.lock:
            self.world.closed_dms.add(user_id)

    def expire_token(self, token: str) -> None:
        """The interaction's 15 minutes are over: its webhook answers 404 Unknown Webhook."""
        with self.world.lock:
            self.interactions[token].expired = True

    # --- what happened ------------------------------------------------------------------

    @property
    def errors(self) -> list[str]:
        """Bugs in the fake and routes it does not serve."""
        return self._errors + self.gateway.errors

    @property
    def identifies(self) -> int:
        """IDENTIFY payloads received."""
        return self.gateway.identifies

    @property
    def resumes(self) -> int:
        """RESUME payloads received."""
        return self.gateway.resumes

    @property
    def readies(self) -> int:
        """Sessions started (READY sent)."""
        return self.gateway.readies

    @property
    def close_codes(self) -> list[int]:
        """Close codes the fake closed gateway connections with."""
        return list(self.gateway.close_codes)

    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        """A channel's messages as they are now (after edits), oldest first; no ephemeral ones."""
        with self.world.lock:
            found = self.world.messages.get(channel_id, {}).values()
            ordered = sorted(found, key=lambda m: int(m["id"]))
            return [dict(m) for m in ordered if not m["flags"] & EPHEMERAL]

    @property
    def modals(self) -> list[dict[str, Any]]:
        """The modals the bot opened (callback type 9 data: custom_id, title, components)."""
        with self.world.lock:
            return [c.data for c in self.callbacks if c.type == 9]

    def interaction(self, token: str) -> InteractionRecord:
        """What the fake knows of an interaction (acknowledged, message ids...)."""
        with self.world.lock:
            return self.interactions[token]

    def original(self, token: str) -> dict[str, Any] | None:
        """The interaction's @original message as it is now (None before a response)."""
        with self.world.lock:
            record = self.interactions[token]
            return self._copy(record.channel_id, record.message_id)

    def followups(self, token: str) -> list[dict[str, Any]]:
        """The interaction's follow-up messages as they are now."""
        with self.world.lock:
            record = self.interactions[token]
            found = [self._copy(record.channel_id, m) for m in record.followups]
        return [m for m in found if m is not None]

    def commands(self, guild_id: str | None = None) -> list[dict[str, Any]]:
        """The commands synced to a guild (None: global), with the ids the fake gave them."""
        with self.world.lock:
            return list(self.world.commands.get(guild_id, []))

    def dm_channel_id(self, user_id: str) -> str:
        """The id of the DM channel between the bot and ``user_id``."""
        with self.world.lock:
            return str(self.world.dm(user_id)["id"])

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Poll ``predicate`` from the caller's loop until it is true."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met in {timeout}s")
            await asyncio.sleep(0.01)

    def wait_until_sync(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """:meth:`wait_until` for sync code."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met in {timeout}s")
            time.sleep(0.01)

    async def wait_ready(self, timeout: float = 5.0, count: int = 1) -> None:
        """Until ``count`` sessions got READY and GUILD_CREATE."""
        await self.wait_until(lambda: self.readies >= count, timeout)

    def wait_ready_sync(self, timeout: float = 5.0, count: int = 1) -> None:
        """:meth:`wait_ready` for sync code."""
        self.wait_until_sync(lambda: self.readies >= count, timeout)

    def _copy(self, channel_id: str, message_id: str | None) -> dict[str, Any] | None:
        found = self.world.find_message(channel_id, message_id) if message_id else None
        return None if found is None else dict(found)

    def _shown_modal(self, custom_id: str, user_id: str) -> tuple[dict[str, Any], str] | None:
        """The last modal ``custom_id`` opened for ``user_id``, and its channel."""
        for callback in reversed(self.callbacks):
            record = self.interactions[callback.token]
            mine = record.user_id == user_id and callback.type == 9
            if mine and callback.data.get("custom_id") == custom_id:
                return callback.data, record.channel_id
        return None

    def _register(self, payload: dict[str, Any], user_id: str, message_id: str | None) -> None:
        record = InteractionRecord(
            id=payload["id"],
            token=payload["token"],
            type=payload["type"],
            channel_id=payload["channel_id"],
            guild_id=payload.get("guild_id"),
            user_id=user_id,
            dispatched_at=now(),
            message_id=message_id,
        )
        self.interactions[record.token] = record
        self.dispatched_at[record.id] = record.dispatched_at

    def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self.gateway.broadcast, event, data)
