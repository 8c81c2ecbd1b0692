"""The Discord adapter's gateway side: events in, jobs out, nothing slow.

Messages (mentions, follow-ups in threads the bot answered in, DMs) and ``/ask`` become
``answer`` jobs; each is claimed in the deduper first, so an event that a RESUME replays
answers nothing twice. ``/ask`` is deferred at once (Discord's 3 s) and answered by the
worker through the interaction's webhook. The feedback buttons land here too.
discord.py types stop in this package: the core sees :class:`~bot.messages.IncomingMessage`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import discord

from bot.agent.store import ConversationStore
from bot.answering import ANSWER_JOB
from bot.discord.format import parse_feedback
from bot.discord.rest import DiscordREST
from bot.language import in_language_of
from bot.messages import IncomingMessage, ReplyAddress, ThreadKey
from bot.metrics import EVENTS_DEDUPLICATED, EVENTS_RATE_LIMITED, EVENTS_RECEIVED
from bot.settings import Settings
from bot.state import RateLimiter, SharedState

__all__ = [
    "NOT_SERVED",
    "DiscordAdapter",
    "first_delivery",
    "is_private",
    "member_roles",
    "scope_channel",
    "served_guild",
]

log = logging.getLogger(__name__)

NOT_SERVED = "deskbot does not serve this server. / 이 서버에서는 사용할 수 없습니다."
TOKEN_LIFETIME = 15 * 60.0
"""Seconds an interaction token may be used for follow-ups."""
_ANSWERED_TYPES = {discord.MessageType.default, discord.MessageType.reply}
_EPHEMERAL = 64


def member_roles(user: discord.abc.User) -> tuple[str, ...]:
    """The roles a scope checks: the user's id, then each guild role's id.

    Ids only, never names: anyone who can manage roles can name a role anything. In a DM
    the user is no guild's member, so their roles are those they hold in the guilds the bot
    shares with them (from the member cache): a DM is where a private collection is read,
    and a role it allows must count there. A role id is a snowflake of its own guild, so no
    other guild's role can match it.
    """
    if isinstance(user, discord.Member):
        members: list[discord.Member | None] = [user]
    else:
        members = [guild.get_member(user.id) for guild in getattr(user, "mutual_guilds", ())]
    roles = [str(user.id)]
    for member in members:
        roles += [str(r.id) for r in (member.roles if member else ()) if not r.is_default()]
    return tuple(dict.fromkeys(roles))


def served_guild(settings: Settings, guild_id: int | None) -> bool:
    """False for a guild outside ``DESKBOT_DISCORD_GUILDS`` (when that list is set).

    A public bot can be added to any server: without this, a stranger's server could read
    the public collections and its owner (Manage Server there) could manage documents.
    """
    allowed = settings.discord_guild_ids
    return guild_id is None or not allowed or guild_id in allowed


def is_private(interaction: discord.Interaction[Any]) -> bool:
    """True in a one-to-one DM with the bot; a group DM is shared, so it is not."""
    channel = interaction.channel
    return getattr(channel, "type", None) == discord.ChannelType.private


async def first_delivery(
    state: SharedState, settings: Settings, interaction: discord.Interaction[Any]
) -> bool:
    """Claim the interaction: False when a replay brings it a second time."""
    key = f"discord:interaction:{interaction.id}"
    return await state.deduper.claim(key, ttl=settings.dedup_ttl)


def scope_channel(interaction: discord.Interaction[Any]) -> str:
    """The channel whose collections the caller reads: a thread reads its parent's."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id:
        return str(channel.parent_id)
    return str(interaction.channel_id)


