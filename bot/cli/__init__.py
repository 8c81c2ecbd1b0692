"""The ``deskbot`` command line.

One module per command group, each command a module-level function:

    ops          doctor, db, worker, slack, discord
    queue        queue status|dead|retry (the shared Redis queue)
    knowledge    ingest, search, reindex, eval retrieval
    docs         docs list|show|delete
    access       collections list|access|delete
    agent        ask, chat, demo, tools list|call
    classifier   classifier train|eval, classify
    moderation   moderation policy show|set, events, export, replay, purge
    finetune     finetune init-tiny, export, import, train, merge, eval
    model        serve-model (a local model as an OpenAI-compatible endpoint)
    serve_mcp    mcp (the tools as a Model Context Protocol server)

Settings are read once, in the root group's callback, and handed to each command
(:mod:`bot.cli.common`). A user's error ends with one line on stderr and the exit code
:mod:`bot.cli.exits` maps its type to; usage errors exit 2 as click does. SIGTERM and
Ctrl-C cancel the command's work, which closes what it opened (:mod:`bot.cli.stopping`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import click

from bot.cli import (
    access,
    agent,
    classifier,
    docs,
    finetune,
    knowledge,
    model,
    moderation,
    ops,
    queue,
    serve_mcp,
)
from bot.cli.exits import DeskbotGroup, ExitCode
from bot.cli.stopping import Terminated, install_sigterm
from bot.logredact import configured_secrets
from bot.logs import configure_logging
from bot.settings import load_settings

__all__ = ["cli", "main"]


@click.group(cls=DeskbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deskbot", prog_name="deskbot")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """deskbot: the team chatbot for Slack and Discord."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, secrets=configured_secrets(settings))
    ctx.obj = settings


for _command in (
    ops.doctor,
    ops.db,
    ops.worker,
    ops.slack,
    ops.discord,
    queue.queue,
    knowledge.ingest,
    knowledge.search,
    knowledge.reindex,
    knowledge.eval_group,
    docs.docs,
    access.collections_group,
    agent.ask,
    agent.chat,
    agent.demo,
    agent.tools,
    classifier.classifier,
    classifier.classify,
    moderation.moderation,
    finetune.finetune,
    model.serve_model,
    serve_mcp.mcp,
):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI and exit with its code."""
    install_sigterm()
    try:
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("deskbot: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except Terminated:
        click.echo("deskbot: stopped (SIGTERM)", err=True)
        code = ExitCode.TERMINATED
    except click.ClickException as exc:  # usage errors; user errors end in DeskbotGroup
        exc.show()
        code = exc.exit_code
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
