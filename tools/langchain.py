"""deskbot's tools as LangChain tools (``langchain_core``'s ``StructuredTool``).

:func:`as_langchain_tools` wraps each registered :class:`~tools.base.Tool`: same name,
description and JSON schema (the one the agent sends the model), run through
:meth:`Tool.call`, which validates the arguments, with a :class:`~tools.base.ToolContext`
fixed when the tools are made, so identity and scope never come from the model here either.

Errors keep their two kinds: a :class:`~tools.errors.ToolError` (a bad argument, a refused
query, a timeout) becomes the tool message (``status="error"`` when called with a tool
call), which the model can act on; a :class:`~tools.errors.FatalToolError` (the database is
unreachable) is raised and ends the chain, as it ends a run. The tools are async only.

Needs the ``integrations`` extra (``langchain-core``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from langchain_core.tools import StructuredTool, ToolException

from tools.base import Tool, ToolContext, ToolOutput
from tools.errors import ToolError

__all__ = ["as_langchain_tools"]


def as_langchain_tools(
    tools: Iterable[Tool],
    context: ToolContext,
    *,
    names: Iterable[str] | None = None,
) -> list[StructuredTool]:
    """LangChain tools that call ``tools`` as ``context``'s caller.

    Args:
        tools: The tools to wrap: a :class:`~tools.base.ToolRegistry` or any of its tools.
        context: Who calls them (the scope ``search_documents`` reads within); one
            context for all, so citation numbers stay the same across calls.
        names: Only these tools (each must be among ``tools``).

    Returns:
        ``StructuredTool``\\ s whose content is the tool's JSON result (what the agent
        loop gives the model) and whose artifact is the result itself.

    Raises:
        ValueError: A name in ``names`` is not among ``tools``.
    """
    available = {item.name: item for item in tools}
    wanted = list(available) if names is None else list(names)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise ValueError(f"no tool named {missing[0]!r}; tools: {', '.join(available)}")
    return [_wrap(available[name], context) for name in wanted]


def _wrap(tool: Tool, context: ToolContext) -> StructuredTool:
    async def call(**arguments: Any) -> tuple[str, Any]:
        try:
            async with asyncio.timeout(tool.timeout):
                output = await tool.call(context, arguments)
        except TimeoutError:
            raise ToolException(f"{tool.name} timed out after {tool.timeout:g} s") from None
        except ToolError as exc:  # bad arguments included
            raise ToolException(str(exc)) from None
        data = output.data if isinstance(output, ToolOutput) else output
        return json.dumps(data, ensure_ascii=False, default=str), data

    return StructuredTool.from_function(
        coroutine=call,
        name=tool.name,
        description=tool.description,
        # The JSON schema, not the model: LangChain passes the arguments through and
        # Tool.call validates them, so a bad argument reads as it does for the agent.
        args_schema=tool.schema()["function"]["parameters"],
        response_format="content_and_artifact",
        handle_tool_error=True,
    )
