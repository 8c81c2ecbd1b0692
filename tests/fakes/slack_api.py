"""A fake Slack Web API: records every call and answers the methods deskbot uses.

    slack = FakeSlackAPI()                  # its token: tests.secret_values.SLACK_BOT_TOKEN
    client = WebClient(token=slack.token, base_url=slack.api_url)

Answers ``auth.test``, ``chat.postMessage``, ``chat.update``, ``chat.delete``,
``chat.postEphemeral``, ``conversations.replies``, ``conversations.history``, ``files.info``,
``views.open`` and ``usergroups.users.list`` in Slack's shapes. Messages the bot posts join
their thread (or the channel's history) with a ``ts`` from the clock, as Slack's are; an
update or delete of a message that is not there (or was deleted) gets ``message_not_found``,
of one the bot did not post ``cant_update_message`` / ``cant_delete_message``; a deleted
message leaves reads, or stays as a ``tombstone`` while replies hang from it; message ``metadata``
(``event_type`` + ``event_payload``) is kept and returned only to reads that pass
``include_all_metadata``; reads page with ``limit`` and ``cursor``. It serves file
downloads at the ``url_private`` it hands out; records what is posted to a slash command's
``response_url`` (method ``response_url``); ``fail_next`` makes the next calls to a
method fail (``ratelimited`` comes back as HTTP 429 with ``Retry-After``, as Slack sends
it); ``hold`` keeps a matching call waiting, recorded but unanswered, until the test lets it
go (the caller is killed in between, say).
A wrong token gets ``invalid_auth``; an unknown method ``unknown_method``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.fakes.http import FakeHTTPServer, Recorded, Response
from tests.secret_values import SLACK_BOT_TOKEN

__all__ = ["FakeSlackAPI", "Hold", "SlackCall", "blocks_text_size"]


@dataclass
class SlackCall:
    """One Web API call: method name and its arguments (form or JSON, merged)."""

    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class Hold:
    """A call held by :meth:`FakeSlackAPI.hold`: ``reached`` once one arrives; ``release`` it."""

    matches: Callable[[SlackCall], bool]
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    call: SlackCall | None = None

    def release(self) -> None:
        """Answer the held call (and any later match) without waiting."""
        self.released.set()


class FakeSlackAPI(FakeHTTPServer):
    """A Slack workspace with one bot user, threads and files a test seeds."""

    def __init__(self, *, token: str = SLACK_BOT_TOKEN, team_id: str = "T0TEST") -> None:
        super().__init__()
        self.token = token
        self.team_id = team_id
        self.bot_user_id = "U0DESKBOT"
        self.bot_id = "B0DESKBOT"
        self.calls: list[SlackCall] = []
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.posted: dict[str, dict[str, Any]] = {}
        """Every message ``chat.postMessage`` posted, by the ts it was given (deleted too)."""
        self.deleted: set[str] = set()
        """The ts of the posted messages ``chat.delete`` deleted."""
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._failures: dict[str, list[tuple[str, float | None, int]]] = {}
        self._holds: list[Hold] = []
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        self._calls_lock = threading.Lock()

    @property
    def api_url(self) -> str:
        """What to pass as ``base_url`` (or ``SLACK_API_URL``), with the trailing slash."""
        return f"{self.url}/api/"

    def seed_thread(self, channel: str, thread_ts: str, messages: list[dict[str, Any]]) -> None:
        """Messages ``conversations.replies`` returns for this thread (parent first)."""
        self.threads[(channel, thread_ts)] = messages

    def add_file(self, file_id: str, name: str, content: bytes, **extra: Any) -> dict[str, Any]:
        """A file ``files.info`` knows and whose ``url_private`` serves ``content``."""
        info = {
            "id": file_id,
            "name": name,
            "title": name,
            "size": len(content),
            "mimetype": extra.pop("mimetype", "application/octet-stream"),
            # Slack percent-encodes the name in its file URLs.
            "url_private": f"{self.url}/files/{file_id}/{quote(name, errors='replace')}",
            "url_private_download": f"{self.url}/files/{file_id}/"
            f"{quote(name, errors='replace')}?download=1",
            **extra,
        }
        self.files[file_id] = (info, content)
        return info

    def response_url(self, name: str = "cmd") -> str:
        """A ``response_url`` for a slash command payload; posts to it are recorded."""
        return f"{self.url}/response/{name}"

    def fail_next(
        self,
        method: str,
        error: str,
        *,
        retry_after: float | None = None,
        status: int = 200,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with ``error``.

        ``status`` is the HTTP status (500 or 503 for Slack having an outage); the error
        ``ratelimited`` always comes back as a 429 with ``Retry-After``.
        """
        self._failures.setdefault(method, []).extend([(error, retry_after, status)] * times)

    def hold(self, matches: Callable[[SlackCall], bool]) -> Hold:
        """Keep the first call that ``matches`` unanswered (it is recorded) until released.

        The call counts as received, as Slack would have shown the message; the caller
        waits for the response, so a test can kill it at exactly that point.
        """
        hold = Hold(matches)
        self._holds.append(hold)
        return hold

    def messages_in(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's messages a thread shows now (not deleted), oldest first, as last edited."""
        with self._calls_lock:
            posted = list(self.posted.values())
        return sorted(
            (
                m
                for m in posted
                if m.get("channel") == channel
                and m.get("thread_ts") == thread_ts
                and m["ts"] not in self.deleted
            ),
            key=lambda m: float(m["ts"]),
        )

    def calls_to(self, method: str) -> list[SlackCall]:
        """The calls made to one method, in order."""
        with self._calls_lock:
            return [c for c in self.calls if c.method == method]

    def handle(self, request: Recorded) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ") or None
        if request.path.startswith("/files/"):
            return self._download(request, token)
        if request.path.startswith("/response/"):  # a slash command's response_url
            with self._calls_lock:
                self.calls.append(SlackCall("response_url", request.json() or {}, None))
            return Response(200, b"ok")
        if not request.path.startswith("/api/"):
            return Response(404, b"not found")
        method = request.path.removeprefix("/api/")
        args = self._args(request)
        token = token or args.pop("token", None)
        call = SlackCall(method, args, token)
        with self._calls_lock:
            self.calls.append(call)
        self._wait_if_held(call)
        if token != self.token:
            return Response.json({"ok": False, "error": "invalid_auth"})
        if self._failures.get(method):
            error, retry_after, status = self._failures[method].pop(0)
            if error == "ratelimited":
                return Response.json(
                    {"ok": False, "error": error},
                    status=429,
                    **{"Retry-After": str(retry_after or 1)},
                )
            return Response.json({"ok": False, "error": error}, status=status)
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        if answer is None:
            return Response.json({"ok": False, "error": "unknown_method"})
        try:
            return Response.json({"ok": True, **answer(args)})
        except _SlackError as exc:
            return Response.json({"ok": False, "error": str(exc)})

    def _wait_if_held(self, call: SlackCall) -> None:
        for hold in self._holds:
            if not hold.released.is_set() and hold.matches(call):
                with self._calls_lock:
                    first = hold.call is None
                    hold.call = hold.call or call
                if first:
                    hold.reached.set()
                    hold.released.wait()
                return

    @staticmethod
    def _args(request: Recorded) -> dict[str, Any]:
        args: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            args.update(request.json() or {})
        elif request.body:
            for key, value in request.form().items():
                args[key] = _maybe_json(value)
        return args

    def _next_ts(self) -> str:
        with self._calls_lock:  # from the clock, as Slack's, and never the same twice
            self._last_ts = max(round(time.time(), 6), round(self._last_ts + 1e-6, 6))
            return f"{self._last_ts:.6f}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://deskbot-test.slack.com/",
            "team": "deskbot test",
            "user": "deskbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_blocks(args)
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": args.get("text", ""),
            "ts": ts,
        }
        if "blocks" in args:
            message["blocks"] = args["blocks"]
        if "thread_ts" in args:
            message["thread_ts"] = args["thread_ts"]
        if isinstance(args.get("metadata"), dict):
            message["metadata"] = args["metadata"]
        self.posted[ts] = {**message, "channel": args.get("channel")}
        return {"channel": args.get("channel"), "ts": ts, "message": _visible(message, True)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_blocks(args)
        posted = self._own_message(args, "cant_update_message")
        # metadata left out of an update is kept, as Slack keeps it
        posted.update({k: args[k] for k in ("text", "blocks", "metadata") if k in args})
        return {"channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text", "")}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        posted = self._own_message(args, "cant_delete_message")
        self.deleted.add(posted["ts"])
        return {"channel": args.get("channel"), "ts": posted["ts"]}

    def _own_message(self, args: dict[str, Any], not_ours: str) -> dict[str, Any]:
        """The bot's live message ``args`` name (``channel`` + ``ts``), or Slack's error."""
        channel, ts = str(args.get("channel")), str(args.get("ts"))
        posted = self.posted.get(ts)
        if posted is not None and posted.get("channel") == channel and ts not in self.deleted:
            return posted
        seeded = any(
            m.get("ts") == ts for (c, _), ms in self.threads.items() if c == channel for m in ms
        )
        raise _SlackError(not_ours if seeded else "message_not_found")

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"message_ts": self._next_ts()}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel")), str(args.get("ts"))
        seeded = self.threads.get((channel, ts), [])
        posted = [
            m
            for m in list(self.posted.values())
            if m.get("channel") == channel and m.get("thread_ts") == ts
        ]
        thread = sorted([*seeded, *self._shown(posted)], key=lambda m: float(m["ts"]))
        return _page(thread, args)  # parent first

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        posted = [
            m
            for m in list(self.posted.values())
            if m.get("channel") == channel and m.get("thread_ts") in (None, m["ts"])
        ]
        return _page(sorted(self._shown(posted), key=lambda m: float(m["ts"]), reverse=True), args)

    def _shown(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` as reads show them: deleted ones gone, or tombstones with replies."""
        shown = []
        for message in messages:
            if message["ts"] not in self.deleted:
                shown.append(message)
            elif self._has_replies(message):
                shown.append(_tombstone(message))
        return shown

    def _has_replies(self, message: dict[str, Any]) -> bool:
        ts, channel = message["ts"], message.get("channel")
        return any(
            m.get("thread_ts") == ts and m["ts"] != ts and m.get("channel") == channel
            for m in list(self.posted.values())
            if m["ts"] not in self.deleted
        )

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        entry = self.files.get(str(args.get("file")))
        if entry is None:
            raise _SlackError("file_not_found")
        return {"file": entry[0]}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup"))
        if group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"users": self.usergroups[group]}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view") or {}
        return {"view": {"id": f"V{next(self._ids):08d}", **view}}

    def _download(self, request: Recorded, token: str | None) -> Response:
        if token != self.token:
            return Response(403, b"forbidden")
        file_id = request.path.split("/")[2]
        entry = self.files.get(file_id)
        if entry is None:
            return Response(404, b"not found")
        return Response(200, entry[1], {"Content-Type": entry[0]["mimetype"]})


class _SlackError(Exception):
    pass


def _tombstone(message: dict[str, Any]) -> dict[str, Any]:
    """What Slack leaves of a deleted message that has replies."""
    return {
        "type": "message",
        "subtype": "tombstone",
        "user": "USLACKBOT",
        "text": "This message was deleted.",
        "hidden": True,
        "ts": message["ts"],
        "thread_ts": message.get("thread_ts", message["ts"]),
        "channel": message.get("channel"),
    }


def _visible(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A message as a read returns it: without the channel, and metadata only if asked."""
    hidden = {"channel"} if with_metadata else {"channel", "metadata"}
    return {k: v for k, v in message.items() if k not in hidden}


def _page(messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    """One page of a read, Slack's way: ``limit`` (default 100) and an opaque ``cursor``."""
    start = int(str(args.get("cursor") or "0"))
    limit = int(str(args.get("limit") or 100))
    with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
    page = [_visible(m, with_metadata) for m in messages[start : start + limit]]
    more = start + limit < len(messages)
    return {
        "messages": page,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def _maybe_json(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


BLOCKS_TEXT_LIMIT = 12_000
"""Characters of text Slack takes in one message's blocks (undocumented; it answers
``msg_blocks_too_long`` past about 12,000, as reported against its SDKs)."""


def _check_blocks(args: dict[str, Any]) -> None:
    """Slack's Block Kit limits on a posted or updated message."""
    blocks = args.get("blocks")
    if not isinstance(blocks, list):
        return
    if len(blocks) > 50:
        raise _SlackError("invalid_blocks")  # "no more than 50 items allowed"
    for block in blocks:
        text = block.get("text") if isinstance(block, dict) else None
        if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
            raise _SlackError("invalid_blocks")  # "must be less than 3001 characters"
    if blocks_text_size(blocks) > BLOCKS_TEXT_LIMIT:
        raise _SlackError("msg_blocks_too_long")


def blocks_text_size(node: Any) -> int:
    """Characters of text in blocks, as Slack counts them for ``msg_blocks_too_long``."""
    if isinstance(node, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else blocks_text_size(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return sum(blocks_text_size(item) for item in node)
    return 0
