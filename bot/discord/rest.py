"""Discord's REST API, for every process: what a worker needs to answer without a gateway.

A worker holds no gateway connection: it posts, edits, starts threads, reads history and
answers interactions through REST alone, with discord.py's HTTP client (which keeps
Discord's per-route rate-limit buckets and retries 429s after ``retry_after``). The
gateway process hands its own client's HTTP session in, so it keeps one set of buckets.

discord.py builds every REST and interaction-webhook URL from one class attribute,
``discord.http.Route.BASE``; :func:`use_api_url` points it at ``DISCORD_API_URL``
(Discord's own ``https://discord.com/api/v10`` unless a test or a proxy says otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import discord
from discord.http import HTTPClient, Route

from bot.errors import ConfigError

__all__ = [
    "LOGIN_REFUSED",
    "UNKNOWN_CHANNEL",
    "UNKNOWN_MESSAGE",
    "UNKNOWN_WEBHOOK",
    "DiscordREST",
    "RestError",
    "use_api_url",
]

log = logging.getLogger(__name__)

LOGIN_REFUSED = (
    "DISCORD_TOKEN: Discord refused the token (reset it under Bot in the Developer Portal)"
)
UNKNOWN_WEBHOOK = 10015
"""Discord's error code for an interaction token past its 15 minutes."""
THREAD_EXISTS = 160004
"""Discord's error code for starting a second thread from one message."""
UNKNOWN_CHANNEL = 10003
"""Discord's error code for a channel or thread that is not there."""
UNKNOWN_MESSAGE = 10008
"""Discord's error code for a message that is not there (already deleted)."""


def use_api_url(api_url: str) -> None:
    """Make discord.py send every REST call (webhooks included) to ``api_url``."""
    Route.BASE = api_url.rstrip("/")


