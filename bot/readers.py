"""Who may read a collection, in one line, for every front door.

``deskbot collections``, Slack's ``/deskbot access`` and Discord's ``/docs access`` all say it
with :func:`readers`; each passes its own :class:`Mentions`, so the CLI prints ids, Slack
``<@U1>`` and ``<#C9>``, and Discord ``<@id>``, ``<@&id>`` and ``<#id>``. The rule itself is
:meth:`knowledge.search.Scope.can_read`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from knowledge.store import CollectionInfo

__all__ = ["PLAIN", "Mentions", "readers"]


def _same(value: str) -> str:
    return value


@dataclass(frozen=True)
class Mentions:
    """How one platform writes a reader: a role (or user) id, and a channel id."""

    role: Callable[[str], str] = _same
    channel: Callable[[str], str] = _same


PLAIN = Mentions()
"""Ids as they are stored: what the CLI prints."""


def readers(c: CollectionInfo, mentions: Mentions = PLAIN) -> str:
    """Who may read ``c``, in one line (``private: in a DM by U1; anyone in C9``)."""
    channels = ", ".join(mentions.channel(x) for x in c.allowed_channels)
    if c.visibility == "public":
        return f"public, in channels {channels}" if channels else "public, everywhere"
    roles = ", ".join(mentions.role(x) for x in c.allowed_roles)
    parts = [f"in a DM by {roles}" if roles else ""]
    parts.append(f"anyone in {channels}" if channels else "")
    who = "; ".join(p for p in parts if p)
    return f"private: {who}" if who else "private: only the operator (no roles or channels)"
