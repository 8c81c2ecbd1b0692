"""What the Developer Portal must have enabled, checked before and while connecting.

``deskbot doctor`` reads the application (``GET /applications/@me``) and names the
privileged intents that are off; ``deskbot discord`` names the same ones when the gateway
refuses them (close code 4014). One message for both.
"""

from __future__ import annotations

from typing import Literal

import discord

from bot.discord.rest import LOGIN_REFUSED, DiscordREST
from bot.errors import ConfigError
from bot.settings import Settings

__all__ = ["check_application", "intents_refused", "missing_intents"]

_BOTH = ["Message Content Intent", "Server Members Intent"]


def missing_intents(flags: discord.ApplicationFlags) -> list[str]:
    """The privileged intents deskbot needs that the application has not enabled."""
    missing = []
    if not (flags.gateway_message_content or flags.gateway_message_content_limited):
        missing.append(_BOTH[0])
    if not (flags.gateway_guild_members or flags.gateway_guild_members_limited):
        missing.append(_BOTH[1])
    return missing


def intents_refused(names: list[str]) -> str:
    """The one line that says which intents to enable, and where."""
    return (
        f"Discord refused the privileged intents: enable {' and '.join(names or _BOTH)} in "
        "the Developer Portal (your application -> Bot -> Privileged Gateway Intents)"
    )


async def check_application(settings: Settings) -> tuple[Literal["ok", "fail"], str]:
    """Log in with ``DISCORD_TOKEN`` and check the application's privileged intents.

    Raises:
        RestError: Discord answered with an unexpected error.
        OSError: ``DISCORD_API_URL`` cannot be reached.
    """
    assert settings.discord_token is not None
    rest = DiscordREST(settings.discord_token.get_secret_value(), settings.discord_api_url)
    try:
        application = await rest.call("GET", "/applications/@me")
    except ConfigError:
        return "fail", LOGIN_REFUSED
    finally:
        await rest.close()
    flags = discord.ApplicationFlags._from_value(int(application.get("flags") or 0))
    missing = missing_intents(flags)
    if missing:
        return "fail", intents_refused(missing)
    name = application.get("name", "?")
    return "ok", f"application {name} ({application['id']}): token and privileged intents ok"
