"""The REST routes of the fake Discord: what each answers, in Discord's shapes and errors.

Handlers run on the fake's event loop with the world's lock held; each takes the recorded
:class:`Call` and the route's path groups and returns a :class:`Reply`. Messages the bot
posts or edits are dispatched to the gateway too, as Discord does. Interaction webhooks and
callbacks are authorized by their token (no ``Authorization``), everything else by the bot
token.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.discord_guild import MANAGE_MESSAGES, GuildRoutes
from tests.fakes.discord_http import (
    Call,
    Callback,
    CommandSync,
    DiscordServer,
    Part,
    Reply,
    Route,
    error,
)
from tests.fakes.discord_interactions import InteractionRecord, sync_commands
from tests.fakes.discord_world import APPLICATION_ID, BOT_ID, OWNER_ID

__all__ = ["RestRoutes"]

EPHEMERAL, LOADING = 1 << 6, 1 << 7
MAX_CONTENT, MAX_EMBEDS, MAX_NONCE = 2000, 10, 25
NONCE_WINDOW = 120.0
"""Seconds a create's nonce is remembered with ``enforce_nonce`` (Discord: "a few minutes")."""


UNKNOWN_CHANNEL = error(404, 10003, "Unknown Channel")
UNKNOWN_MESSAGE = error(404, 10008, "Unknown Message")
UNKNOWN_WEBHOOK = error(404, 10015, "Unknown Webhook")
UNKNOWN_INTERACTION = error(404, 10062, "Unknown interaction")


