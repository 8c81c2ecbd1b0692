"""``/moderation``: a guild's moderation policy, its numbers and a member's history.

Anyone may read the policy and the numbers only where they can manage messages; changing
the policy (mode, log channel, thresholds, exemptions) needs Manage Server. Every change
goes through :meth:`bot.moderation.ModerationStore.save_policy`, which audits it, and the
moderator's cached policy is dropped at once. Answers are ephemeral.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import discord
from discord import app_commands

from bot.moderation import ACTIONS, Action, Policy

__all__ = ["ModerationCommands"]

Interaction = discord.Interaction[Any]
_READERS = "Only members who can manage messages may see this. / 관리자만 볼 수 있습니다."
_CHANGERS = "Only members with Manage Server may change moderation. / 관리자만 바꿀 수 있습니다."
_LOG_CHANNEL = "The mod-log channel is never moderated. / 관리 로그 채널은 검토하지 않습니다."
_ALL_CHANNELS = (
    "Every text channel is moderated: `/moderation exempt channel:` skips one. / "
    "모든 채널을 검토합니다. 하나를 빼려면 `/moderation exempt channel:`을 쓰세요."
)
_ACTION_CHOICES = [app_commands.Choice(name=a, value=a) for a in ACTIONS if a != "none"]


async def _policy(interaction: Interaction, *, change: bool) -> Policy | None:
    """The guild's policy if the caller may read it (or change it); else answer why not."""
    allowed = interaction.guild_id is not None and (
        interaction.permissions.manage_guild
        if change
        else interaction.permissions.manage_messages or interaction.permissions.manage_guild
    )
    if not allowed:
        await interaction.response.send_message(_CHANGERS if change else _READERS, ephemeral=True)
        return None
    policy: Policy = await interaction.client.moderation.store.policy(str(interaction.guild_id))
    return policy


async def _save(interaction: Interaction, policy: Policy, what: str) -> None:
    moderation = interaction.client.moderation
    await moderation.store.save_policy(policy, actor=str(interaction.user.id), reason=what)
    if moderation.moderator is not None:
        moderation.moderator.forget(policy.guild_id)
    await interaction.response.send_message(f"Moderation: {what}.", ephemeral=True)


