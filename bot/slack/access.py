"""``/deskbot access``: admins show or change who may read a collection, from Slack.

``/deskbot access COLLECTION [public|private] [@user|#channel ...] [remove @user|#channel ...]``
changes the collection through the same store method as ``deskbot collections access`` and
answers with the same line (:func:`bot.readers.readers`), written with Slack mentions. With
``should_escape: true`` (slack-manifest.yml) Slack sends mentions escaped, ``<@U123|name>``
and ``<#C123|name>``; raw ids (``U…``/``W…`` users, ``C…``/``G…`` channels) work too, so the
command works either way. A bare ``@name`` means the app was installed without escaping:
it is explained in one line, never guessed. The caller's admin check is the adapter's.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bot.knowledge import Knowledge
from bot.readers import Mentions, readers
from knowledge.errors import KnowledgeError

__all__ = ["SLACK_MENTIONS", "USAGE", "AccessChange", "AccessError", "change_access", "parse"]

USAGE = (
    "Usage: `/deskbot access COLLECTION [public|private] [@user|#channel ...] "
    "[remove @user|#channel ...]`"
)

_ESCAPED_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_ESCAPED_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
# Raw ids are a type letter and at least eight more: "CEO" or "GDPR" is a word, not an id.
_RAW_USER = re.compile(r"[UW][A-Z0-9]{8,}")
_RAW_CHANNEL = re.compile(r"[CG][A-Z0-9]{8,}")
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]+")
_TOKEN = re.compile(r"<[^>]*>|\S+")  # an escaped mention may hold a space in its label


def _user(value: str) -> str:
    return f"<@{value}>" if _USER_ID.fullmatch(value) else f"`{value}`"


def _channel(value: str) -> str:
    return f"<#{value}>" if _CHANNEL_ID.fullmatch(value) else f"`{value}`"


SLACK_MENTIONS = Mentions(role=_user, channel=_channel)
"""Slack users and channels as mentions; an id Slack would not know (set from the CLI) in
backticks."""


class AccessError(ValueError):
    """The command's text cannot be read; the message is the one line the admin gets."""


@dataclass(frozen=True)
class AccessChange:
    """What ``/deskbot access`` asks for: a collection and the changes to its readers."""

    collection: str
    visibility: str | None = None
    add_roles: tuple[str, ...] = ()
    remove_roles: tuple[str, ...] = ()
    add_channels: tuple[str, ...] = ()
    remove_channels: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        """False when it only asks who may read the collection now."""
        return bool(
            self.visibility
            or self.add_roles
            or self.remove_roles
            or self.add_channels
            or self.remove_channels
        )


def parse(text: str) -> AccessChange:
    """Read ``access COLLECTION ...`` (the text after ``/deskbot``); :class:`AccessError` if bad."""
    words = _TOKEN.findall(text)[1:]  # past "access"
    if not words:
        raise AccessError(USAGE)
    collection, rest = html.unescape(words[0]), words[1:]  # Slack sends & as &amp;
    visibility: str | None = None
    lists: dict[tuple[bool, str], list[str]] = {
        (r, kind): [] for r in (False, True) for kind in ("user", "channel")
    }
    removing = False
    for word in rest:
        if word in ("public", "private"):
            if visibility not in (None, word):
                raise AccessError("Choose `public` or `private`, not both.")
            visibility = word
        elif word == "remove":
            removing = True
        else:
            kind, value = _reader(word)
            lists[(removing, kind)].append(value)
    if removing and not lists[(True, "user")] + lists[(True, "channel")]:
        raise AccessError("`remove` needs a @user or #channel after it. " + USAGE)
    return AccessChange(
        collection,
        visibility,
        add_roles=tuple(lists[(False, "user")]),
        remove_roles=tuple(lists[(True, "user")]),
        add_channels=tuple(lists[(False, "channel")]),
        remove_channels=tuple(lists[(True, "channel")]),
    )


def _reader(word: str) -> tuple[str, str]:
    """``("user", id)`` or ``("channel", id)`` for a mention or raw id; else AccessError."""
    if match := _ESCAPED_USER.fullmatch(word):
        return "user", match.group(1)
    if match := _ESCAPED_CHANNEL.fullmatch(word):
        return "channel", match.group(1)
    if _RAW_USER.fullmatch(word):
        return "user", word
    if _RAW_CHANNEL.fullmatch(word):
        return "channel", word
    if word.startswith("<!subteam"):
        raise AccessError("A user group cannot be a reader; name its users or a channel.")
    if word.startswith(("@", "#")) and len(word) > 1:
        what = "user" if word[0] == "@" else "channel"
        raise AccessError(
            f"`{word}` arrived as a plain name, not a {what} id: Slack escapes mentions only "
            f"when the app's `/deskbot` command has `should_escape: true` (slack-manifest.yml); "
            f"pick the {what} from Slack's suggestions after reinstalling, or give its id "
            f"({'U…' if what == 'user' else 'C…'})."
        )
    raise AccessError(f"`{word}` is not public, private, remove, a @user or a #channel. {USAGE}")


async def change_access(knowledge: Knowledge, text: str) -> str:
    """Apply ``/deskbot access`` (admins only: the caller checks) and say who may read it now.

    Returns the one line for the admin: the readers, or what was wrong with the command.
    Nothing is changed unless the whole command could be read.
    """
    try:
        asked = parse(text)
        if asked.changes:
            info = await knowledge.store.set_access(
                asked.collection,
                visibility=asked.visibility,
                add_roles=asked.add_roles,
                remove_roles=asked.remove_roles,
                add_channels=asked.add_channels,
                remove_channels=asked.remove_channels,
            )
        else:
            info = await knowledge.store.get_collection(asked.collection)
    except (AccessError, KnowledgeError) as exc:
        return str(exc)
    return f"`{info.name}` — {readers(info, SLACK_MENTIONS)}"
