"""The project's own message types: what adapters produce and what the core answers.

Adapters turn platform events into an :class:`IncomingMessage` and a :class:`ReplyAddress`
(enough to answer later from any process), and put them on the queue as one ``answer`` job.
A conversation is named by its :class:`ThreadKey`, built by :meth:`ThreadKey.of` wherever a
platform conversation is meant. Platform SDK types never get past the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["IncomingMessage", "Platform", "ReplyAddress", "ThreadKey"]

Platform = Literal["slack", "discord", "terminal", "api"]
"""Where a conversation happens (the ``threads.platform`` CHECK constraint)."""


@dataclass(frozen=True)
class ThreadKey:
    """Where a conversation lives on its platform: one stored thread per key.

    A key is equal to another when ``platform`` and ``external_id`` are, as the ``threads``
    table is unique on those two; the workspace and channel are stored with the thread but
    do not tell conversations apart.
    """

    platform: Platform
    external_id: str
    workspace_id: str | None = field(default=None, compare=False)
    channel_id: str | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        platform: Platform,
        workspace_id: str | None,
        channel_id: str,
        thread: str | None = None,
    ) -> ThreadKey:
        """The key of ``thread`` in ``channel_id``, or of the channel itself (a DM) without one.

        The one constructor for a platform conversation: the adapter deciding whether a
        message continues a conversation and the worker answering it build the same key.
        """
        base = f"{workspace_id or '-'}:{channel_id}"
        external_id = f"{base}:{thread}" if thread else base
        return cls(platform, external_id, workspace_id, channel_id)


@dataclass(frozen=True)
class ReplyAddress:
    """Where the answer goes, enough to answer from any process.

    Slack: a channel and the thread to reply in (``thread_ts``). Discord: the channel (or
    thread, or DM channel) to post in; ``message_id`` when the answer starts a thread from
    that message; or an interaction's ``application_id`` and ``interaction_token`` (valid
    until ``token_expires``, epoch seconds) for a slash command's deferred answer.
    """

    platform: Platform
    channel_id: str
    thread_ts: str | None = None
    workspace_id: str | None = None
    message_id: str | None = None
    application_id: str | None = None
    interaction_token: str | None = None
    token_expires: float | None = None

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

    platform: Platform
    workspace_id: str | None
    channel_id: str
    user_id: str
    text: str
    thread: ThreadKey
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
        if "thread_key" in values:  # a job queued by a release before ThreadKey travelled
            old_key = values.pop("thread_key")
            values["thread"] = {
                "platform": values["platform"],
                "external_id": old_key,
                "workspace_id": values["workspace_id"],
                "channel_id": values["channel_id"],
            }
        return cls(
            **{
                **values,
                "thread": ThreadKey(**values["thread"]),
                "roles": tuple(values.get("roles", ())),
                "reply": ReplyAddress.from_json(reply) if reply else None,
            }
        )
