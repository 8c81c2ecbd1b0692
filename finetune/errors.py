"""The exceptions of the fine-tuning package.

FinetuneError                     a fine-tuning step failed
├── FinetuneInputError            the user must fix something first: a missing base directory,
│                                 an unreadable data file, an unknown config key, examples
│                                 whose assistant tokens all fall past ``max_length``
└── LocalModelError               the local model could not answer: a missing directory, an
    │                             empty or too long conversation (finetune.toolcalls)
    └── MalformedToolCallError    a ``<tool_call>`` block that is not a call: bad JSON, no
                                  name, arguments not an object, an unclosed or stray tag

``LocalModelError`` and ``MalformedToolCallError`` live in :mod:`finetune.toolcalls`, beside
the parser that raises them; the application maps ``LocalModelError`` to its backend error."""

from __future__ import annotations

__all__ = ["FinetuneError", "FinetuneInputError"]


class FinetuneError(Exception):
    """A fine-tuning step failed."""


class FinetuneInputError(FinetuneError):
    """Input the user must fix first: a path, a data file, a config value."""
