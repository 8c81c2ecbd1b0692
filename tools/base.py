"""Tools as plain typed async functions, and the registry the agent calls them through.

A tool is an ``async def`` whose first parameter may be a :class:`ToolContext` (who asked,
where, which collections they may read); the rest are the arguments the model chooses.
Name, description and JSON schema come from the signature and the Google-style docstring,
and the arguments are validated with pydantic before the function runs.

A tool fails in one of two ways (:mod:`tools.errors` draws the tree): a
:class:`~tools.errors.ToolError` the model can fix, whose message goes back to it as the
tool's result, and a :class:`~tools.errors.FatalToolError` that ends the run. Invalid
arguments are a :class:`~tools.errors.ToolError`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from knowledge.search import Citation, Scope
from tools.errors import FatalToolError, ToolError

__all__ = [
    "CitationBook",
    "FatalToolError",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "ToolRegistry",
]


class CitationBook:
    """Numbers the sources cited during one run, so [1], [2] stay stable across tool calls."""

    def __init__(self) -> None:
        self._numbers: dict[tuple[str, int | None, str | None], int] = {}
        self.citations: list[Citation] = []

    def cite(self, citation: Citation) -> int:
        """The number of ``citation`` in this run, giving it the next one if it is new."""
        key = (str(citation.document_id), citation.page, citation.section)
        if key not in self._numbers:
            self.citations.append(citation)
            self._numbers[key] = len(self.citations)
        return self._numbers[key]

    def get(self, number: int) -> Citation | None:
        """The citation numbered ``number`` (1-based), if any."""
        return self.citations[number - 1] if 0 < number <= len(self.citations) else None


@dataclass
class ToolContext:
    """Identity and authority for one run; tools read it, the model never sets it."""

    scope: Scope = field(default_factory=Scope)
    user_id: str | None = None
    channel_id: str | None = None
    citations: CitationBook = field(default_factory=CitationBook)

    @classmethod
    def operator(cls) -> ToolContext:
        """The server operator's context (CLI): reads every collection."""
        return cls(scope=Scope.everything())


@dataclass(frozen=True)
class ToolOutput:
    """A tool's JSON result plus a short Markdown rendering for people (chat, CLI)."""

    data: Any
    markdown: str | None = None


ToolFunction = Callable[..., Awaitable[Any]]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Tool:
    """One callable tool: its schema for the model and the function behind it."""

    name: str
    description: str
    function: ToolFunction
    arguments: type[BaseModel]
    takes_context: bool
    timeout: float = 30.0

    @classmethod
    def from_function(cls, function: ToolFunction, *, timeout: float = 30.0) -> Tool:
        """Build a tool from an async function's signature and docstring (named after it)."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"tool {function.__name__!r} must be an async function")
        summary, arg_docs = _parse_docstring(inspect.getdoc(function) or "")
        hints = get_type_hints(function, include_extras=True)
        params = list(inspect.signature(function).parameters.values())
        takes_context = bool(params) and hints.get(params[0].name) is ToolContext
        fields: dict[str, Any] = {}
        for param in params[1:] if takes_context else params:
            default = ... if param.default is inspect.Parameter.empty else param.default
            annotation = hints.get(param.name, str)
            fields[param.name] = (
                annotation,
                Field(default, description=arg_docs.get(param.name)),
            )
        tool_name = function.__name__
        model = create_model(f"{tool_name}_arguments", __base__=_Arguments, **fields)
        return cls(tool_name, summary, function, model, takes_context, timeout)

    def schema(self) -> dict[str, Any]:
        """The Chat Completions ``tools`` entry for this tool."""
        parameters = self.arguments.model_json_schema()
        parameters.pop("title", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    def validate(self, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
        """Arguments checked against the schema; a :class:`ToolError` says what is wrong."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except json.JSONDecodeError as exc:
                raise ToolError(f"arguments are not valid JSON: {exc.msg}") from None
        if not isinstance(arguments, Mapping):
            raise ToolError("arguments must be a JSON object")
        try:
            parsed = self.arguments.model_validate(dict(arguments))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    async def call(self, context: ToolContext, arguments: Mapping[str, Any] | str) -> Any:
        """Validate ``arguments`` and run the tool."""
        values = self.validate(arguments)
        if self.takes_context:
            return await self.function(context, **values)
        return await self.function(**values)


class ToolRegistry:
    """The tools one agent may call, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool) -> None:
        """Register a tool; names are unique."""
        if item.name in self._tools:
            raise ValueError(f"a tool named {item.name!r} is already registered")
        self._tools[item.name] = item

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, if registered."""
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """Registered tool names, in registration order."""
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """Chat Completions ``tools`` for every registered tool."""
        return [item.schema() for item in self._tools.values()]


_ARG_LINE = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (everything before ``Args:``) and per-argument text."""
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in {"Args:", "Arguments:", "Returns:", "Raises:"}:
            section, current = stripped, None
            continue
        if section is None:
            description.append(line)
        elif section in {"Args:", "Arguments:"}:
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current and stripped:
                args[current] = f"{args[current]} {stripped}"
    paragraphs = "\n".join(description).strip().split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs), args
