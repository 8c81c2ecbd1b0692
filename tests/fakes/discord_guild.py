"""Moderation routes of the fake Discord: timeouts, kicks, bans, and who may act on whom.

Discord refuses to act on the guild owner, or on a member whose highest role is not below
the bot's highest role, with 403 Missing Permissions; the bot also needs the permission the
action asks for. Each action records the ``X-Audit-Log-Reason`` header (URL-quoted by
discord.py) in :attr:`GuildRoutes.audit_log` and dispatches what Discord dispatches.
Handlers run on the fake's event loop with the world's lock held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.fakes.discord_gateway import Gateway
from tests.fakes.discord_http import Call, Reply, error, now
from tests.fakes.discord_world import BOT_ID, GUILD_ID, OWNER_ID, World

__all__ = [
    "BAN_MEMBERS",
    "KICK_MEMBERS",
    "MANAGE_MESSAGES",
    "MISSING_PERMISSIONS",
    "MODERATE_MEMBERS",
    "AuditEntry",
    "GuildRoutes",
    "audit_reason",
]

KICK_MEMBERS, BAN_MEMBERS, MANAGE_MESSAGES, MODERATE_MEMBERS = 1 << 1, 1 << 2, 1 << 13, 1 << 40
MAX_TIMEOUT = timedelta(days=28)
MISSING_PERMISSIONS = error(403, 50013, "Missing Permissions")
UNKNOWN_MEMBER = error(404, 10007, "Unknown Member")


@dataclass
class AuditEntry:
    """One moderation action and the reason its request gave (None: no header).

    ``action`` is Discord's audit-log name: ``message_delete`` (``target_id``: the message),
    ``member_update`` (a timeout set or lifted), ``member_kick``, ``member_ban_add``.
    """

    action: str
    target_id: str
    reason: str | None
    at: float


def audit_reason(call: Call) -> str | None:
    """The request's ``X-Audit-Log-Reason``, unquoted as Discord reads it."""
    raw = call.headers.get("x-audit-log-reason")
    return None if raw is None else unquote(raw)


class GuildRoutes:
    """Member moderation; :class:`FakeDiscord` supplies ``world`` and ``gateway``."""

    world: World
    gateway: Gateway
    audit_log: list[AuditEntry]
    kicked: dict[str, str | None]  # user id -> audit reason
    banned: dict[str, str | None]

    def guild_routes(self) -> list[tuple[str, str, Any, bool]]:
        """(method, path pattern after /api/v10, handler, needs the bot token)."""
        member = r"/guilds/(\d+)/members/(\d+)"
        return [
            ("PATCH", member, self._patch_member, True),
            ("DELETE", member, self._kick, True),
            ("PUT", r"/guilds/(\d+)/bans/(\d+)", self._ban, True),
        ]

    @property
    def timeouts(self) -> dict[str, datetime | None]:
        """Each timed-out (or since lifted: None) member's ``communication_disabled_until``."""
        with self.world.lock:
            return dict(self.world.timeouts)

    def audit(self, action: str, target_id: str, call: Call) -> None:
        """Record an action with the request's audit-log reason."""
        self.audit_log.append(AuditEntry(action, target_id, audit_reason(call), now()))

    def refusal_to_act_on(self, user_id: str, permission: int) -> Reply | None:
        """Discord's 403 when the bot lacks ``permission`` or ranks too low for ``user_id``."""
        bot_roles = self.world.member_roles[BOT_ID]
        if not self.world.permissions(bot_roles, BOT_ID) & permission:
            return MISSING_PERMISSIONS
        if user_id == OWNER_ID:
            return MISSING_PERMISSIONS
        target = self.world.top_position(self.world.member_roles.get(user_id, []))
        return MISSING_PERMISSIONS if target >= self.world.top_position(bot_roles) else None

    def _patch_member(self, call: Call, guild: str, user: str) -> Reply:
        if guild != GUILD_ID or user not in self.world.member_roles:
            return UNKNOWN_MEMBER
        body = call.json if isinstance(call.json, dict) else {}
        if "communication_disabled_until" not in body:
            return Reply(200, self.world.member(user))  # other edits are not modelled
        until = _timestamp(body["communication_disabled_until"])
        if isinstance(until, Reply):
            return until
        refused = self.refusal_to_act_on(user, MODERATE_MEMBERS)
        if refused is not None:
            return refused
        self.world.timeouts[user] = until
        self.audit("member_update", user, call)
        member = self.world.member(user)
        self.gateway.broadcast("GUILD_MEMBER_UPDATE", {**member, "guild_id": GUILD_ID})
        return Reply(200, member)

    def _kick(self, call: Call, guild: str, user: str) -> Reply:
        if guild != GUILD_ID or user not in self.world.member_roles:
            return UNKNOWN_MEMBER
        refused = self.refusal_to_act_on(user, KICK_MEMBERS)
        if refused is not None:
            return refused
        self.kicked[user] = audit_reason(call)
        self.audit("member_kick", user, call)
        self._leave(user)
        return Reply(204)

    def _ban(self, call: Call, guild: str, user: str) -> Reply:
        if guild != GUILD_ID or user not in self.world.users:
            return error(404, 10013, "Unknown User")
        refused = self.refusal_to_act_on(user, BAN_MEMBERS)
        if refused is not None:
            return refused
        seconds = int(call.query.get("delete_message_seconds", 0))
        if not 0 <= seconds <= 604800:
            return error(400, 50035, "Invalid Form Body", errors={"delete_message_seconds": "?"})
        self.banned[user] = audit_reason(call)
        self.audit("member_ban_add", user, call)
        self._delete_recent(user, seconds)
        if user in self.world.member_roles:
            self._leave(user)
        event = {"guild_id": GUILD_ID, "user": self.world.users[user]}
        self.gateway.broadcast("GUILD_BAN_ADD", event)
        return Reply(204)

    def _leave(self, user: str) -> None:
        del self.world.member_roles[user]
        self.world.timeouts.pop(user, None)
        event = {"guild_id": GUILD_ID, "user": self.world.users[user]}
        self.gateway.broadcast("GUILD_MEMBER_REMOVE", event)

    def _delete_recent(self, user: str, seconds: int) -> None:
        """A ban deletes the user's guild messages of the last ``seconds``, as Discord does."""
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        for channel_id, messages in self.world.messages.items():
            if self.world.guild_of(channel_id) is None:
                continue
            for message in list(messages.values()):
                sent = datetime.fromisoformat(message["timestamp"])
                if message["author"]["id"] == user and sent >= since:
                    del messages[message["id"]]
                    event = {"id": message["id"], "channel_id": channel_id, "guild_id": GUILD_ID}
                    self.gateway.broadcast("MESSAGE_DELETE", event)


def _timestamp(value: Any) -> datetime | Reply | None:
    """A timeout's end (None lifts it); Discord allows at most 28 days ahead."""
    if value is None:
        return None
    try:
        until = datetime.fromisoformat(re.sub(r"Z$", "+00:00", str(value)))
    except ValueError:
        until = None
    if until is None or until.tzinfo is None or until > datetime.now(UTC) + MAX_TIMEOUT:
        problem = {"communication_disabled_until": "at most 28 days ahead, ISO 8601"}
        return error(400, 50035, "Invalid Form Body", errors=problem)
    return until
