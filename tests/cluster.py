"""deskbot scaled out, as an operator runs it: real processes on real servers, for fault tests.

One ``deskbot slack --http`` process (the signed Events API endpoint) and any number of
``deskbot worker`` processes share the test's embedded Valkey and PostgreSQL; the model is
the scripted OpenAI server and Slack the fake Web API, both in the test process, so a test
sees every model call and every message the bot posts. Each process runs with the network
guard (``tests/netguard``) and logs JSON to ``WORKDIR/NAME.log``::

    model = QuestionModel()                    # every question: one tool call, then an answer
    openai_server.answer_with(model)
    env = cluster_env(tmp_path, fresh_database.url, redis_url, openai_server, slack_api,
                      DESKBOT_QUEUE_VISIBILITY_TIMEOUT="4")
    async with Cluster(tmp_path, env) as cluster:
        await cluster.start_adapter()
        first, second = await cluster.start_workers(2)
        hold = model.hold("q-3")               # the model keeps q-3's first call waiting
        await cluster.ask(3)                   # a signed app_mention asking "q-3 ..."
        await wait_for(hold.reached.is_set)
        cluster.kill(cluster.holder_of(3))     # SIGKILL the worker running q-3
        hold.release()
        tally = await cluster.settle(slack_api, [3])   # every question answered, then linger
        assert tally.duplicates == [] and tally.missing == []

A question is ``q-N`` in its text, asked in its own thread (``thread_ts`` = its ``ts``); the
:class:`Tally` counts, per thread, the placeholders and the finished answers the fake Slack
API received. :meth:`Cluster.close` ends every process (SIGKILL for those still alive) and
fails the test if one tried to reach a real host or logged a secret (``tests/secret_values``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fakes.openai_server import Reply, ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI, SlackCall
from tests.secret_values import OPENAI_KEY, SLACK_SIGNING_SECRET, leaks

__all__ = [
    "BOT",
    "SECRET",
    "TEAM",
    "Cluster",
    "ModelHold",
    "Process",
    "QuestionModel",
    "Tally",
    "cluster_env",
    "long_answer",
    "question_ts",
    "wait_for",
]

REPO = Path(__file__).resolve().parent.parent
SECRET = SLACK_SIGNING_SECRET
TEAM = "T0CLUSTER"
BOT = "U0DESKBOT"
TICKER = "HNBT"
PROGRESS = ("Thinking…", "생각 중…", "Looking up the quote…", "시세를 확인하는 중…")
_MARKER = re.compile(r"\bq-(\d+)\b")
_PARAGRAPH = re.compile(r"\[q-\d+ para \d+\]")


def question_ts(n: int) -> str:
    """The Slack ``ts`` of question ``n`` (also its thread)."""
    return f"1710000000.{n:06d}"  # apart from the ts the fake gives the bot's messages


async def wait_for(check: Callable[[], object], *, timeout: float = 60.0, what: str = "") -> None:
    """Poll ``check`` until it is truthy (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")
        await asyncio.sleep(0.05)


def long_answer(marker: str, paragraphs: int) -> str:
    """Question ``marker``'s answer in ``paragraphs`` paragraphs of 1,600 characters.

    Each is one Slack section block (two would pass 3,000 characters) and starts with its
    number (``[q-5 para 7]``); 6 make a message (Slack takes ~12,000 characters of blocks),
    so 13 make three.
    """
    filler = "HNBT-closed-at-101.5-that-day " * 60
    paragraph = [f"[{marker} para {n}] " for n in range(paragraphs)]
    paragraph = [(head + filler)[:1600].strip() for head in paragraph]
    return f"Answer to {marker}: {TICKER} closed at 101.5. " + "\n\n".join(paragraph)


# --- the model --------------------------------------------------------------------------


@dataclass
class ModelHold:
    """One question's model call kept waiting: ``reached`` once it arrives; ``release`` it."""

    marker: str
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Let the held call (and later ones) answer."""
        self.released.set()


class QuestionModel:
    """A rule for :meth:`ScriptedOpenAI.answer_with`: each ``q-N`` question gets one
    ``get_stock_quote`` call, then the answer ``"Answer to q-N: ..."``.

    ``tool_delay`` and ``answer_delay`` are how long each of the two model calls takes.
    """

    def __init__(self, *, tool_delay: float = 0.0, answer_delay: float = 0.0) -> None:
        self.tool_delay = tool_delay
        self.answer_delay = answer_delay
        self._holds: dict[str, ModelHold] = {}
        self._long: dict[str, int] = {}

    def answer_long(self, marker: str, paragraphs: int) -> None:
        """Answer question ``marker`` with :func:`long_answer` (several Slack messages)."""
        self._long[marker] = paragraphs

    def hold(self, marker: str) -> ModelHold:
        """Keep the next model call for question ``marker`` (``"q-3"``) waiting."""
        hold = ModelHold(marker)
        self._holds[marker] = hold
        return hold

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        questions = [m for m in messages if m.get("role") == "user"]
        found = _MARKER.search(str(questions[-1].get("content"))) if questions else None
        marker = found.group(0) if found else "?"
        hold = self._holds.get(marker)
        if hold is not None and not hold.released.is_set():
            hold.reached.set()
            hold.released.wait()
        if messages and messages[-1].get("role") == "tool":
            text = f"Answer to {marker}: {TICKER} closed at 101.5."
            if marker in self._long:
                text = long_answer(marker, self._long[marker])
            return Reply(text=text, delay=self.answer_delay)
        return Reply(tool_calls=[("get_stock_quote", {"ticker": TICKER})], delay=self.tool_delay)


# --- what the fake Slack saw ------------------------------------------------------------


def _is_progress(args: dict[str, Any]) -> bool:
    blocks = args.get("blocks") or []
    first = json.dumps(blocks[0], ensure_ascii=False) if blocks else ""
    return bool(blocks) and blocks[0].get("type") == "context" and any(p in first for p in PROGRESS)


@dataclass
class Tally:
    """Per question: placeholders posted and distinct messages showing a finished answer.

    Of a long answer (:func:`long_answer`), the first message counts as the answer; the
    messages continuing it are counted by the test that asks for one.
    """

    placeholders: dict[int, int]
    answers: dict[int, int]
    failures: dict[int, int]

    @classmethod
    def of(cls, slack: FakeSlackAPI, questions: Iterable[int]) -> Tally:
        """Count from the fake Slack API's record."""
        wanted = {question_ts(n): n for n in questions}
        placeholders = dict.fromkeys(wanted.values(), 0)
        finished: dict[int, set[str]] = {n: set() for n in wanted.values()}
        failed: dict[int, set[str]] = {n: set() for n in wanted.values()}
        with slack._calls_lock:
            calls: list[SlackCall] = list(slack.calls)
        for call in calls:
            if call.method == "chat.postMessage":
                thread, ts = call.args.get("thread_ts"), None
            elif call.method == "chat.update":
                ts = str(call.args.get("ts"))
                thread = slack.posted.get(ts, {}).get("thread_ts")
            else:
                continue
            if thread not in wanted:
                continue
            number = wanted[thread]
            if _is_progress(call.args):
                placeholders[number] += call.method == "chat.postMessage"
                continue
            text = json.dumps(call.args.get("blocks") or call.args.get("text"), ensure_ascii=False)
            if "Answer to q-" not in text and _PARAGRAPH.search(text):
                continue  # a long answer's further part
            bucket = finished if "Answer to q-" in text else failed
            bucket[number].add(ts or f"posted-{len(bucket[number])}")
        return cls(
            placeholders,
            {n: len(s) for n, s in finished.items()},
            {n: len(s) for n, s in failed.items()},
        )

    @property
    def answered(self) -> int:
        """Questions with exactly one placeholder and exactly one finished answer."""
        return sum(
            1 for n, count in self.answers.items() if count == 1 and self.placeholders[n] == 1
        )

    @property
    def duplicates(self) -> list[int]:
        """Questions that got a second placeholder or a second finished answer."""
        return sorted(n for n in self.answers if self.answers[n] > 1 or self.placeholders[n] > 1)

    @property
    def missing(self) -> list[int]:
        """Questions without a finished answer."""
        return sorted(n for n, count in self.answers.items() if count == 0)


# --- the processes ----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cluster_env(
    workdir: Path,
    database_url: str,
    redis_url: str,
    openai: ScriptedOpenAI,
    slack: FakeSlackAPI,
    **extra: str,
) -> dict[str, str]:
    """The environment every process of the cluster gets (``extra`` adds or overrides).

    The tool the :class:`QuestionModel` calls reads prices from a CSV written here.
    """
    prices = workdir / "prices"
    prices.mkdir(parents=True, exist_ok=True)
    (prices / f"{TICKER}.csv").write_text(
        "Date,Open,High,Low,Close\n2026-11-26,99,101,98,100\n2026-11-27,100,102,99,101.5\n"
    )
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir / "home"),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "DESKBOT_DATA_DIR": str(workdir / "data"),
        "DESKBOT_LOG_LEVEL": "INFO",
        "DESKBOT_LOG_FORMAT": "json",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "DESKBOT_STOCK_DATA_DIR": str(prices),
        "DESKBOT_RATE_LIMIT": "100000",
        **extra,
    }