class ModerationCommands(app_commands.Group):
    """``/moderation config|mode|log-channel|set|exempt|channels|stats|history``."""

    def __init__(self) -> None:
        super().__init__(name="moderation", description="Moderation policy and numbers")

    @app_commands.command(name="config", description="Show this server's moderation policy")
    async def config(self, interaction: Interaction) -> None:
        """The policy, one line per setting."""
        policy = await _policy(interaction, change=False)
        if policy is not None:
            text = "\n".join(policy.describe())
            await interaction.response.send_message(f"```\n{text}\n```", ephemeral=True)

    @app_commands.command(name="mode", description="shadow (log only) or enforce (act)")
    async def mode(self, interaction: Interaction, mode: Literal["shadow", "enforce"]) -> None:
        """Switch between observing and acting."""
        policy = await _policy(interaction, change=True)
        if policy is not None:
            await _save(interaction, dataclasses.replace(policy, mode=mode), f"mode {mode}")

    @app_commands.command(name="log-channel", description="Where decisions are posted")
    async def log_channel(self, interaction: Interaction, channel: discord.TextChannel) -> None:
        """Set the mod-log channel (it is never moderated itself)."""
        policy = await _policy(interaction, change=True)
        if policy is not None:
            changed = dataclasses.replace(policy, log_channel_id=str(channel.id))
            await _save(interaction, changed, f"log channel <#{channel.id}>")

    @app_commands.command(name="set", description="The score from which a label gets an action")
    @app_commands.choices(action=_ACTION_CHOICES)
    async def set(
        self,
        interaction: Interaction,
        label: str,
        action: app_commands.Choice[str],
        threshold: app_commands.Range[float, 0.0, 1.0],
    ) -> None:
        """Set one threshold (0 removes it)."""
        policy = await _policy(interaction, change=True)
        if policy is None:
            return
        chosen: Action = next(a for a in ACTIONS if a == action.value)
        changed = policy.with_threshold(label.strip(), chosen, threshold or None)
        await _save(interaction, changed, f"{label} {chosen} from {threshold:.2f}")

    @app_commands.command(name="exempt", description="Never moderate a role or a channel")
    @app_commands.describe(remove="Moderate them again instead")
    async def exempt(
        self,
        interaction: Interaction,
        role: discord.Role | None = None,
        channel: discord.TextChannel | None = None,
        remove: bool = False,
    ) -> None:
        """Add (or with ``remove``, take away) an exempt role and/or channel."""
        policy = await _policy(interaction, change=True)
        if policy is None:
            return
        role_ids = {str(role.id)} if role else set()
        channel_ids = {str(channel.id)} if channel else set()
        if remove:
            roles, channels = policy.exempt_roles - role_ids, policy.exempt_channels - channel_ids
        else:
            roles, channels = policy.exempt_roles | role_ids, policy.exempt_channels | channel_ids
        changed = dataclasses.replace(policy, exempt_roles=roles, exempt_channels=channels)
        shown = ", ".join(
            [*(f"<@&{r}>" for r in sorted(roles)), *(f"<#{c}>" for c in sorted(channels))]
        )
        await _save(interaction, changed, f"exempt: {shown or 'nothing'}")

    @app_commands.command(name="channels", description="Which channels are moderated")
    @app_commands.describe(
        add="Moderate this channel (then only the listed channels are)",
        remove="Stop moderating this listed channel",
        everywhere="Moderate every text channel again (the default)",
    )
    async def channels(
        self,
        interaction: Interaction,
        add: discord.TextChannel | None = None,
        remove: discord.TextChannel | None = None,
        everywhere: bool = False,
    ) -> None:
        """List the moderated channels, or moderate every text channel but the mod-log."""
        policy = await _policy(interaction, change=True)
        if policy is None:
            return
        if add is not None and str(add.id) == policy.log_channel_id:
            await interaction.response.send_message(_LOG_CHANNEL, ephemeral=True)
            return
        if remove is not None and policy.channels is None and add is None and not everywhere:
            await interaction.response.send_message(_ALL_CHANNELS, ephemeral=True)
            return
        listed = set(policy.channels or ())
        listed |= {str(add.id)} if add else set()
        listed -= {str(remove.id)} if remove else set()
        chosen = None if everywhere or not listed else frozenset(listed)
        changed = dataclasses.replace(policy, channels=chosen)
        shown = (
            "every text channel" if chosen is None else " ".join(f"<#{c}>" for c in sorted(chosen))
        )
        await _save(interaction, changed, f"moderated channels: {shown}")

    @app_commands.command(name="stats", description="Decisions, appeals and overturn rates")
    async def stats(self, interaction: Interaction, days: int = 30) -> None:
        """Decisions per label and action, and how many were overturned."""
        policy = await _policy(interaction, change=False)
        if policy is None:
            return
        stats = await interaction.client.moderation.store.stats(policy.guild_id, days=days)
        lines = [f"Last {stats.days} days: {stats.total} decisions"]
        for label, actions in sorted(stats.decisions.items()):
            counts = ", ".join(f"{a} {n}" for a, n in sorted(actions.items()))
            rate = stats.overturn_rate.get(label, 0.0)
            lines.append(f"{label}: {counts} (overturned {rate:.0%})")
        lines.append(f"appeals {stats.appeals}, accepted {stats.appeals_accepted}")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="history", description="A member's decisions and appeals")
    async def history(self, interaction: Interaction, member: discord.Member) -> None:
        """The member's recent events, newest first, and active strikes."""
        policy = await _policy(interaction, change=False)
        if policy is None:
            return
        store = interaction.client.moderation.store
        found = await store.history(policy.guild_id, str(member.id), limit=10)
        lines = [f"<@{member.id}>: {found.active_strikes} active strikes"]
        lines += [
            f"{e.created_at:%Y-%m-%d} {e.label} {e.action} ({e.mode})"
            + (" · overturned" if e.overturned_at else "")
            for e in found.events
        ]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)
