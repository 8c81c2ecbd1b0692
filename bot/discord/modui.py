"""discord.py pieces the moderation handlers share: answers, button rows, one-field modals.

Nothing here is kept in memory between an answer and the next press: every button and
modal is answered by its ``custom_id`` (see :mod:`bot.discord.modlog`), so views and modals
are stopped before they are sent and discord.py stores none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.discord.modlog import parse_custom_id

__all__ = ["Interaction", "greyed_verbs", "say", "text_modal", "view_of"]

Interaction = discord.Interaction[Any]


async def say(interaction: Interaction, text: str) -> None:
    """An ephemeral answer, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


def view_of(rows: Sequence[dict[str, Any]]) -> discord.ui.View:
    """Button rows (Discord's JSON, as :mod:`~bot.discord.modlog` builds them) as a view."""
    view = discord.ui.View(timeout=None)
    for index, row in enumerate(rows):
        for button in row["components"]:
            view.add_item(
                discord.ui.Button(
                    style=discord.ButtonStyle(button["style"]),
                    label=button["label"],
                    custom_id=button["custom_id"],
                    disabled=bool(button.get("disabled")),
                    row=index,
                )
            )
    view.stop()
    return view


def text_modal(
    title: str, custom_id: str, *, field: str, label: str, default: str = "", limit: int = 1000
) -> discord.ui.Modal:
    """A modal with one paragraph input (``field`` is its custom_id), stopped: see above."""
    modal = discord.ui.Modal(title=title, custom_id=custom_id)
    modal.add_item(
        discord.ui.TextInput(
            label=label,
            custom_id=field,
            style=discord.TextStyle.paragraph,
            default=default[:limit] or None,
            max_length=limit,
        )
    )
    modal.stop()
    return modal


def greyed_verbs(message: discord.Message | None) -> set[str]:
    """The verbs of the moderation buttons a message already shows greyed out."""
    found: set[str] = set()
    for row in message.components if message else []:
        for item in getattr(row, "children", []):
            parsed = parse_custom_id(str(getattr(item, "custom_id", "") or ""))
            if parsed and getattr(item, "disabled", False):
                found.add(parsed[0])
    return found