class DiscordAdapter:
    """Turns gateway messages and interactions into jobs."""

    def __init__(
        self,
        settings: Settings,
        state: SharedState,
        conversations: ConversationStore,
        rest: DiscordREST,
    ) -> None:
        self.settings = settings
        self.state = state
        self.conversations = conversations
        self.rest = rest
        self.guild_limiter: RateLimiter = state.rate_limiter(
            "discord-guild",
            limit=settings.discord_guild_rate_limit,
            window=settings.rate_limit_window,
        )

    # --- messages --------------------------------------------------------------------

    async def on_message(self, message: discord.Message, bot_user: discord.ClientUser) -> None:
        """Queue an answer if the message is a question for the bot; ignore everything else."""
        if message.author.bot or message.type not in _ANSWERED_TYPES:
            return
        if not served_guild(self.settings, message.guild.id if message.guild else None):
            return
        channel = message.channel
        if isinstance(channel, discord.DMChannel):
            key = ThreadKey.of("discord", None, str(channel.id))
            reply = ReplyAddress("discord", str(channel.id))
            await self._enqueue(message, key, reply, private=True, bot_user=bot_user)
            return
        if message.guild is None:
            return  # a group DM: not a place the bot answers
        guild = str(message.guild.id)
        mentioned = bot_user in message.mentions
        if isinstance(channel, discord.Thread):
            key = ThreadKey.of("discord", guild, str(channel.parent_id), str(channel.id))
            if mentioned or await self.conversations.has_thread(key):
                reply = ReplyAddress("discord", str(channel.id), workspace_id=guild)
                await self._enqueue(message, key, reply, private=False, bot_user=bot_user)
            return
        if mentioned:
            key = ThreadKey.of("discord", guild, str(channel.id), str(message.id))
            reply = ReplyAddress(
                "discord", str(channel.id), workspace_id=guild, message_id=str(message.id)
            )
            await self._enqueue(message, key, reply, private=False, bot_user=bot_user)

    async def _enqueue(
        self,
        message: discord.Message,
        key: ThreadKey,
        reply: ReplyAddress,
        *,
        private: bool,
        bot_user: discord.ClientUser,
    ) -> None:
        event_id = f"discord:message:{message.id}"
        EVENTS_RECEIVED.labels("discord").inc()
        if not await self.state.deduper.claim(event_id, ttl=self.settings.dedup_ttl):
            EVENTS_DEDUPLICATED.labels("discord").inc()
            return  # a replay after a RESUME or a reconnect
        text = _without_mention(message.content, bot_user.id)
        if not text and bot_user not in message.mentions:
            return  # an image or a sticker in its thread: nothing was asked
        guild = str(message.guild.id) if message.guild else None
        refusal = await self._refusal(text, str(message.author.id), guild)
        if refusal:
            await self._reply_to(message, refusal)
            return
        incoming = IncomingMessage(
            platform="discord",
            workspace_id=guild,
            channel_id=key.channel_id or str(message.channel.id),
            user_id=str(message.author.id),
            text=text,
            thread=key,
            event_id=event_id,
            private=private,
            roles=member_roles(message.author),
            reply=reply,
        )
        await self.state.queue.put(ANSWER_JOB, {"message": incoming.to_json()})

    async def _refusal(self, text: str, user: str, guild: str | None) -> str | None:
        """Why this question gets no answer now (empty, or too many), else None."""
        if not text:
            return "Ask me a question after the mention. / 질문을 함께 적어 주세요."
        decision = await self.state.limiter.hit(f"discord:{guild or 'dm'}:{user}")
        if decision.allowed and guild is not None:
            decision = await self.guild_limiter.hit(f"discord:{guild}")
            if not decision.allowed:
                EVENTS_RATE_LIMITED.labels("discord").inc()
                return _too_many(decision.retry_after, "this server is")
        if not decision.allowed:
            EVENTS_RATE_LIMITED.labels("discord").inc()
            return _too_many(decision.retry_after, "you are")
        return None

    async def _reply_to(self, message: discord.Message, text: str) -> None:
        body = {
            "content": text,
            "message_reference": {"message_id": str(message.id), "fail_if_not_exists": False},
            "allowed_mentions": {"parse": []},
        }
        await self.rest.send(str(message.channel.id), body)

    # --- /ask ------------------------------------------------------------------------

    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None:
        """Defer the interaction at once, then queue the question for a worker."""
        EVENTS_RECEIVED.labels("discord").inc()
        if not await self._first_time(interaction):
            EVENTS_DEDUPLICATED.labels("discord").inc()
            return
        if not served_guild(self.settings, interaction.guild_id):
            await interaction.response.send_message(NOT_SERVED, ephemeral=True)
            return
        guild = str(interaction.guild_id) if interaction.guild_id else None
        user = str(interaction.user.id)
        refusal = await self._refusal(question.strip(), user, guild)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        try:
            await self.state.queue.put(ANSWER_JOB, {"message": _asked(interaction, question)})
        except Exception:  # the user sees "thinking" until told otherwise
            log.exception("could not queue /ask %s", interaction.id)
            text = in_language_of(
                question,
                "I cannot take questions right now; please try again in a moment.",
                "지금은 질문을 받을 수 없습니다. 잠시 후 다시 시도해 주세요.",
            )
            await interaction.edit_original_response(content=text)

    async def _first_time(self, interaction: discord.Interaction[Any]) -> bool:
        return await first_delivery(self.state, self.settings, interaction)

    # --- feedback --------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A click on a feedback button: store it on the run, thank the user privately."""
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        feedback = parse_feedback(str(data.get("custom_id", "")))
        if feedback is None:
            return
        if not await self._first_time(interaction):
            return
        value, run_id = feedback
        await self.conversations.record_feedback(run_id, str(interaction.user.id), value)
        await interaction.response.send_message(
            "Thanks for the feedback. / 의견 고맙습니다.", ephemeral=True
        )


def _asked(interaction: discord.Interaction[Any], question: str) -> dict[str, Any]:
    """The ``answer`` job's message for an ``/ask`` interaction."""
    guild = str(interaction.guild_id) if interaction.guild_id else None
    channel = str(interaction.channel_id)
    # In a DM, /ask continues the DM's conversation; in a guild channel each is its own.
    thread = str(interaction.id) if guild else None
    message = IncomingMessage(
        platform="discord",
        workspace_id=guild,
        channel_id=scope_channel(interaction),
        user_id=str(interaction.user.id),
        text=question.strip(),
        thread=ThreadKey.of("discord", guild, scope_channel(interaction), thread),
        event_id=f"discord:interaction:{interaction.id}",
        private=is_private(interaction),
        roles=member_roles(interaction.user),
        reply=ReplyAddress(
            "discord",
            channel,
            workspace_id=guild,
            application_id=str(interaction.application_id),
            interaction_token=interaction.token,
            token_expires=time.time() + TOKEN_LIFETIME,
        ),
    )
    return message.to_json()


def _without_mention(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", "", content).strip()


def _too_many(retry_after: float, who: str) -> str:
    wait = max(1, round(retry_after))
    return (
        f"Too many questions: {who} asking faster than I can answer; try again in {wait} s. "
        f"/ 요청이 너무 잦습니다. {wait}초 뒤에 다시 시도해 주세요."
    )
