"""The Qwen2.5 tool-calling chat template, kept in the project (nothing is fetched).

It renders OpenAI-shaped messages: a system turn listing the ``tools`` as JSON inside
``<tools>``, assistant tool calls as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
and ``tool`` results as ``<tool_response>`` blocks inside a user turn, each turn between
``<|im_start|>`` and ``<|im_end|>``. Two changes from the upstream template:

- Assistant output sits between ``{% generation %}`` markers, so ``return_assistant_tokens_mask``
  (and TRL's ``assistant_only_loss``) sees exactly the tokens the model must learn, the closing
  ``<|im_end|>`` included (otherwise the model never learns to stop).
- Tool-call arguments given as a JSON string are written as they are, not passed through
  ``tojson`` again: upstream double-encodes them into ``"{\\"city\\": ...}"``, which teaches the
  model to emit a string where the parser expects an object.
"""

from __future__ import annotations

__all__ = ["CHAT_TEMPLATE", "DEFAULT_SYSTEM", "END_OF_TURN", "SPECIAL_TOKENS", "TOOL_TOKENS"]

DEFAULT_SYSTEM = "You are a helpful assistant."
END_OF_TURN = "<|im_end|>"
# Control tokens: never produced by text, skipped when decoding with skip_special_tokens.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", END_OF_TURN)
# Single tokens but ordinary text (as in Qwen2.5), so a decoded reply keeps them for the parser.
TOOL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")

CHAT_TEMPLATE = (
    """{%- macro system_text() -%}
    {%- if messages and messages[0]['role'] == 'system' -%}{{ messages[0]['content'] }}"""
    """{%- else -%}""" + DEFAULT_SYSTEM + """{%- endif -%}
{%- endmacro -%}
{%- if tools %}
    {{- '<|im_start|>system\\n' + system_text() }}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user """
    """query.\\n\\nYou are provided with function signatures within <tools></tools> XML """
    """tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" + (tool | tojson) }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and """
    """arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": """
    """<function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {{- '<|im_start|>system\\n' + system_text() + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- generation %}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- elif not message.tool_calls %}
            {{- '\\n' }}
        {%- endif %}
        {%- for tool_call in message.tool_calls or [] %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' }}
            {%- if tool_call.arguments is string %}
                {{- tool_call.arguments }}
            {%- else %}
                {{- tool_call.arguments | tojson }}
            {%- endif %}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
        {%- endgeneration %}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' + (message.content or '') + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
)
