"""The 515 strings of the big list of naughty strings through every front door.

``deskbot ask --json`` (the scripted model calling every enabled tool with the string as each
string argument, then answering), ``deskbot search --json``, a Slack mention's text through
the signed HTTP endpoint and the embedded worker, and a Slack upload's file name: each
string's outcome on each path is answered, refused (one line saying why) or crashed.
Embedded PostgreSQL in a temporary directory; the fakes from tests/fakes. On the shared
2-core machine the 515 take about half an hour (each CLI run opens the app, ~0.8 s).

    .venv/bin/python bench/hostile_strings.py ../shared/data/naughty_strings/blns.json [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.*, when run as a script
    sys.path.insert(0, str(REPO))

from bot.demo_data import write_demo_database, write_demo_stocks  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.openai_server import ScriptedOpenAI  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.hostile_paths import (  # noqa: E402
    Tally,
    run_cli_paths,
    run_slack_texts,
    run_slack_uploads,
    slack_settings,
    slack_stack,
    string_params,
    tool_rule,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("blns", type=Path, help="blns.json of the big list of naughty strings")
    parser.add_argument("--limit", type=int, default=None, help="only the first N strings")
    args = parser.parse_args()
    strings: list[str] = json.loads(args.blns.read_text(encoding="utf-8"))[: args.limit]
    with tempfile.TemporaryDirectory(prefix="deskbot-hostile-") as tmp:
        tally = _run(strings, Path(tmp))
    print(f"{len(strings)} strings; outcomes per path:")
    for path, counter in tally.counts.items():
        line = ", ".join(f"{counter[o]} {o}" for o in ("answered", "refused", "crashed"))
        print(f"  {path:13} {line}")
    for path, reasons in tally.refusals.items():
        print(f"  refused on {path}, e.g.: {reasons}")
    print(f"crashes: {tally.total('crashed')}")
    for path, text, why in tally.crashes[:20]:
        print(f"  {path}: {text!r}: {why!r}")


def _run(strings: list[str], tmp: Path) -> Tally:
    tally = Tally()
    with ScriptedOpenAI() as openai, FakeSlackAPI() as slack:
        env = {  # embedded PostgreSQL in the data directory, as `deskbot` runs by default
            "DESKBOT_DATA_DIR": str(tmp / "data"),
            "DESKBOT_LOG_LEVEL": "ERROR",
            "OPENAI_BASE_URL": openai.base_url,
            "OPENAI_API_KEY": "bench",
            "DESKBOT_SQL_URL": f"sqlite:///{write_demo_database(tmp / 'company.db')}",
            "DESKBOT_STOCK_DATA_DIR": str(write_demo_stocks(tmp / "stocks")[0].parent),
        }
        tools = string_params(env)
        openai.answer_with(tool_rule(tools))
        started = time.perf_counter()
        run_cli_paths(strings, env, tally)
        print(f"CLI paths: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        openai.answer_with(tool_rule({"search_documents": ["query"]}))  # what Slack enables
        values = slack_settings({"data_dir": tmp / "data"}, slack, openai)
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        asyncio.run(_slack(settings, slack, strings, tally))
    return tally


async def _slack(settings: Settings, slack: FakeSlackAPI, strings: list[str], tally: Tally) -> None:
    async with slack_stack(settings, slack) as stack:
        await run_slack_texts(stack, strings, tally)
        await run_slack_uploads(stack, strings, tally)


if __name__ == "__main__":
    os.environ.setdefault("DESKBOT_LOG_LEVEL", "ERROR")
    main()
