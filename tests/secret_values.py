"""The secrets every test runs with, and the check that none of them reached a log.

Real-looking values for every secret ``bot.settings.Settings`` holds: the fakes take them
as their defaults (the fake Slack's bot token, the fake Discord's token), the shared
fixtures put the passwords into the database and Redis URLs, and test helpers that start
``deskbot`` processes set the rest. A leak check can only find what is distinctive: a toy
value like ``"test"`` is in every log. ``tests/conftest.py`` runs :func:`leaks` over every
log record of every test, and over the output of the ``deskbot`` processes tests start.

Passwords use URL-safe characters only, so a URL carries them as they are.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DB_PASSWORD",
    "DISCORD_TOKEN",
    "OPENAI_KEY",
    "REDIS_PASSWORD",
    "SECRETS",
    "SLACK_APP_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "leaks",
    "masked",
    "with_password",
]

OPENAI_KEY: Final = (
    "sk-proj-Xq7rTz2LmN9vB4kW1aYcD6eF8gH0jK3pQ5sU7wZ9xC2vB4nM6Tt1Rr3Ee5Ww7Qq9LpHy2Jd8Fs4Gk"
)
SLACK_BOT_TOKEN: Final = "xoxb-2718281828-3141592653589-Zk3Jq8Lw0Pn5Rt7Vx9Bz2Cd4"
SLACK_APP_TOKEN: Final = (
    "xapp-1-A0123456789-5772156649015-6b2f0c1e9d8a7f6e5d4c3b2a1908f7e6d5c4b3a29"
)
SLACK_SIGNING_SECRET: Final = "8f14e45fceea167a5a36dedd4bea2543"
DISCORD_TOKEN: Final = "MTA5ODc2NTQzMjEwOTg3NjU0.GxYz12.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"
DB_PASSWORD: Final = "pg-Pa55w0rd-7c1e9dQm4Vz8"
REDIS_PASSWORD: Final = "rds-Hk2Wq9Lx4Tn7Bv3Mz6"

SECRETS: Final = {
    "OPENAI_API_KEY": OPENAI_KEY,
    "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
    "SLACK_APP_TOKEN": SLACK_APP_TOKEN,
    "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
    "DISCORD_TOKEN": DISCORD_TOKEN,
    "DATABASE_URL password": DB_PASSWORD,
    "REDIS_URL password": REDIS_PASSWORD,
}
"""Every secret, by what it is (the name a leak report gives)."""


def _needles() -> tuple[tuple[str, str], ...]:
    # The whole value and its last 16 characters: a token with its prefix cut off, or cut
    # short in the middle of a line, is still a leak. A Discord token's third part (its
    # HMAC) is found on its own too.
    found = []
    for name, value in SECRETS.items():
        found += [(name, value), (name, value[-16:])]
    found.append(("DISCORD_TOKEN", DISCORD_TOKEN.rsplit(".", 1)[1]))
    return tuple(dict.fromkeys(found))


_NEEDLES: Final = _needles()


def leaks(text: str) -> list[str]:
    """Names of the secrets found in ``text`` (whole, or a distinctive part of one)."""
    return sorted({name for name, needle in _NEEDLES if needle in text})


def masked(text: str) -> str:
    """``text`` with every secret (and distinctive part of one) shown as ``[NAME]``."""
    for name, needle in sorted(_NEEDLES, key=lambda pair: -len(pair[1])):
        text = text.replace(needle, f"[{name}]")
    return text


def with_password(url: str, password: str) -> str:
    """``url`` (``scheme://[user[:old]]@...`` or ``scheme://host...``) with ``password``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    userinfo, at, host = rest.partition("@")
    if not at:
        return f"{scheme}://:{password}@{rest}"
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{password}@{host}"
