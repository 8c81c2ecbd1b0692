"""The fake Discord's gateway websocket: HELLO, IDENTIFY, READY, dispatch, RESUME.

Each IDENTIFY opens a session with its own sequence numbers and a log of what was
dispatched to it; a RESUME replays the log after the client's last sequence (or all of it,
once, after ``reconnect(replay_all=True)``), so nothing dispatched while the client was away
is lost. Events are filtered by the session's intents as Discord filters them. Everything
here runs on the fake's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_world import APPLICATION_ID, BOT_ID, GUILD_ID, World

__all__ = ["INTENT_BITS", "Gateway", "Session"]

GUILDS, MEMBERS, GUILD_MESSAGES, DIRECT_MESSAGES = 1 << 0, 1 << 1, 1 << 9, 1 << 12
MODERATION = 1 << 2
PRESENCES, MESSAGE_CONTENT = 1 << 8, 1 << 15
INTENT_BITS = {"members": MEMBERS, "presences": PRESENCES, "message_content": MESSAGE_CONTENT}
# The application flags that say a privileged intent is enabled (the "limited" ones).
INTENT_FLAGS = {"members": 1 << 15, "presences": 1 << 13, "message_content": 1 << 19}
_CLOSE_REASONS = {
    1001: "Going away.",
    4000: "Unknown error.",
    4004: "Authentication failed.",
    4014: "Disallowed intent(s).",
}


@dataclass
class Session:
    """One gateway session: what it asked for and every event dispatched to it."""

    id: str
    intents: int
    seq: int = 0
    log: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    conn: _Connection | None = None
    alive: bool = True
    replay_all: bool = False


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    outbox: asyncio.Queue[str | int] = field(default_factory=asyncio.Queue)
    session: Session | None = None
    closed_by_us: bool = False

    def send(self, payload: dict[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(payload))


class Gateway:
    """Serves ``/gateway``; ``broadcast`` dispatches an event to every live session."""

    def __init__(
        self, world: World, *, token: str, intents: frozenset[str], heartbeat_ms: int
    ) -> None:
        self.world = world
        self.token = token
        self.enabled = intents
        self.heartbeat_ms = heartbeat_ms
        self.url = ""  # set once the server has its port
        self.sessions: dict[str, Session] = {}
        self.identifies = 0
        self.resumes = 0
        self.readies = 0
        self.close_codes: list[int] = []
        self.errors: list[str] = []
        self._conns: set[_Connection] = set()

    @property
    def application_flags(self) -> int:
        """``flags`` of the application: one bit per privileged intent enabled."""
        return sum(INTENT_FLAGS[name] for name in self.enabled)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """One websocket connection, from HELLO to close."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Connection(ws)
        self._conns.add(conn)
        writer = asyncio.create_task(self._write(conn))
        conn.send({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": self.heartbeat_ms}})
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_payload(conn, json.loads(msg.data))
        except Exception as exc:  # a bug in the fake must fail the test, not hang it
            self.errors.append(f"gateway: {type(exc).__name__}: {exc}")
        finally:
            self._conns.discard(conn)
            self._closed(conn)
            writer.cancel()
        return ws

    def broadcast(self, event: str, data: dict[str, Any]) -> None:
        """Dispatch to every live session whose intents cover the event."""
        for session in self.sessions.values():
            shown = _visible(session.intents, event, data) if session.alive else None
            if shown is not None:
                session.seq += 1
                session.log.append((session.seq, event, shown))
                if session.conn is not None:
                    session.conn.send({"op": 0, "s": session.seq, "t": event, "d": shown})

    def reconnect(self, *, replay_all: bool, op7: bool, invalidate: bool) -> None:
        """Drop every connection (close 4000, or op 7 RECONNECT); ``invalidate``: end sessions."""
        for session in self.sessions.values():
            conn = session.conn
            if conn is None:
                continue
            session.replay_all = replay_all
            session.alive = not invalidate  # a RESUME of a dead session gets op 9
            session.conn = None  # from now on events wait in the log for the RESUME
            if op7:
                conn.send({"op": 7, "s": None, "t": None, "d": None})
            else:
                conn.outbox.put_nowait(4000)

    async def close_all(self) -> None:
        """Close every connection (the server is stopping)."""
        for conn in list(self._conns):
            conn.closed_by_us = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"Going away."), 1)

    def _on_payload(self, conn: _Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            conn.send({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2:
            self._identify(conn, data or {})
        elif op == 6:
            self._resume(conn, data or {})
        elif op == 8:
            self._members_chunk(conn, data or {})

    def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        self.identifies += 1
        if data.get("token") != self.token:
            conn.outbox.put_nowait(4004)
            return
        intents = int(data.get("intents", 0))
        refused = [n for n, bit in INTENT_BITS.items() if intents & bit and n not in self.enabled]
        if refused:
            conn.outbox.put_nowait(4014)
            return
        session = Session(uuid.uuid4().hex, intents, conn=conn)
        self.sessions[session.id] = session
        conn.session = session
        self._send_ready(session)
        self.readies += 1

    def _send_ready(self, session: Session) -> None:
        ready = {
            "v": 10,
            "user": {**self.world.users[BOT_ID], "verified": True, "mfa_enabled": False},
            "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "shard": [0, 1],
            "application": {"id": APPLICATION_ID, "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }
        with self.world.lock:
            guild = self.world.guild(all_members=bool(session.intents & MEMBERS))
        self._send(session, "READY", ready)
        self._send(session, "GUILD_CREATE", guild)

    def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        self.resumes += 1
        if data.get("token") != self.token:
            conn.outbox.put_nowait(4004)
            return
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or not session.alive:
            conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        if session.conn is not None:
            session.conn.outbox.put_nowait(4000)
        session.conn, conn.session = conn, session
        last = -1 if session.replay_all else int(data.get("seq") or 0)
        session.replay_all = False
        for seq, event, shown in session.log:
            if seq > last:
                conn.send({"op": 0, "s": seq, "t": event, "d": shown})
        self._send(session, "RESUMED", {})

    def _members_chunk(self, conn: _Connection, data: dict[str, Any]) -> None:
        if conn.session is None:
            return
        with self.world.lock:
            members = self.world.guild(all_members=True)["members"]
        wanted = {str(u) for u in data.get("user_ids") or []}
        chunk = {
            "guild_id": GUILD_ID,
            "members": [m for m in members if not wanted or m["user"]["id"] in wanted],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        self._send(conn.session, "GUILD_MEMBERS_CHUNK", chunk)

    def _send(self, session: Session, event: str, data: dict[str, Any]) -> None:
        """A dispatch outside the replay log (the handshake, RESUMED, member chunks)."""
        session.seq += 1
        if session.conn is not None:
            session.conn.send({"op": 0, "s": session.seq, "t": event, "d": data})

    async def _write(self, conn: _Connection) -> None:
        while True:
            item = await conn.outbox.get()
            if isinstance(item, int):
                conn.closed_by_us = True
                self.close_codes.append(item)
                await conn.ws.close(code=item, message=_CLOSE_REASONS[item].encode())
                return
            try:
                await conn.ws.send_str(item)
            except ConnectionError:  # the client went away; the session log keeps the event
                return

    def _closed(self, conn: _Connection) -> None:
        session = conn.session
        if session is None or session.conn is not conn:
            return
        session.conn = None
        if not conn.closed_by_us and conn.ws.close_code in (1000, 1001):
            session.alive = False  # a clean close ends the session, as on Discord


def _visible(intents: int, event: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """What a session with ``intents`` receives of an event (None: nothing)."""
    if event.startswith("MESSAGE_"):
        in_guild = "guild_id" in data
        if not intents & (GUILD_MESSAGES if in_guild else DIRECT_MESSAGES):
            return None
        if in_guild and not intents & MESSAGE_CONTENT and not _addressed_to_bot(data):
            return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data
    if event.startswith(("GUILD_", "THREAD_", "CHANNEL_")) and not intents & GUILDS:
        return None
    if event.startswith("GUILD_MEMBER_") and not intents & MEMBERS:
        return None
    if event.startswith("GUILD_BAN_") and not intents & MODERATION:
        return None
    return data


def _addressed_to_bot(message: dict[str, Any]) -> bool:
    """Discord sends content without the intent for the bot's own messages and mentions."""
    author = message.get("author", {}).get("id")
    return author == BOT_ID or any(u.get("id") == BOT_ID for u in message.get("mentions", []))
