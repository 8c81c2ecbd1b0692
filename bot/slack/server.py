"""Running the Slack adapter: HTTP (Events API) or Socket Mode, plus the embedded worker.

HTTP mode serves ``POST /slack/events`` (events, interactivity and the slash command on one
endpoint; bolt checks the signature and the 5-minute replay window), ``GET /health``, and
``/healthz``, ``/readyz`` and ``/metrics`` (:mod:`bot.health`); either mode also serves the
last three on ``DESKBOT_HEALTH_PORT`` when it is set.
Without ``REDIS_URL`` the adapter also runs the worker in its own process; with Redis it
only enqueues and ``deskbot worker`` processes answer.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.app import App, open_app
from bot.health import Health, add_health_routes, serve_health
from bot.jobs import embedded_worker
from bot.settings import Settings, SlackMode
from bot.shutdown import on_signals
from bot.slack import SlackAdapter, SlackAdmin, slack_client

__all__ = ["embedded_worker", "http_app", "run_slack", "slack_adapter"]

log = logging.getLogger(__name__)


def slack_adapter(app: App) -> SlackAdapter:
    """The bolt app and handlers on an open :class:`App`."""
    client = slack_client(app.settings)
    admin = SlackAdmin(app.settings, app.state, app.knowledge, client)
    return SlackAdapter(app.settings, app.state, app.conversations, admin, client)


def http_app(adapter: SlackAdapter, *, health: Health | None = None) -> web.Application:
    """The aiohttp application serving Slack's HTTP requests (and ``health``'s routes)."""

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await adapter.bolt.async_dispatch(bolt_request))

    async def alive(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    application = web.Application()
    application.router.add_post("/slack/events", events)
    application.router.add_get("/health", alive)
    if health is not None:
        add_health_routes(application, health)
    return application


async def run_slack(settings: Settings, mode: SlackMode, port: int) -> None:
    """Serve Slack until SIGINT/SIGTERM."""
    shutdown = on_signals()  # the first stops taking events and drains; a second hurries
    stop = shutdown.stop
    health_port = settings.health_port if settings.health_port != port or mode != "http" else None
    async with (
        open_app(settings) as app,
        serve_health(app, health_port),
        embedded_worker(app, hurry=shutdown.hurry),
    ):
        adapter = slack_adapter(app)
        if mode == "http":
            health = Health(app)
            runner = web.AppRunner(http_app(adapter, health=health))
            await runner.setup()
            await web.TCPSite(runner, port=port).start()
            log.info("Slack HTTP endpoint on :%d/slack/events", port)
            try:
                await stop.wait()
            finally:
                await runner.cleanup()  # no new events (Slack retries elsewhere)
                await adapter.settle()  # the ones acknowledged are queued
                await health.close()
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            token = settings.slack_app_token
            handler = AsyncSocketModeHandler(
                adapter.bolt, token.get_secret_value() if token else None
            )
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack Socket Mode connected")
            try:
                await stop.wait()
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
                await adapter.settle()