@dataclass
class Process:
    """One ``deskbot`` process of the cluster and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.popen.poll() is None

    def logged(self, message: str) -> list[dict[str, Any]]:
        """Its JSON log records whose message contains ``message``."""
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and message in str(record.get("msg", "")):
                records.append(record)
        return records

    def signal(self, signum: int) -> None:
        """Send it ``signum`` (SIGKILL, SIGTERM ...) if it is still running."""
        if self.alive():
            os.kill(self.pid, signum)


class Cluster:
    """The adapter and worker processes of one test; ``async with`` closes them all."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.processes: list[Process] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.AsyncClient(timeout=10)
        (workdir / "logs").mkdir(parents=True, exist_ok=True)

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def spawn(self, name: str, *args: str, **env: str) -> Process:
        """Start ``deskbot ARGS`` with the cluster's environment (plus ``env``)."""
        script = Path(sys.executable).with_name("deskbot")
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(script), *args],
                env={**self.env, **env},
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    async def start_adapter(self, **env: str) -> Process:
        """``deskbot slack --http``, once its endpoint answers."""
        process = self.spawn("slack", "slack", "--http", "--port", str(self.port), **env)
        await self._until_up(process, self._answers_health)
        return process

    async def start_workers(self, count: int, **env: str) -> list[Process]:
        """``count`` ``deskbot worker`` processes, once each has started taking jobs."""
        started = len([p for p in self.processes if p.name.startswith("worker")])
        workers = [self.spawn(f"worker{started + i + 1}", "worker", **env) for i in range(count)]
        for process in workers:
            await self._until_up(process, lambda p=process: bool(p.logged("worker started")))
        return workers

    async def _answers_health(self) -> bool:
        try:
            return (await self.http.get(f"{self.url}/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _until_up(self, process: Process, check: Callable[[], object]) -> None:
        deadline = time.monotonic() + 90
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if not process.alive():
                raise AssertionError(f"{process.name} exited: {process.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{process.name} did not start: {process.log.read_text()[-3000:]}"
                )
            await asyncio.sleep(0.1)

    @property
    def workers(self) -> list[Process]:
        """The worker processes still running."""
        return [p for p in self.processes if p.name.startswith("worker") and p.alive()]

    def kill(self, process: Process, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to ``process`` and, for SIGKILL, reap it."""
        process.signal(signum)
        if signum == signal.SIGKILL:
            process.popen.wait(timeout=10)

    def holder_of(self, n: int) -> Process:
        """The running worker whose log shows it took question ``n``'s job."""
        for process in self.workers:
            if any(question_ts(n) in r["msg"] for r in process.logged("answering ")):
                return process
        raise AssertionError(f"no running worker logged taking question {n}")

    async def ask(
        self,
        n: int,
        *,
        text: str = "what did HNBT close at?",
        retry: int = 0,
        timeout: float = 10.0,
        expect_ok: bool = True,
    ) -> httpx.Response:
        """Deliver question ``n`` as Slack would: a signed ``app_mention`` in its own thread.

        ``retry`` > 0 is Slack's N-th redelivery of the same event (its retry headers); with
        ``expect_ok=False`` a response other than 200 is returned instead of failing, and
        ``timeout`` is how long Slack waits for it (3 s; httpx raises past it).
        """
        ts = question_ts(n)
        body = {
            "token": "verification_token",
            "team_id": TEAM,
            "api_app_id": "A111",
            "event": {
                "type": "app_mention",
                "user": f"U{n:05d}",
                "text": f"<@{BOT}> q-{n} {text}",
                "ts": ts,
                "channel": "C1",
            },
            "type": "event_callback",
            "event_id": f"Ev{ts.replace('.', '')}",
            "event_time": int(time.time()),
            "authorizations": [{"user_id": BOT, "team_id": TEAM, "is_bot": True}],
        }
        raw = json.dumps(body)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
                timestamp=stamp, body=raw
            ),
        }
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
        response = await self.http.post(
            f"{self.url}/slack/events", content=raw.encode(), headers=headers, timeout=timeout
        )
        assert response.status_code == 200 or not expect_ok, response.text
        return response

    async def settle(
        self,
        slack: FakeSlackAPI,
        questions: Iterable[int],
        *,
        timeout: float = 90,
        linger: float = 1.0,
    ) -> Tally:
        """Wait until every question has a finished answer, linger for stragglers, tally."""
        numbers = list(questions)
        await wait_for(
            lambda: not Tally.of(slack, numbers).missing, timeout=timeout, what="every answer"
        )
        await asyncio.sleep(linger)  # a duplicate would show up now
        return Tally.of(slack, numbers)

    async def close(self) -> None:
        """End every process (SIGTERM, then SIGKILL); fail on any real-network attempt."""
        for process in self.processes:
            process.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                left = max(0.1, deadline - time.monotonic())
                await asyncio.to_thread(process.popen.wait, timeout=left)
            process.signal(signal.SIGKILL)
            process.popen.wait(timeout=10)
        await self.http.aclose()
        logs = {p.name: p.log.read_text(errors="replace") for p in self.processes}
        reached = [name for name, text in logs.items() if "tried to reach a real host" in text]
        assert not reached, f"{reached} tried to reach a real host"
        leaked = {name: leaks(text) for name, text in logs.items() if leaks(text)}
        assert not leaked, f"secrets in the logs of {leaked}"