class RestError(Exception):
    """A Discord REST call failed: its HTTP status and Discord's error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"HTTP {status} (code {code}): {message}")
        self.status = status
        self.code = code


class DiscordREST:
    """The REST calls deskbot makes, as plain JSON in and out.

    Args:
        token: The bot token.
        api_url: The REST base (``DISCORD_API_URL``).
        http: An HTTP client already logged in (the gateway client's); without one, a
            client is created and logged in on first use and closed by :meth:`close`.
    """

    def __init__(self, token: str, api_url: str, *, http: HTTPClient | None = None) -> None:
        self._token = token
        self._api_url = api_url
        self._http = http
        self._owned = http is None
        self._lock = asyncio.Lock()
        self.bot_user_id: str | None = None

    async def _client(self) -> HTTPClient:
        async with self._lock:
            if self._http is None:
                use_api_url(self._api_url)
                http = HTTPClient(asyncio.get_running_loop())
                try:
                    me = await http.static_login(self._token)
                except discord.LoginFailure:
                    await http.close()
                    raise ConfigError(LOGIN_REFUSED) from None
                except BaseException:
                    await http.close()
                    raise
                self.bot_user_id = str(me["id"])
                self._http = http
            return self._http

    async def call(self, method: str, path: str, /, **kwargs: Any) -> Any:
        """One request; ``path`` may hold ``{name}`` parts filled from ``params``.

        Raises:
            RestError: Discord answered with an error (after discord.py's 429 retries).
        """
        params: dict[str, Any] = kwargs.pop("path_params", {})
        http = await self._client()
        try:
            return await http.request(Route(method, path, **params), **kwargs)
        except discord.HTTPException as exc:
            raise RestError(exc.status, exc.code, exc.text) from None

    async def me(self) -> str:
        """The bot's own user id."""
        if self.bot_user_id is None:
            self.bot_user_id = str((await self.call("GET", "/users/@me"))["id"])
        return self.bot_user_id

    async def send(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Post a message in a channel, thread or DM channel."""
        path = "/channels/{channel_id}/messages"
        ids = {"channel_id": channel_id}
        return dict(await self.call("POST", path, json=body, path_params=ids))

    async def edit(self, channel_id: str, message_id: str, body: dict[str, Any]) -> None:
        """Replace a message's content, embeds and components."""
        path = "/channels/{channel_id}/messages/{message_id}"
        ids = {"channel_id": channel_id, "message_id": message_id}
        await self.call("PATCH", path, json=body, path_params=ids)

    async def start_thread(self, channel_id: str, message_id: str, name: str) -> str:
        """The thread started from ``message_id`` (its id is the message's), created if new."""
        path = "/channels/{channel_id}/messages/{message_id}/threads"
        ids = {"channel_id": channel_id, "message_id": message_id}
        body = {"name": name, "auto_archive_duration": 1440}
        try:
            thread = await self.call("POST", path, json=body, path_params=ids)
        except RestError as exc:
            if exc.code == THREAD_EXISTS:  # a redelivered job: the thread is already there
                return message_id
            raise
        return str(thread["id"])

    async def history(
        self, channel_id: str, *, before: str | None = None, after: str | None = None, limit: int
    ) -> list[dict[str, Any]]:
        """Messages before ``before`` (or the first ones after ``after``), oldest first."""
        path = "/channels/{channel_id}/messages"
        query: dict[str, Any] = {"limit": limit}
        query |= {"before": before} if before is not None else {}
        query |= {"after": after} if after is not None else {}
        items = await self.call("GET", path, params=query, path_params={"channel_id": channel_id})
        return list(reversed(items))

    async def dm_channel(self, user_id: str) -> str:
        """The id of the bot's DM channel with ``user_id``."""
        channel = await self.call("POST", "/users/@me/channels", json={"recipient_id": user_id})
        return str(channel["id"])

    async def edit_original(self, application_id: str, token: str, body: dict[str, Any]) -> None:
        """Edit an interaction's first response (its deferred "thinking" message)."""
        await self.edit_followup(application_id, token, "@original", body)

    async def edit_followup(
        self, application_id: str, token: str, message_id: str, body: dict[str, Any]
    ) -> None:
        """Edit one of an interaction's messages (``@original`` is its first response)."""
        ids = _webhook_message(application_id, token, message_id)
        await self.call("PATCH", _WEBHOOK_MESSAGE, json=body, path_params=ids)

    async def webhook_message(
        self, application_id: str, token: str, message_id: str
    ) -> dict[str, Any]:
        """One of an interaction's messages (``@original`` is its first response)."""
        ids = _webhook_message(application_id, token, message_id)
        return dict(await self.call("GET", _WEBHOOK_MESSAGE, path_params=ids))

    async def delete_followup(self, application_id: str, token: str, message_id: str) -> None:
        """Delete an interaction's follow-up message; one already gone counts as deleted."""
        ids = _webhook_message(application_id, token, message_id)
        try:
            await self.call("DELETE", _WEBHOOK_MESSAGE, path_params=ids)
        except RestError as exc:
            if exc.code != UNKNOWN_MESSAGE:
                raise

    async def followup(self, application_id: str, token: str, body: dict[str, Any]) -> str:
        """Send a further message for an interaction (``flags`` 64 makes it ephemeral); its id."""
        path = "/webhooks/{webhook_id}/{webhook_token}"
        ids = {"webhook_id": application_id, "webhook_token": token}
        sent = await self.call("POST", path, json=body, params={"wait": "true"}, path_params=ids)
        return str(sent["id"])

    async def delete_message(self, channel_id: str, message_id: str, *, reason: str) -> None:
        """Delete a message; one already gone counts as deleted."""
        path = "/channels/{channel_id}/messages/{message_id}"
        ids = {"channel_id": channel_id, "message_id": message_id}
        try:
            await self.call("DELETE", path, path_params=ids, reason=reason)
        except RestError as exc:
            if exc.code != UNKNOWN_MESSAGE:
                raise

    async def timeout_member(
        self, guild_id: str, user_id: str, until: datetime | None, *, reason: str
    ) -> None:
        """Time a member out until ``until`` (UTC), or lift their timeout with None."""
        path = "/guilds/{guild_id}/members/{user_id}"
        ids = {"guild_id": guild_id, "user_id": user_id}
        body = {"communication_disabled_until": until.isoformat() if until else None}
        await self.call("PATCH", path, json=body, path_params=ids, reason=reason)

    async def kick(self, guild_id: str, user_id: str, *, reason: str) -> None:
        """Remove a member from the guild (they may join again)."""
        path = "/guilds/{guild_id}/members/{user_id}"
        ids = {"guild_id": guild_id, "user_id": user_id}
        await self.call("DELETE", path, path_params=ids, reason=reason)

    async def ban(self, guild_id: str, user_id: str, *, reason: str) -> None:
        """Ban a user from the guild (their messages stay)."""
        path = "/guilds/{guild_id}/bans/{user_id}"
        ids = {"guild_id": guild_id, "user_id": user_id}
        await self.call("PUT", path, json={}, path_params=ids, reason=reason)

    async def close(self) -> None:
        """Close the HTTP session this object opened (not one handed in)."""
        if self._owned and self._http is not None:
            await self._http.close()
            self._http = None


# discord.py keys rate-limit buckets on webhook_id and webhook_token: named so, each
# interaction gets its own bucket instead of all sharing one
_WEBHOOK_MESSAGE = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"


def _webhook_message(application_id: str, token: str, message_id: str) -> dict[str, str]:
    return {"webhook_id": application_id, "webhook_token": token, "message_id": message_id}
