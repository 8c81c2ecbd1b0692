"""``deskbot mcp``: the enabled tools as a Model Context Protocol server (stdio or HTTP).

Without an identity the callers act as the operator, who reads every collection, as with
``deskbot tools call``: a stdio server is the operator's own process. Over HTTP anyone who
reaches the port is a caller, so ``--http`` wants an identity, or ``--as-operator`` to say
that reading everything is meant.
"""

from __future__ import annotations

import click

from bot.cli.common import pass_settings, run
from bot.errors import ConfigError
from bot.settings import Settings

__all__ = ["mcp"]


@click.command("mcp")
@click.option("--http", "http", is_flag=True, help="Streamable HTTP instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP address.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="HTTP port."
)
@click.option("--as-user", "user", help="Act as this user (their DM scope).")
@click.option("--channel", help="Act from this channel (what everyone there may read).")
@click.option("--role", "roles", multiple=True, help="A role the user holds (repeatable).")
@click.option("--as-operator", is_flag=True, help="Over HTTP: read every collection.")
@pass_settings
def mcp(
    settings: Settings,
    http: bool,
    host: str,
    port: int,
    user: str | None,
    channel: str | None,
    roles: tuple[str, ...],
    as_operator: bool,
) -> None:
    """Serve the tools to MCP clients (editors, desktop assistants)."""
    identity_given = bool(user or channel or roles)
    if as_operator and identity_given:
        raise click.UsageError("--as-operator and --as-user/--channel/--role exclude each other")
    if http and not (identity_given or as_operator):
        raise click.UsageError(
            "--http serves anyone who reaches the port: give --as-user/--channel, "
            "or --as-operator to let them read every collection"
        )
    try:
        from bot.mcp_server import Identity, serve
    except ImportError as exc:
        raise ConfigError(
            f"deskbot mcp needs the integrations extra (pip install 'deskbot[integrations]'): {exc}"
        ) from None
    identity = Identity(user=user, channel=channel, roles=roles)
    run(serve(settings, identity, http=(host, port) if http else None))
