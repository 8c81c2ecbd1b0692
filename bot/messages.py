"""The project's own message types: what adapters produce and what the core answers.

Adapters turn platform events into an :class:`IncomingMessage` and a :class:`ReplyAddress`
(enough to answer later from any process), and put them on the queue as one ``answer`` job.
Platform SDK types never get past the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["IncomingMessage", "ReplyAddress"]


@dataclass(frozen=True)
class ReplyAddress:
    """Where the answer goes: a channel and (Slack) the thread to reply in."""

    platform: str
    channel_id: str
    thread_ts: str | None = None
    workspace_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for a job payload."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplyAddress:
        """The address from :meth:`to_json`'s output."""
        return cls(**data)


@dataclass(frozen=True)
class IncomingMessage:
    """A question from a user on a platform, as the core sees it."""

    platform: str
    workspace_id: str | None
    channel_id: str
    user_id: str
    text: str
    thread_key: str
    event_id: str
    private: bool = False
    roles: tuple[str, ...] = ()
    reply: ReplyAddress | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for a job payload."""
        data = asdict(self)
        data["reply"] = self.reply.to_json() if self.reply else None
        data["roles"] = list(self.roles)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncomingMessage:
        """The message from :meth:`to_json`'s output."""
        values = dict(data)
        reply = values.pop("reply", None)
        return cls(
            **{
                **values,
                "roles": tuple(values.get("roles", ())),
                "reply": ReplyAddress.from_json(reply) if reply else None,
            }
        )
