"""The gateway client: one connection per deployment, with the slash commands it serves.

:class:`DeskbotClient` holds the only gateway session. Every guild and DM message goes to
each of its ``message_listeners`` in turn (answering is one; moderation hooks in beside
it without a second connection), and interactions go to the command tree or, for the
feedback buttons, to the adapter. Commands are module-level functions that reach the
adapter through ``interaction.client``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot.agent.store import ConversationStore
from bot.discord.adapter import DiscordAdapter
from bot.discord.admin import AccessChange, DiscordAdmin
from bot.discord.modcommands import ModerationCommands
from bot.discord.moderation import DiscordModeration
from bot.discord.modlog import MOD_PREFIX
from bot.discord.rest import DiscordREST
from bot.knowledge import Knowledge
from bot.settings import Settings
from bot.state import SharedState
from tools.chat_backend import ChatBackend

__all__ = ["INTENTS", "DeskbotClient", "MessageListener"]

log = logging.getLogger(__name__)

MessageListener = Callable[[discord.Message], Awaitable[None]]

INTENTS = discord.Intents(
    guilds=True, guild_messages=True, dm_messages=True, message_content=True, members=True
)
"""What the bot reads. Message content and members are privileged: enabled in the portal."""

Interaction = discord.Interaction["DeskbotClient"]


class DeskbotClient(discord.Client):
    """The Discord client: intents, commands, and where each event goes.

    Its :attr:`rest` shares the client's HTTP session (and so its rate-limit buckets) and
    works once the client has logged in.
    """

    def __init__(
        self,
        settings: Settings,
        state: SharedState,
        conversations: ConversationStore,
        knowledge: Knowledge,
        backend: ChatBackend | None = None,
    ) -> None:
        # deskbot never joins voice: no start-up warnings about voice libraries it lacks
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=INTENTS)
        token = settings.discord_token.get_secret_value() if settings.discord_token else ""
        self.rest = DiscordREST(token, settings.discord_api_url, http=self.http)
        self.adapter = DiscordAdapter(settings, state, conversations, self.rest)
        self.admin = DiscordAdmin(settings, state, knowledge)
        # Commands run in servers and in DMs with the bot, never in group DMs (shared, so
        # not private) and never as a user-installed app.
        self.tree = app_commands.CommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=False
            ),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        )
        self.tree.add_command(ask)
        self.tree.add_command(Docs())
        self.tree.add_command(ModerationCommands())
        self.moderation = DiscordModeration(
            settings, state, self.rest, conversations.engine, backend
        )
        self.message_listeners: list[MessageListener] = [self._answer, self._moderate]

    async def setup_hook(self) -> None:
        """At login: load the moderation classifier (moderation stays off if it cannot)."""
        try:
            await self.moderation.open()
        except Exception:
            log.exception("moderation is off: the classifier could not be loaded")

    async def close(self) -> None:
        """Let moderation tasks finish (they act over this client's REST), then disconnect."""
        await self.moderation.close()
        await super().close()

    async def _answer(self, message: discord.Message) -> None:
        if self.user is not None:
            await self.adapter.on_message(message, self.user)

    async def _moderate(self, message: discord.Message) -> None:
        if self.user is not None:
            await self.moderation.on_message(message, self.user)

    async def on_message(self, message: discord.Message) -> None:
        """Hand the message to every listener; one failing does not stop the others."""
        for listener in self.message_listeners:
            try:
                await listener(message)
            except Exception:
                log.exception("message listener %s failed on %s", listener, message.id)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """An edited message goes to moderation again (raw: it may not be in the cache)."""
        if self.user is not None:
            before = payload.cached_message
            await self.moderation.on_edit(payload.message, self.user, before)

    async def on_interaction(self, interaction: Interaction) -> None:
        """Component clicks (the feedback buttons); commands go to the tree by themselves."""
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        try:
            if custom_id.startswith(MOD_PREFIX):
                await self.moderation.on_interaction(interaction)
            else:
                await self.adapter.on_interaction(interaction)
        except Exception:
            log.exception("interaction %s failed", interaction.id)

    async def sync_commands(self, guild_ids: list[int]) -> list[str]:
        """Register the slash commands in these guilds (at once), or globally (within an hour).

        Returns where they were synced, for the log and ``--sync-only``.
        """
        if not guild_ids:
            await self.tree.sync()
            return ["globally"]
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        return [f"guild {g}" for g in guild_ids]


@app_commands.command(name="ask", description="Ask deskbot a question / 질문하기")
@app_commands.describe(question="What you want to know")
async def ask(interaction: Interaction, question: app_commands.Range[str, 1, 4000]) -> None:
    """Answer in the channel: deferred now, the answer follows."""
    await interaction.client.adapter.ask(interaction, question)


class Docs(app_commands.Group):
    """``/docs``: the documents deskbot answers from."""

    def __init__(self) -> None:
        super().__init__(name="docs", description="The documents deskbot answers from")

    @app_commands.command(name="upload", description="Add files to a collection (admins)")
    @app_commands.describe(
        file="A PDF, DOCX, HTML, Markdown, text or spreadsheet file",
        collection="The collection to add them to",
        private="Create the collection as private (read only in DMs by the users it allows)",
    )
    async def upload(
        self,
        interaction: Interaction,
        file: discord.Attachment,
        collection: app_commands.Range[str, 1, 200],
        file2: discord.Attachment | None = None,
        file3: discord.Attachment | None = None,
        file4: discord.Attachment | None = None,
        file5: discord.Attachment | None = None,
        private: bool = False,
    ) -> None:
        """Check the caller and the sizes, then queue the ingest."""
        files = [f for f in (file, file2, file3, file4, file5) if f is not None]
        admin = interaction.client.admin
        await admin.upload(interaction, files, collection.strip(), private=private)

    @app_commands.command(name="list", description="Documents you can search from here")
    @app_commands.describe(collection="Only this collection")
    async def list(self, interaction: Interaction, collection: str | None = None) -> None:
        """List the documents the caller could search where they ask."""
        await interaction.client.admin.list(interaction, collection)

    @app_commands.command(name="delete", description="Delete a document (admins)")
    @app_commands.describe(id="The document's id, from /docs list")
    async def delete(self, interaction: Interaction, id: str) -> None:
        """Delete one document."""
        await interaction.client.admin.delete(interaction, id)

    @app_commands.command(
        name="access", description="Show or change who may read a collection (admins)"
    )
    @app_commands.describe(
        collection="The collection",
        private="True: private (read in DMs by its members and roles, or in its channels); "
        "False: public",
        role="A role whose members may read it in a DM",
        member="A member who may read it in a DM",
        channel="A channel where anyone may read it",
        remove="Take the role, member or channel given off instead of adding it",
    )
    async def access(
        self,
        interaction: Interaction,
        collection: app_commands.Range[str, 1, 200],
        private: bool | None = None,
        role: discord.Role | None = None,
        member: discord.User | None = None,
        channel: discord.TextChannel | None = None,
        remove: bool = False,
    ) -> None:
        """Show who may read the collection, or change it (admins)."""
        change = AccessChange(
            collection.strip(),
            private,
            roles=tuple(str(x.id) for x in (role, member) if x is not None),
            channels=(str(channel.id),) if channel is not None else (),
            remove=remove,
        )
        await interaction.client.admin.access(interaction, change)
