"""The guild, users and stored objects of the fake Discord, in Discord's JSON shapes.

Pure data: :class:`World` builds and stores payloads; ``discord_api`` serves them over REST
and ``discord_gateway`` dispatches them. Every id is a string snowflake, as Discord sends it.
Messages are stored in their REST shape (no ``guild_id`` or ``member``); the gateway copy
adds both, as Discord's MESSAGE_CREATE does.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tests.secret_values import DISCORD_TOKEN

__all__ = [
    "ADMIN_ID",
    "ADMIN_ROLE_ID",
    "APPLICATION_ID",
    "BOT_ID",
    "BOT_ROLE_ID",
    "CHANNEL_ID",
    "DEFAULT_TOKEN",
    "EVERYONE_PERMISSIONS",
    "GUILD_ID",
    "HR_ROLE_ID",
    "MANAGE_GUILD",
    "OTHER_CHANNEL_ID",
    "OWNER_ID",
    "USER_ID",
    "World",
]

APPLICATION_ID = "1300000000000000001"
BOT_ID = APPLICATION_ID  # a bot user's id is its application's id
GUILD_ID = "1300000000000000010"
ADMIN_ROLE_ID = "1300000000000000011"
HR_ROLE_ID = "1300000000000000012"
BOT_ROLE_ID = "1300000000000000013"
CHANNEL_ID = "1300000000000000020"
OTHER_CHANNEL_ID = "1300000000000000021"
USER_ID = "1300000000000000030"
ADMIN_ID = "1300000000000000031"
OWNER_ID = "1300000000000000032"
DEFAULT_TOKEN = DISCORD_TOKEN  # real-looking: a leak check can find it in a log

MANAGE_GUILD = 1 << 5
# View, send, embed, attach, history, reactions, slash commands, threads: a default member.
EVERYONE_PERMISSIONS = sum(1 << b for b in (6, 10, 11, 14, 15, 16, 31, 35, 38))
# Kick, ban, manage messages, moderate members: what the bot's role is given to moderate.
MODERATION_PERMISSIONS = sum(1 << b for b in (1, 2, 13, 40))
ALL_PERMISSIONS = (1 << 51) - 1
DISCORD_EPOCH_MS = 1420070400000
_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def now_iso() -> str:
    """The current time as Discord writes timestamps."""
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Fresh snowflakes: the creation time in the high bits, strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        """A new id."""
        with self._lock:
            stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            self._last = max(stamp, self._last + 1)
            return str(self._last)


def user_payload(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    """A user object."""
    return {
        "id": user_id,
        "username": name,
        "global_name": None if bot else name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def member_payload(
    user: dict[str, Any], roles: Iterable[str], timeout: datetime | None = None
) -> dict[str, Any]:
    """A guild member object with its user (``timeout``: communication disabled until)."""
    return {
        "user": user,
        "roles": list(roles),
        "nick": None,
        "avatar": None,
        "joined_at": "2025-01-06T09:00:00.000000+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None if timeout is None else timeout.isoformat(),
    }


def role_payload(role_id: str, name: str, permissions: int, position: int) -> dict[str, Any]:
    """A role object."""
    return {
        "id": role_id,
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "managed": False,
        "mentionable": True,
        "flags": 0,
    }


def text_channel(channel_id: str, name: str, position: int) -> dict[str, Any]:
    """A guild text channel (type 0)."""
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": GUILD_ID,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "rate_limit_per_user": 0,
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "parent_id": None,
        "default_auto_archive_duration": 1440,
        "flags": 0,
    }


class World:
    """The seeded guild and everything created since; callers hold ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ids = Snowflakes()
        self.users: dict[str, dict[str, Any]] = {
            BOT_ID: user_payload(BOT_ID, "deskbot", bot=True),
            USER_ID: user_payload(USER_ID, "alice"),
            ADMIN_ID: user_payload(ADMIN_ID, "admin"),
            OWNER_ID: user_payload(OWNER_ID, "owner"),
        }
        self.member_roles: dict[str, list[str]] = {
            BOT_ID: [BOT_ROLE_ID],
            USER_ID: [],
            ADMIN_ID: [ADMIN_ROLE_ID],
            OWNER_ID: [],
        }
        self.roles = [
            role_payload(GUILD_ID, "@everyone", EVERYONE_PERMISSIONS, 0),
            role_payload(ADMIN_ROLE_ID, "Admin", EVERYONE_PERMISSIONS | MANAGE_GUILD, 3),
            role_payload(HR_ROLE_ID, "HR", EVERYONE_PERMISSIONS, 1),
            # The bot's integration role: above HR and plain members, below Admin.
            {
                **role_payload(BOT_ROLE_ID, "deskbot", MODERATION_PERMISSIONS, 2),
                "managed": True,
                "tags": {"bot_id": BOT_ID},
            },
        ]
        self.timeouts: dict[str, datetime | None] = {}  # communication_disabled_until
        self.channels = {
            CHANNEL_ID: text_channel(CHANNEL_ID, "general", 0),
            OTHER_CHANNEL_ID: text_channel(OTHER_CHANNEL_ID, "random", 1),
        }
        self.threads: dict[str, dict[str, Any]] = {}
        self.dms: dict[str, dict[str, Any]] = {}  # by recipient user id
        self.closed_dms: set[str] = set()  # users who allow no DMs from server members
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> id -> message
        self.commands: dict[str | None, list[dict[str, Any]]] = {}  # guild id (None: global)
        self.command_ids: dict[tuple[str | None, str, int], str] = {}
        self.attachments: dict[str, tuple[dict[str, Any], bytes]] = {}

    # --- the guild ----------------------------------------------------------------------

    def member(self, user_id: str, roles: Iterable[str] | None = None) -> dict[str, Any]:
        """``user_id``'s member object (``roles`` replaces the seeded ones)."""
        given = self.member_roles.get(user_id, []) if roles is None else roles
        return member_payload(self.users[user_id], given, self.timeouts.get(user_id))

    def top_position(self, roles: Iterable[str]) -> int:
        """The position of a member's highest role (0: only @everyone)."""
        wanted = set(roles)
        return max((r["position"] for r in self.roles if r["id"] in wanted), default=0)

    def permissions(self, roles: Iterable[str], user_id: str) -> int:
        """A member's guild permissions: @everyone's and each role's, all for the owner."""
        if user_id == OWNER_ID:
            return ALL_PERMISSIONS
        wanted = {GUILD_ID, *roles}
        return _or(int(r["permissions"]) for r in self.roles if r["id"] in wanted)

    def guild(self, *, all_members: bool) -> dict[str, Any]:
        """GUILD_CREATE's guild; without the members intent only the bot's member is sent."""
        shown = self.member_roles if all_members else [BOT_ID]
        return {
            "id": GUILD_ID,
            "name": "deskbot test",
            "icon": None,
            "owner_id": OWNER_ID,
            "system_channel_id": CHANNEL_ID,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "features": [],
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "unavailable": False,
            "large": False,
            "joined_at": "2025-01-06T09:00:00.000000+00:00",
            "member_count": len(self.member_roles),
            "members": [self.member(uid) for uid in shown],
            "channels": list(self.channels.values()),
            "threads": [t for t in self.threads.values() if not t["thread_metadata"]["archived"]],
            "presences": [],
            "voice_states": [],
        }

    def guild_of(self, channel_id: str) -> str | None:
        """The guild a channel or thread belongs to (None: a DM)."""
        return GUILD_ID if channel_id in self.channels or channel_id in self.threads else None

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        """A guild channel, thread or DM channel by id."""
        if channel_id in self.channels:
            return self.channels[channel_id]
        if channel_id in self.threads:
            return self.threads[channel_id]
        return next((dm for dm in self.dms.values() if dm["id"] == channel_id), None)

    def dm(self, user_id: str) -> dict[str, Any]:
        """The DM channel with ``user_id`` (the same one each time)."""
        if user_id not in self.dms:
            self.dms[user_id] = {
                "id": self.ids.next(),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.users[user_id]],
            }
        return self.dms[user_id]

    def refuses_dm(self, channel_id: str) -> bool:
        """Whether ``channel_id`` is the DM of a user who closed their DMs."""
        return any(self.dms.get(user, {}).get("id") == channel_id for user in self.closed_dms)

    def thread(self, parent_id: str, name: str, owner_id: str, thread_id: str) -> dict[str, Any]:
        """A new public thread (type 11) under ``parent_id``."""
        stamp = now_iso()
        thread: dict[str, Any] = {
            "id": thread_id,
            "guild_id": GUILD_ID,
            "parent_id": parent_id,
            "owner_id": owner_id,
            "name": name,
            "type": 11,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": stamp,
                "locked": False,
                "create_timestamp": stamp,
            },
        }
        if owner_id == BOT_ID:
            thread["member"] = {
                "id": thread_id,
                "user_id": BOT_ID,
                "join_timestamp": stamp,
                "flags": 1,
            }
        self.threads[thread_id] = thread
        return thread

    # --- messages -----------------------------------------------------------------------

    def new_message(
        self, channel_id: str, author_id: str, content: str, **fields: Any
    ) -> dict[str, Any]:
        """Store a message in its REST shape; ``fields`` overrides any key."""
        author = self.users.get(author_id) or user_payload(author_id, f"user{author_id[-4:]}")
        message: dict[str, Any] = {
            "id": fields.pop("id", None) or self.ids.next(),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mention_roles": [],
            "mentions": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        message.update(fields)
        self._mentions(message)
        self.messages.setdefault(channel_id, {})[message["id"]] = message
        holder = self.channel(channel_id)
        if holder is not None:
            holder["last_message_id"] = message["id"]
        return message

    def edit_message(self, message: dict[str, Any], changes: Mapping[str, Any]) -> None:
        """Apply an edit (content, embeds, components, flags, attachments) in place."""
        for key in ("content", "embeds", "components", "flags", "attachments"):
            if key in changes and changes[key] is not None:
                message[key] = changes[key]
        message["edited_timestamp"] = now_iso()
        self._mentions(message)

    def reply_fields(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        """A reply's type 19, ``message_reference`` and ``referenced_message`` (None: unknown)."""
        replied = self.find_message(channel_id, message_id)
        if replied is None:
            return None
        where = {"channel_id": channel_id, "guild_id": self.guild_of(channel_id)}
        reference = {"type": 0, "message_id": message_id, **where}
        return {"type": 19, "message_reference": reference, "referenced_message": dict(replied)}

    def find_message(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        """A stored message."""
        return self.messages.get(channel_id, {}).get(message_id)

    def history(
        self, channel_id: str, *, before: str | None, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Messages newest first, as GET /channels/{id}/messages answers."""
        ordered = sorted(self.messages.get(channel_id, {}).values(), key=lambda m: int(m["id"]))
        if before:
            ordered = [m for m in ordered if int(m["id"]) < int(before)][-limit:]
        elif after:
            ordered = [m for m in ordered if int(m["id"]) > int(after)][:limit]
        else:
            ordered = ordered[-limit:]
        return ordered[::-1]

    def for_gateway(self, message: dict[str, Any]) -> dict[str, Any]:
        """The gateway's copy: ``guild_id``, the author's ``member``, members on mentions."""
        guild_id = self.guild_of(message["channel_id"])
        if guild_id is None:
            return dict(message)
        event = {**message, "guild_id": guild_id}
        author_id = message["author"]["id"]
        if author_id in self.member_roles and "webhook_id" not in message:
            event["member"] = {k: v for k, v in self.member(author_id).items() if k != "user"}
        event["mentions"] = [
            {**u, "member": {k: v for k, v in self.member(u["id"]).items() if k != "user"}}
            if u["id"] in self.member_roles
            else u
            for u in message["mentions"]
        ]
        return event

    def _mentions(self, message: dict[str, Any]) -> None:
        ids = dict.fromkeys(_MENTION.findall(message["content"]))
        message["mentions"] = [self.users[i] for i in ids if i in self.users]
        message["mention_roles"] = list(dict.fromkeys(_ROLE_MENTION.findall(message["content"])))


def _or(values: Iterable[int]) -> int:
    total = 0
    for value in values:
        total |= value
    return total
