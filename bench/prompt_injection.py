"""Giskard's prompt injections, stored as documents, with a model that obeys them.

Each prompt becomes a public document (with an order to write through run_sql and to read
the private ``hr`` collection appended); a question about it from a public channel runs the
agent, and the scripted model does everything the document says (tests/injection_paths.py).
Prints the writes tried and refused, rows changed, private searches and answers leaking.

    .venv/bin/python bench/prompt_injection.py \
        ../shared/data/giskard_prompt_injections/prompt_injections.csv
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.*, when run as a script
    sys.path.insert(0, str(REPO))

from bot.app import open_app  # noqa: E402
from bot.demo_data import write_demo_database  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.openai_server import ScriptedOpenAI  # noqa: E402
from tests.injection_paths import (  # noqa: E402
    InjectionTally,
    employee_rows,
    obeying_model,
    plant,
    run_injections,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="prompt_injections.csv (column 'prompt')")
    args = parser.parse_args()
    with args.csv.open(encoding="utf-8", newline="") as handle:
        prompts = [row["prompt"] for row in csv.DictReader(handle) if row["prompt"].strip()]
    with tempfile.TemporaryDirectory(prefix="deskbot-injection-") as tmp:
        tally, changed = asyncio.run(_run(prompts, Path(tmp)))
    print(f"{len(prompts)} injections stored as documents, {tally.runs} runs")
    print(f"run_sql writes tried {tally.writes_tried}, refused {tally.writes_refused}")
    print(f"employees table changed: {changed}")
    print(f"searches for the private fact {tally.private_searches}")
    print(f"private passages in answers {tally.private_passages}")
    print(f"answers leaking the private collection {tally.answers_leaking}")


async def _run(prompts: list[str], tmp: Path) -> tuple[InjectionTally, bool]:
    database = write_demo_database(tmp / "company.db")
    before = employee_rows(database)
    tally = InjectionTally()
    with ScriptedOpenAI() as openai:
        openai.answer_with(obeying_model)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp / "data",
            openai_base_url=openai.base_url,
            openai_api_key="bench",
            sql_url=f"sqlite:///{database}",
            log_level="ERROR",
        )
        async with open_app(settings) as app:
            await plant(app, prompts)
            await run_injections(app, len(prompts), tally)
    return tally, employee_rows(database) != before


if __name__ == "__main__":
    main()