class RestRoutes(GuildRoutes, DiscordServer):
    """Discord's routes; :class:`FakeDiscord` supplies the state they share."""

    ack_deadline: float | None
    interactions: dict[str, InteractionRecord]  # by token
    callbacks: list[Callback]
    threads: list[dict[str, Any]]
    command_syncs: list[CommandSync]
    nonces: dict[tuple[str, str], tuple[str, str, float]]  # (author, nonce): channel, id, at

    def routes(self) -> list[Route]:
        """(method, path pattern after /api/v10, handler, needs the bot token)."""
        app, guild = r"/applications/(\d+)", r"/guilds/(\d+)"
        hook, verbs = r"/webhooks/(\d+)/([^/]+)", ("GET", "PATCH", "DELETE")
        table: list[tuple[str, str, Any, bool]] = [
            ("GET", r"/gateway/bot", self._gateway_bot, True),
            ("GET", r"/gateway", self._gateway_bot, False),
            ("GET", r"/users/@me", self._me, True),
            ("GET", r"/(?:oauth2/)?applications/@me", self._application, True),
            ("GET", app + r"/commands", self._get_commands, True),
            ("PUT", app + r"/commands", self._put_commands, True),
            ("GET", app + guild + r"/commands", self._get_commands, True),
            ("PUT", app + guild + r"/commands", self._put_commands, True),
            ("GET", guild + r"/members/(\d+)", self._get_member, True),
            ("POST", r"/users/@me/channels", self._open_dm, True),
            ("GET", r"/channels/(\d+)", self._get_channel, True),
            ("POST", r"/channels/(\d+)/typing", self._no_content, True),
            ("PUT", r"/channels/(\d+)/thread-members/@me", self._no_content, True),
            ("GET", r"/channels/(\d+)/messages", self._history, True),
            ("POST", r"/channels/(\d+)/messages", self._post_message, True),
            ("GET", r"/channels/(\d+)/messages/(\d+)", self._get_message, True),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._patch_message, True),
            ("DELETE", r"/channels/(\d+)/messages/(\d+)", self._delete_message, True),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._start_thread, True),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback, False),
            ("POST", hook, self._followup, False),
            *[(m, hook + r"/messages/(@original|\d+)", self._hook, False) for m in verbs],
            *self.guild_routes(),
        ]
        return [(m, re.compile(p), h, auth) for m, p, h, auth in table]

    # --- login, gateway, application commands ----------------------------------------

    def _gateway_bot(self, call: Call) -> Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
        return Reply(200, {"url": self.gateway.url, "shards": 1, "session_start_limit": limit})

    def _me(self, call: Call) -> Reply:
        user = self.world.users[BOT_ID]
        return Reply(200, {**user, "verified": True, "mfa_enabled": False, "locale": "en-US"})

    def _application(self, call: Call) -> Reply:
        owner = self.world.users[OWNER_ID]
        return Reply(
            200,
            {
                "id": APPLICATION_ID,
                "name": "deskbot",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": owner,
                "team": None,
                "flags": self.gateway.application_flags,
                "bot": self.world.users[BOT_ID],
                "interactions_endpoint_url": None,
                "approximate_guild_count": 1,
            },
        )

    def _get_commands(self, call: Call, app: str, guild: str | None = None) -> Reply:
        return Reply(200, self.world.commands.get(guild, []))

    def _put_commands(self, call: Call, app: str, guild: str | None = None) -> Reply:
        if app != APPLICATION_ID:
            return error(403, 50001, "Missing Access")
        stored = sync_commands(self.world, guild, list(call.json or []))
        self.command_syncs.append(CommandSync(guild, [c["name"] for c in stored], call.at))
        return Reply(200, stored)

    def _get_member(self, call: Call, guild: str, user: str) -> Reply:
        if user not in self.world.member_roles:
            return error(404, 10007, "Unknown Member")
        return Reply(200, self.world.member(user))

    # --- channels, messages, threads ----------------------------------------------------

    def _open_dm(self, call: Call) -> Reply:
        recipient = str((call.json or {}).get("recipient_id"))
        if recipient not in self.world.users:
            return error(400, 50033, "Invalid Recipient(s)")
        return Reply(200, self.world.dm(recipient))

    def _get_channel(self, call: Call, channel_id: str) -> Reply:
        channel = self.world.channel(channel_id)
        return UNKNOWN_CHANNEL if channel is None else Reply(200, channel)

    def _no_content(self, call: Call, channel_id: str) -> Reply:
        return UNKNOWN_CHANNEL if self.world.channel(channel_id) is None else Reply(204)

    def _history(self, call: Call, channel_id: str) -> Reply:
        if self.world.channel(channel_id) is None:
            return UNKNOWN_CHANNEL
        limit = min(max(int(call.query.get("limit", 50)), 1), 100)
        found = self.world.history(
            channel_id, before=call.query.get("before"), after=call.query.get("after"), limit=limit
        )
        return Reply(200, [fetched(m) for m in found if not m["flags"] & EPHEMERAL])

    def _post_message(self, call: Call, channel_id: str) -> Reply:
        if self.world.channel(channel_id) is None:
            return UNKNOWN_CHANNEL
        if self.world.refuses_dm(channel_id):  # as Discord: the DM channel opens, posts fail
            return error(403, 50007, "Cannot send messages to this user")
        body = body_of(call)
        refused = refusal(body, files=bool(call.parts and len(call.parts) > 1))
        if refused is not None:
            return refused
        earlier = self._nonced(body, call)
        if earlier is not None:
            return earlier
        fields = self._message_fields(body, call)
        reference = body.get("message_reference")
        if reference:
            reply = self.world.reply_fields(channel_id, str(reference.get("message_id")))
            if reply is None:
                return error(400, 50035, "Invalid Form Body", errors={"message_reference": "?"})
            fields.update(reply)
        message = self.world.new_message(channel_id, BOT_ID, body.get("content") or "", **fields)
        if body.get("nonce") is not None:
            self.nonces[(BOT_ID, str(body["nonce"]))] = (channel_id, message["id"], call.at)
        self.gateway.broadcast("MESSAGE_CREATE", self.world.for_gateway(message))
        return Reply(200, message)

    def _nonced(self, body: dict[str, Any], call: Call) -> Reply | None:
        """Discord's answer to a create whose nonce is bad, or seen with ``enforce_nonce``.

        A nonce is an integer or a string of at most 25 characters. With ``enforce_nonce``,
        a create whose author used the same nonce within the last few minutes creates
        nothing: the message already made is returned (if it still exists).
        """
        nonce = body.get("nonce")
        if nonce is None:
            return None
        if not isinstance(nonce, str | int) or len(str(nonce)) > MAX_NONCE:
            return error(400, 50035, "Invalid Form Body", errors={"nonce": "Invalid nonce"})
        seen = self.nonces.get((BOT_ID, str(nonce)))
        if not body.get("enforce_nonce") or seen is None or call.at - seen[2] > NONCE_WINDOW:
            return None
        message = self.world.find_message(seen[0], seen[1])
        return None if message is None else Reply(200, message)

    def _get_message(self, call: Call, channel_id: str, message_id: str) -> Reply:
        message = self.world.find_message(channel_id, message_id)
        return UNKNOWN_MESSAGE if message is None else Reply(200, fetched(message))

    def _patch_message(self, call: Call, channel_id: str, message_id: str) -> Reply:
        message = self.world.find_message(channel_id, message_id)
        if message is None:
            return UNKNOWN_MESSAGE
        if message["author"]["id"] != BOT_ID:
            return error(403, 50005, "Cannot edit a message authored by another user")
        return self.edit(message, call)

    def _delete_message(self, call: Call, channel_id: str, message_id: str) -> Reply:
        message = self.world.find_message(channel_id, message_id)
        if message is None:
            return UNKNOWN_MESSAGE
        if message["author"]["id"] != BOT_ID:  # someone else's: Manage Messages, not in DMs
            if self.world.guild_of(channel_id) is None:
                return error(403, 50003, "Cannot execute action on a DM channel")
            if (
                not self.world.permissions(self.world.member_roles[BOT_ID], BOT_ID)
                & MANAGE_MESSAGES
            ):
                return error(403, 50013, "Missing Permissions")
        self.audit("message_delete", message_id, call)
        return self.delete(message)

    def _start_thread(self, call: Call, channel_id: str, message_id: str) -> Reply:
        if channel_id not in self.world.channels:
            return UNKNOWN_CHANNEL
        message = self.world.find_message(channel_id, message_id)
        if message is None:
            return UNKNOWN_MESSAGE
        if message_id in self.world.threads:
            return error(400, 160004, "A thread has already been created for this message")
        name = str((call.json or {}).get("name") or "")
        if not 1 <= len(name) <= 100:
            return error(400, 50035, "Invalid Form Body", errors={"name": "1 to 100 characters"})
        thread = self.world.thread(channel_id, name, BOT_ID, message_id)
        message["thread"] = thread
        message["flags"] |= 1 << 5  # HAS_THREAD
        self.threads.append(thread)
        self.gateway.broadcast("THREAD_CREATE", {**thread, "newly_created": True})
        return Reply(201, thread)

    # --- interactions -------------------------------------------------------------------

    def _callback(self, call: Call, interaction_id: str, token: str) -> Reply:
        record = self.interactions.get(token)
        if record is None or record.id != interaction_id or record.expired:
            return UNKNOWN_INTERACTION
        if record.acknowledged:
            return error(400, 40060, "Interaction has already been acknowledged.")
        late = self.ack_deadline is not None and call.at - record.dispatched_at > self.ack_deadline
        if late:
            return UNKNOWN_INTERACTION  # Discord's answer after its 3 seconds
        body = body_of(call)
        kind, data = int(body.get("type", 0)), body.get("data") or {}
        if kind in (4, 7) and (refused := refusal(data, files=False)) is not None:
            return refused
        if kind == 9 and (record.type == 5 or not data.get("custom_id") or not data.get("title")):
            return error(400, 50035, "Invalid Form Body", errors={"data": "not a valid modal"})
        record.acknowledged = True
        self.callbacks.append(Callback(record.id, token, kind, data, record.dispatched_at, call.at))
        message = self._respond(record, kind, data, call)
        if "with_response" not in call.query:
            return Reply(204)
        answer: dict[str, Any] = {
            "interaction": {
                "id": record.id,
                "type": record.type,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
            }
        }
        if message is not None:
            answer["resource"] = {"type": kind, "message": message}
        return Reply(200, answer)

    def _respond(
        self, record: InteractionRecord, kind: int, data: dict[str, Any], call: Call
    ) -> dict[str, Any] | None:
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) & EPHEMERAL | (LOADING if kind == 5 else 0)
            content = data.get("content") or "" if kind == 4 else ""
            fields = self._message_fields(data, call) if kind == 4 else {}
            message = self._hook_message(record, content, {**fields, "flags": flags})
            record.message_id = message["id"]
            return message
        if kind == 7 and record.message_id:
            clicked = self.world.find_message(record.channel_id, record.message_id)
            if clicked is not None:
                self.world.edit_message(clicked, data)
                self.gateway.broadcast("MESSAGE_UPDATE", self.world.for_gateway(clicked))
            return clicked
        return None

    def _followup(self, call: Call, app: str, token: str) -> Reply:
        record = self._webhook(app, token)
        if record is None or not record.acknowledged:
            return UNKNOWN_WEBHOOK
        body = body_of(call)
        refused = refusal(body, files=len(call.parts) > 1)
        if refused is not None:
            return refused
        original = self._original(record)
        if original is not None and original["flags"] & LOADING:
            # Discord: the first follow-up after a deferral replaces the loading message.
            self.edit(original, call)
            message = original
        else:
            flags = int(body.get("flags") or 0) & EPHEMERAL
            fields = {**self._message_fields(body, call), "flags": flags}
            message = self._hook_message(record, body.get("content") or "", fields)
            record.followups.append(message["id"])
        wait = call.query.get("wait", "").lower() in ("1", "true")
        return Reply(200, message) if wait else Reply(204)

    def _hook(self, call: Call, app: str, token: str, which: str) -> Reply:
        message = self._hook_target(app, token, which)
        if isinstance(message, Reply) or call.method == "GET":
            return message if isinstance(message, Reply) else Reply(200, message)
        return self.edit(message, call) if call.method == "PATCH" else self.delete(message)

    def _hook_target(self, app: str, token: str, which: str) -> dict[str, Any] | Reply:
        record = self._webhook(app, token)
        if record is None:
            return UNKNOWN_WEBHOOK
        wanted = record.message_id if which == "@original" else which
        if wanted is None or (wanted != record.message_id and wanted not in record.followups):
            return UNKNOWN_MESSAGE
        message = self.world.find_message(record.channel_id, wanted)
        return UNKNOWN_MESSAGE if message is None else message

    def _webhook(self, app: str, token: str) -> InteractionRecord | None:
        record = self.interactions.get(token)
        if app != APPLICATION_ID or record is None or record.expired:
            return None
        return record

    def _original(self, record: InteractionRecord) -> dict[str, Any] | None:
        if record.message_id is None:
            return None
        return self.world.find_message(record.channel_id, record.message_id)

    def _hook_message(
        self, record: InteractionRecord, content: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        user = self.world.users.get(record.user_id)
        metadata = {"id": record.id, "type": record.type, "user": user}
        fields.update(webhook_id=APPLICATION_ID, application_id=APPLICATION_ID)
        fields.update(interaction_metadata=metadata, type=20 if record.type == 2 else 0)
        message = self.world.new_message(record.channel_id, BOT_ID, content, **fields)
        if not message["flags"] & EPHEMERAL:
            self.gateway.broadcast("MESSAGE_CREATE", self.world.for_gateway(message))
        return message

    # --- shared by channel and webhook messages --------------------------------------

    def edit(self, message: dict[str, Any], call: Call) -> Reply:
        """PATCH a message: validate, apply, dispatch MESSAGE_UPDATE (not for ephemeral)."""
        body = body_of(call)
        refused = refusal({**message, **body}, files=len(call.parts) > 1)
        if refused is not None:
            return refused
        changes = {**body, **self._message_fields(body, call)}
        ephemeral = message["flags"] & EPHEMERAL
        self.world.edit_message(message, changes)
        # An edit cannot change who sees a message, and it ends the "thinking" state.
        message["flags"] = message["flags"] & ~(EPHEMERAL | LOADING) | ephemeral
        if not message["flags"] & EPHEMERAL:
            self.gateway.broadcast("MESSAGE_UPDATE", self.world.for_gateway(message))
        return Reply(200, message)

    def delete(self, message: dict[str, Any]) -> Reply:
        """Delete a message and dispatch MESSAGE_DELETE."""
        channel_id = message["channel_id"]
        self.world.messages[channel_id].pop(message["id"], None)
        event: dict[str, Any] = {"id": message["id"], "channel_id": channel_id}
        if (guild_id := self.world.guild_of(channel_id)) is not None:
            event["guild_id"] = guild_id
        if not message["flags"] & EPHEMERAL:
            self.gateway.broadcast("MESSAGE_DELETE", event)
        return Reply(204)

    def _message_fields(self, body: dict[str, Any], call: Call) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for key in ("embeds", "components", "tts", "nonce"):
            if body.get(key) is not None:
                fields[key] = body[key]
        if "embeds" in fields:
            fields["embeds"] = [{"type": "rich", **e} for e in fields["embeds"]]
        files = [p for p in call.parts if p.filename is not None]
        if files or "attachments" in body:
            kept = [a for a in body.get("attachments") or [] if "url" in a]
            fields["attachments"] = kept + [self.upload(p) for p in files]
        return fields

    def upload(self, part: Part) -> dict[str, Any]:
        """Store an uploaded file and describe it as Discord does (served by the CDN)."""
        attachment_id = self.world.ids.next()
        url = f"{self.url}/attachments/{attachment_id}/{part.filename}"
        attachment = {
            "id": attachment_id,
            "filename": part.filename,
            "size": len(part.data),
            "url": url,
            "proxy_url": url,
            "content_type": part.content_type,
        }
        self.world.attachments[attachment_id] = (attachment, part.data)
        return attachment


def fetched(message: dict[str, Any]) -> dict[str, Any]:
    """A message as GET returns it: a create's nonce is only in its response and event."""
    return {k: v for k, v in message.items() if k != "nonce"}


def body_of(call: Call) -> dict[str, Any]:
    """The JSON body, or a multipart request's ``payload_json``."""
    return call.json if isinstance(call.json, dict) else {}


def refusal(body: dict[str, Any], *, files: bool) -> Reply | None:
    """Discord's 400 for an empty or oversized message (None: acceptable)."""
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if not (content or embeds or body.get("components") or files or body.get("attachments")):
        return error(400, 50006, "Cannot send an empty message")
    problems: dict[str, Any] = {}
    if len(content) > MAX_CONTENT:
        problems["content"] = f"Must be {MAX_CONTENT} or fewer in length."
    if len(embeds) > MAX_EMBEDS:
        problems["embeds"] = f"Must be {MAX_EMBEDS} or fewer in length."
    for index, embed in enumerate(embeds):
        if len(embed.get("description") or "") > 4096 or len(embed.get("title") or "") > 256:
            problems[f"embeds.{index}"] = "Embed title/description too long."
        if len(embed.get("fields") or []) > 25:
            problems[f"embeds.{index}.fields"] = "Must be 25 or fewer in length."
    if problems:
        return error(400, 50035, "Invalid Form Body", errors=problems)
    return None
