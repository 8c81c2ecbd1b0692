"""Hostile strings through every front door; shared by the tests and bench/hostile_strings.py.

Each path sorts each string into ``answered`` (the user got an answer), ``refused`` (the user
got one line saying why) or ``crashed`` (a traceback, an exception out of the front door, an
exit code that is neither, or nothing at all). The tests feed :data:`HOSTILE`, generated
here; the bench feeds the 515 strings of the big list of naughty strings.

- ``ask``: ``deskbot ask S --json`` with the scripted model calling every enabled tool with
  S as each string argument (``tool``: those calls' outcomes), then answering.
- ``search``: ``deskbot search S --json``.
- ``slack_text``: a signed ``app_mention`` event whose text is S, through the HTTP endpoint
  and the embedded worker; answered is a final answer in the thread.
- ``slack_upload``: an admin's upload modal with a Markdown file named ``S.md``; the DM
  report says it was stored or why it was refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from slack_sdk.signature import SignatureVerifier

from bot.app import App, open_app
from bot.cli import cli
from bot.settings import Settings
from bot.slack.server import embedded_worker, http_app, slack_adapter
from tests.fakes.openai_server import Reply, ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.secret_values import OPENAI_KEY, SLACK_SIGNING_SECRET

Outcome = Literal["answered", "refused", "crashed"]

SECRET = SLACK_SIGNING_SECRET
TEAM = "T0HOSTILE"
BOT = "U0DESKBOT"
ADMIN = "UADMIN"
ANSWER = "Noted."

HOSTILE: list[str] = [
    "",
    " \t ",
    "\x00",
    "before\x00after",
    "\x07\x08\x1b[31mred\x1b[0m\x7f",
    "\u202etxt.exe",  # right-to-left override
    "\u200b\u200c\u200d\ufeff\u2060",  # zero-width characters
    "9" * 400,
    "-1e309",
    "NaN",
    "0x7fffffffffffffff",
    "'; DROP TABLE employees; --",
    "1' OR '1'='1",
    '"; rm -rf / #',
    "$(reboot)",
    "`id`",
    "%s%s%s%n%x {0} {__class__} %(x)s",
    "{{7*7}} ${7*7}",
    "<script>alert(1)</script>",
    "[bold red]markup[/] [link=http://x]y[/link]",
    "*bold* _it_ ~s~ `code` ``` <!channel> <@U1>",
    "👨‍👩‍👧‍👦🏳️‍🌈 🇰🇷",
    "\ud800",  # a lone surrogate
    "a\udfffb",
    "Z̮̞̠͙͔ͅḀ̗̞͈̻̗Ḷ͙͎̯̹̞͓G̻O̭̗̮",
    "田中さんにあげて下さい 연차는 며칠이야?",
    "ثم نفس سقطت وبالتحديد",
    "../../../../etc/passwd",
    "CON",
    "\\\\server\\share",
    "null",
    "--help",
    "a" * 100_000,
]


@dataclass
class Tally:
    """Outcomes per path, and the strings that crashed (with why) to show."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    crashes: list[tuple[str, str, str]] = field(default_factory=list)
    refusals: dict[str, list[str]] = field(default_factory=dict)  # a few reasons per path

    def add(self, path: str, outcome: Outcome, text: str, why: str = "") -> None:
        self.counts.setdefault(path, Counter())[outcome] += 1
        if outcome == "refused" and why and len(self.refusals.setdefault(path, [])) < 3:
            self.refusals[path].append(why[:200])
        if outcome == "crashed":
            self.crashes.append((path, text[:60], why[:300]))

    def total(self, outcome: Outcome) -> int:
        return sum(counter[outcome] for counter in self.counts.values())


# --- the CLI ----------------------------------------------------------------------------


def tool_rule(tools: Mapping[str, list[str]]) -> Callable[[dict[str, Any]], Reply]:
    """A scripted model that calls every tool with the user's text, then answers."""

    def rule(request: dict[str, Any]) -> Reply:
        last = request["messages"][-1]
        if last["role"] != "user":
            return Reply(text=ANSWER)
        text = last["content"] if isinstance(last["content"], str) else json.dumps(last)
        return Reply(
            tool_calls=[(name, dict.fromkeys(params, text)) for name, params in tools.items()]
        )

    return rule


