"""Running the Discord adapter: log in, sync the slash commands, hold the gateway.

The gateway URL comes from ``GET /gateway/bot`` on ``DISCORD_API_URL``, as Discord asks
clients to do (discord.py's plain client would dial its built-in address). Without
``REDIS_URL`` the worker runs in this process, answering through the client's own REST
session; with Redis this process only acknowledges and enqueues.

What Discord refuses ends the process with one line: a bad token (HTTP 401 at login or
gateway close 4004) and privileged intents not enabled in the Developer Portal (4014,
naming which).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket

from bot.app import App, open_app
from bot.discord.client import DeskbotClient
from bot.discord.portal import intents_refused, missing_intents
from bot.discord.rest import LOGIN_REFUSED, use_api_url
from bot.errors import ConfigError
from bot.health import serve_health
from bot.jobs import embedded_worker
from bot.settings import Settings
from bot.shutdown import on_signals

__all__ = ["connect", "discord_client", "run_discord", "start_client"]

log = logging.getLogger(__name__)


def discord_client(app: App) -> DeskbotClient:
    """The gateway client with the adapter and the document commands on an open app."""
    return DeskbotClient(
        app.settings, app.state, app.conversations, app.knowledge, backend=app.backend
    )


@contextlib.asynccontextmanager
async def start_client(app: App) -> AsyncIterator[DeskbotClient]:
    """Log in, point the gateway at ``/gateway/bot``'s answer, and sync the commands.

    Yields the client, not yet connected; closes it on exit.

    Raises:
        ConfigError: Discord refused the token.
    """
    settings = app.settings
    assert settings.discord_token is not None
    use_api_url(settings.discord_api_url)
    client = discord_client(app)
    async with client:
        try:
            await client.login(settings.discord_token.get_secret_value())
            _, gateway, _ = await client.http.get_bot_gateway()
        except discord.LoginFailure:
            raise ConfigError(LOGIN_REFUSED) from None
        except (aiohttp.ClientError, OSError, discord.DiscordException) as exc:
            reason = str(exc) or type(exc).__name__
            raise ConfigError(
                f"DISCORD_API_URL: cannot log in at {settings.discord_api_url}: {reason}"
            ) from None
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        where = await client.sync_commands(settings.discord_guild_ids)
        log.info("slash commands synced %s", ", ".join(where))
        yield client


async def connect(client: DeskbotClient) -> None:
    """Hold the gateway connection (discord.py reconnects and resumes by itself)."""
    try:
        await client.connect(reconnect=True)
    except discord.PrivilegedIntentsRequired:
        flags = client.application_flags
        raise ConfigError(intents_refused(missing_intents(flags))) from None
    except discord.ConnectionClosed as exc:
        if exc.code == 4004:
            raise ConfigError(LOGIN_REFUSED) from None
        raise


async def run_discord(settings: Settings, *, sync_only: bool = False) -> None:
    """Serve Discord until SIGINT/SIGTERM (or only sync the commands)."""
    shutdown = on_signals()  # the first stops the gateway and drains; a second hurries
    stop = shutdown.stop
    async with open_app(settings) as app, start_client(app) as client:
        if sync_only:
            return
        # The worker stops (finishing its answers over the client's REST session) before
        # start_client's exit closes that session.
        health = serve_health(app, settings.health_port)
        async with health, embedded_worker(app, discord=client.rest, hurry=shutdown.hurry):
            gateway = asyncio.create_task(connect(client), name="deskbot-discord-gateway")
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({gateway, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if gateway.done():
                gateway.result()  # the reason it ended, raised
            gateway.cancel()  # no new events; the connection closes with the client
            await asyncio.gather(gateway, return_exceptions=True)
