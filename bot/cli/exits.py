"""Exit codes, decided here and nowhere else.

Errors carry no exit code: the packages raise their own exception trees, and this module
maps each type a user can cause or fix to a code (the first matching row wins). The root
group turns them into one line on stderr, ``deskbot: <message>``, without a traceback,
whether the CLI runs as the ``deskbot`` script or through click's test runner.

    0    done
    1    something asked for was not done: a file refused, no answer, a tool refused, a
         missing document, a failed classification
    2    usage, configuration, connection or data problems the user must fix first
    130  interrupted (Ctrl-C)
    143  stopped by SIGTERM (after closing what it opened)
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import click

from bot.errors import ConfigError, DeskbotError, SharedStateError, StorageError
from knowledge.errors import KnowledgeError
from tools.classifier import ClassifierError, ClassifierInputError, ModelLoadError
from tools.errors import BaseToolError, FatalToolError

__all__ = ["USER_ERRORS", "DeskbotGroup", "ExitCode", "exit_code_for"]


class ExitCode(IntEnum):
    """What ``deskbot`` exits with."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130
    TERMINATED = 143


_EXIT_CODES: tuple[tuple[type[Exception], ExitCode], ...] = (
    (ConfigError, ExitCode.USAGE),
    (StorageError, ExitCode.USAGE),
    (SharedStateError, ExitCode.USAGE),
    (ClassifierInputError, ExitCode.USAGE),  # an empty comment, unusable training data
    (ModelLoadError, ExitCode.USAGE),
    (FatalToolError, ExitCode.USAGE),  # the tool's service is missing or unreachable
    (DeskbotError, ExitCode.FAILED),
    (KnowledgeError, ExitCode.FAILED),  # a missing document, a refused collection
    (ClassifierError, ExitCode.FAILED),  # the language model failed or replied nonsense
    (BaseToolError, ExitCode.FAILED),
)

USER_ERRORS: tuple[type[Exception], ...] = tuple(kind for kind, _ in _EXIT_CODES)
"""Every exception type that ends a command with one line instead of a traceback."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for a user's error; :attr:`ExitCode.FAILED` for anything unlisted."""
    for kind, code in _EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return ExitCode.FAILED


class DeskbotGroup(click.Group):
    """The root group: a user's error anywhere below it ends in one line and its code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the group and its command, mapping user errors to their exit codes."""
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"deskbot: {exc}", err=True)
            ctx.exit(exit_code_for(exc))
