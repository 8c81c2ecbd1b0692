"""Exceptions raised by the ``tools`` package.

A tool fails in one of two ways, and the agent loop treats them differently::

    BaseToolError                 base of every error a tool raises on purpose
    ├── ToolError                 the model can fix it (bad argument, unknown table or
    │                             ticker, a refused query, no data in that range): its
    │                             message goes back to the model as the tool's result
    ├── FatalToolError            the run cannot go on (a service is down or missing):
    │   │                         the run ends and the user is told why
    │   ├── SqlUnavailableError   the SQL database cannot be opened or reached
    │   └── QuotesUnavailableError
    │                             the stock data source cannot be reached or read
    └── ClassifierError           (tools.classifier) the comment classifier's own errors,
                                  also raised outside a run (training, the CLI); its tool
                                  turns them into one of the two kinds above

Any other exception from a tool is a bug; the loop ends the run as for a
:class:`FatalToolError` and logs the traceback. Messages are one line, written for the
reader they go to (the model, or the user). How a command-line front door turns these into
exit codes is the CLI's business, not the tools'.
"""

from __future__ import annotations

__all__ = [
    "BaseToolError",
    "FatalToolError",
    "QuotesUnavailableError",
    "SqlUnavailableError",
    "ToolError",
]


class BaseToolError(Exception):
    """Base of every error a tool raises on purpose."""


class ToolError(BaseToolError):
    """A failure the model can correct: the message is returned to it as the tool result."""


class FatalToolError(BaseToolError):
    """A failure that ends the run; the message is shown to the user."""


class SqlUnavailableError(FatalToolError):
    """The SQL database cannot be opened or reached; the run cannot use it."""


class QuotesUnavailableError(FatalToolError):
    """The stock data source (Yahoo Finance, the CSV folder) cannot be reached or read."""