def string_params(settings_env: Mapping[str, str]) -> dict[str, list[str]]:
    """The enabled tools and their required string parameters, from ``tools list --json``."""
    result = CliRunner().invoke(cli, ["tools", "list", "--json"], env=dict(settings_env))
    out: dict[str, list[str]] = {}
    for schema in json.loads(result.output):
        function = schema["function"]
        properties = function["parameters"]["properties"]
        required = function["parameters"].get("required", [])
        out[function["name"]] = [p for p in required if properties[p].get("type") == "string"]
    return out


def cli_outcome(args: list[str], env: Mapping[str, str]) -> tuple[Outcome, str, Any]:
    """Run ``deskbot ARGS`` in-process as the console script does; parse stdout as JSON."""
    result = CliRunner().invoke(cli, args, env=dict(env), catch_exceptions=True)
    code = result.exit_code
    shown = result.output + (result.stderr if result.stderr_bytes is not None else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        why = "".join(traceback.format_exception(result.exception))[-300:]
        return "crashed", why, None
    if "Traceback" in shown:
        return "crashed", shown[-300:], None
    if code == 0:
        try:
            return "answered", "", json.loads(result.stdout)
        except ValueError:
            return "crashed", f"stdout is not JSON: {result.stdout[:200]!r}", None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    usage = code == 2 and any(line.startswith("Error: ") for line in lines)  # click's usage
    if code in (1, 2) and (len(lines) == 1 or usage or result.stdout.strip()):
        return "refused", "", None
    return "crashed", f"exit {code}: {shown[-300:]!r}", None


def run_cli_paths(strings: Iterable[str], env: Mapping[str, str], tally: Tally) -> None:
    """``ask`` (its tool calls counted as ``tool``) and ``search`` for each string."""
    for text in strings:
        # Options first, then "--": a question such as "--help" is a question (as in a shell).
        outcome, why, body = cli_outcome(["ask", "--json", "--", text], env)
        tally.add("ask", outcome, text, why)
        for call in (body or {}).get("tool_calls", []):
            tally.add("tool", "refused" if call["error"] else "answered", text)
        outcome, why, _ = cli_outcome(["search", "--json", "--", text], env)
        tally.add("search", outcome, text, why)


# --- Slack ------------------------------------------------------------------------------


@dataclass
class SlackStack:
    """The HTTP endpoint, the embedded worker and the app, on the fakes."""

    app: App
    url: str
    slack: FakeSlackAPI
    http: httpx.AsyncClient

    async def post(self, body: dict[str, Any] | str, *, form: bool = False) -> httpx.Response:
        from urllib.parse import urlencode

        raw = urlencode(body) if form and isinstance(body, dict) else body
        raw = raw if isinstance(raw, str) else json.dumps(raw)
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        ts = str(int(time.time()))
        signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=raw)
        headers = {
            "Content-Type": kind,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        return await self.http.post(self.url, content=raw.encode(), headers=headers)


def slack_settings(
    base: Mapping[str, Any], slack: FakeSlackAPI, openai: ScriptedOpenAI
) -> dict[str, Any]:
    """Settings values for the Slack paths (merge over the caller's database and data dir)."""
    return {
        **base,
        "slack_bot_token": slack.token,
        "slack_signing_secret": SECRET,
        "slack_api_url": slack.api_url,
        "openai_base_url": openai.base_url,
        "openai_api_key": OPENAI_KEY,
        "slack_admins": ADMIN,
        "rate_limit": 100_000,
    }


@asynccontextmanager
async def slack_stack(settings: Settings, slack: FakeSlackAPI) -> AsyncIterator[SlackStack]:
    async with open_app(settings) as app, embedded_worker(app):
        server = TestServer(http_app(slack_adapter(app)))
        await server.start_server()
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                yield SlackStack(app, str(server.make_url("/slack/events")), slack, http)
        finally:
            await server.close()
            await app.state.queue.close()


def mention(index: int, text: str) -> dict[str, Any]:
    ts = f"1700000000.{index:06d}"
    event = {"type": "app_mention", "user": "U1", "text": f"<@{BOT}> {text}", "ts": ts}
    return {
        "token": "verification_token",
        "team_id": TEAM,
        "api_app_id": "A111",
        "event": {**event, "channel": "C1"},
        "type": "event_callback",
        "event_id": f"Ev{index:08d}",
        "event_time": 1700000000,
        "authorizations": [{"user_id": BOT, "team_id": TEAM, "is_bot": True}],
    }


PROGRESS = ("Thinking…", "생각 중…", "Searching documents…", "문서를 찾는 중…", "…")


def _thread_replies(slack: FakeSlackAPI) -> dict[str, list[str]]:
    """What the bot posted or edited into each thread but progress lines, by thread ts."""
    placeholders = {ts: m["thread_ts"] for ts, m in list(slack.posted.items()) if "thread_ts" in m}
    out: dict[str, list[str]] = {}
    for call in slack.calls_to("chat.postMessage") + slack.calls_to("chat.update"):
        thread = call.args.get("thread_ts") or placeholders.get(call.args.get("ts"))
        shown = json.dumps([call.args.get("text"), call.args.get("blocks")], ensure_ascii=False)
        if thread and not _is_progress(call.args):
            out.setdefault(thread, []).append(shown)
    return out


def _is_progress(args: dict[str, Any]) -> bool:
    blocks = args.get("blocks") or []
    if blocks and blocks[0].get("type") == "context":
        return any(status in json.dumps(blocks[0], ensure_ascii=False) for status in PROGRESS)
    return False


async def run_slack_texts(stack: SlackStack, strings: list[str], tally: Tally) -> None:
    """Each string as a mention: answered (the model's answer reached the thread) or refused
    (another message ended the thread, e.g. "ask me a question")."""
    for index, text in enumerate(strings):
        response = await stack.post(mention(index, text))
        if response.status_code != 200:
            tally.add("slack_text", "crashed", text, f"HTTP {response.status_code}")
    deadline = time.monotonic() + 60 + len(strings) * 0.5
    pending = {f"1700000000.{i:06d}": text for i, text in enumerate(strings)}
    while pending and time.monotonic() < deadline:
        replies = _thread_replies(stack.slack)
        for ts in list(pending):
            posted = replies.get(ts, [])
            if any(ANSWER in body for body in posted):
                tally.add("slack_text", "answered", pending.pop(ts))
            elif posted:
                tally.add("slack_text", "refused", pending.pop(ts), posted[-1])
        await asyncio.sleep(0.2)
    for text in pending.values():
        tally.add("slack_text", "crashed", text, "nothing but progress in the thread")


async def run_slack_uploads(stack: SlackStack, strings: list[str], tally: Tally) -> None:
    """Files named by the strings, ten per upload modal; each named in the DM report."""
    for start in range(0, len(strings), 10):
        batch = strings[start : start + 10]
        ids = [f"F{start + i:06d}" for i in range(len(batch))]
        for file_id, name in zip(ids, batch, strict=True):
            content = b"# Note\n\nHostile names.\n"  # ".md": the name is tried, not its type
            stack.slack.add_file(file_id, f"{name}.md", content, mimetype="text/markdown")
        before = len(_reports(stack.slack))
        response = await stack.post({"payload": json.dumps(_submission(ids))}, form=True)
        if response.status_code != 200:
            for name in batch:
                tally.add("slack_upload", "crashed", name, f"HTTP {response.status_code}")
            continue
        await _until(lambda n=before: len(_reports(stack.slack)) > n, timeout=60)
        reports = _reports(stack.slack)[before:]
        if not reports:
            for name in batch:
                tally.add("slack_upload", "crashed", name, "no report")
            continue
        counts = _report_counts(reports[0])
        stored, refused = (
            counts.get("stored", 0) + counts.get("unchanged", 0),
            counts.get("refused", 0),
        )
        for index, name in enumerate(batch):
            outcome: Outcome = (
                "answered"
                if index < stored
                else "refused"
                if index < stored + refused
                else "crashed"
            )
            tally.add("slack_upload", outcome, name, reports[0][:300])


async def _until(check: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # noqa: ASYNC110 (polls a fake's record)
        await asyncio.sleep(0.1)


def _reports(slack: FakeSlackAPI) -> list[str]:
    return [
        str(c.args.get("text"))
        for c in slack.calls_to("chat.postMessage")
        if "Documents added" in str(c.args.get("text")) or " refused" in str(c.args.get("text"))
    ]


def _report_counts(report: str) -> dict[str, int]:
    import re

    found = re.search(r"(\d+) stored, (\d+) unchanged, (\d+) refused", report)
    if found is None:
        return {}
    stored, unchanged, refused = (int(n) for n in found.groups())
    return {"stored": stored, "unchanged": unchanged, "refused": refused}


def _submission(file_ids: list[str]) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": ADMIN},
        "api_app_id": "A111",
        "token": "verification_token",
        "trigger_id": "111.222.def",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "deskbot_upload",
            "private_metadata": "[]",
            "state": {
                "values": {
                    "files": {
                        "files": {"type": "file_input", "files": [{"id": f} for f in file_ids]}
                    },
                    "collection": {"collection": {"type": "plain_text_input", "value": "names"}},
                }
            },
        },
    }
