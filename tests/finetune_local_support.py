"""The local backend's test model: the tiny model taught a handful of turns by heart.

A random tiny model never writes a tool call by itself, so the tests teach it: a few dozen
full-batch steps of plain next-token training (assistant tokens only, as fine-tuning does)
on a few "lessons", each a conversation, the tools offered and the one assistant turn to
answer with. Greedy decoding then reproduces each lesson's turn from its exact prompt,
which lets the tests drive the local backend the way the scripted server drives the OpenAI
one: the contract's turns, an agent turn with a real tool, and a malformed call.

The model is taught once per test session (a few seconds on CPU) and shared.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.tiny import init_tiny

__all__ = [
    "AGENT_ANSWER",
    "AGENT_QUESTION",
    "BROKEN_QUESTION",
    "INSTRUCTIONS",
    "Lesson",
    "contract_backend",
    "hotel_cap",
    "taught_model_dir",
]

INSTRUCTIONS = "You answer travel policy questions with the tools."
AGENT_QUESTION = "How much may I spend on a hotel in Osaka?"
AGENT_ANSWER = "You may spend up to 150 USD a night in Osaka."
BROKEN_QUESTION = "Look up the hotel cap, but break the call."
BROKEN_CALL = '<tool_call>\n{"name": "hotel_cap", "arguments": {"city": \n</tool_call>'
CAPS = {"Osaka": 150, "Tokyo": 180}
STEPS = 100  # with the rate decaying to 0: every lesson is word-perfect from about 70
_TAUGHT: dict[str, Path] = {}


async def hotel_cap(city: str) -> dict[str, Any]:
    """The most a night in a hotel may cost in a city, in US dollars.

    Args:
        city: The city, in English.
    """
    return {"city": city, "cap_usd": CAPS.get(city)}


@dataclass(frozen=True)
class Lesson:
    """A conversation (wire messages), the tools offered and the assistant turn to learn."""

    messages: list[dict[str, Any]]
    answer: dict[str, Any]
    tools: list[dict[str, Any]] = field(default_factory=list)


def taught_model_dir() -> Path:
    """The tiny model taught every lesson here and the backend contract's (built once)."""
    if "model" not in _TAUGHT:
        folder = Path(tempfile.mkdtemp(prefix="deskbot-taught-model-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        init_tiny(folder, seed=0)
        _teach(folder, [*_contract_lessons(), *_agent_lessons()])
        _TAUGHT["model"] = folder
    return _TAUGHT["model"]


def contract_backend() -> Any:
    """The taught model through the application's wiring, for the backend contract."""
    from bot.app import LocalModelBackend
    from finetune.local import LocalBackend

    return LocalModelBackend(LocalBackend(taught_model_dir()))


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def _text(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def _calls(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": list(calls)}


def _contract_lessons() -> list[Lesson]:
    from tests import test_backend_contract as contract

    asked = [*contract._conversation()]
    call = _calls(_call("c1", "search_documents", {"query": contract.QUESTION}))
    result = {"role": "tool", "tool_call_id": "c1", "content": json.dumps(contract.PASSAGES)}
    answer = _text("The hotel cap in Tokyo is 180 USD [1].")
    return [
        Lesson(asked, answer),
        Lesson(asked, call, [contract.SEARCH]),
        Lesson([*asked, call, result], answer, [contract.SEARCH]),
    ]


def _agent_lessons() -> list[Lesson]:
    from tools.base import Tool, ToolRegistry

    tools = ToolRegistry([Tool.from_function(hotel_cap)]).schemas()
    system = {"role": "system", "content": INSTRUCTIONS}
    asked = [system, {"role": "user", "content": AGENT_QUESTION}]
    call = _calls(_call("c1", "hotel_cap", {"city": "Osaka"}))
    result = {
        "role": "tool",
        "tool_call_id": "c1",
        "content": json.dumps({"city": "Osaka", "cap_usd": 150}, ensure_ascii=False),
    }
    broken = [system, {"role": "user", "content": BROKEN_QUESTION}]
    return [
        Lesson(asked, call, tools),
        Lesson([*asked, call, result], _text(AGENT_ANSWER), tools),
        Lesson(broken, _text(BROKEN_CALL), tools),
    ]


def _teach(folder: Path, lessons: list[Lesson]) -> None:
    """Full-batch next-token training on the lessons' last assistant turns, saved in place."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    inputs, labels = _batch(tokenizer, lessons)
    attention = inputs != tokenizer.pad_token_id  # padding only: it never occurs in a lesson
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / STEPS)
    model.train()
    for _ in range(STEPS):
        loss = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        decay.step()
    model.eval()
    model.save_pretrained(folder)


def _batch(tokenizer: Any, lessons: list[Lesson]) -> tuple[Any, Any]:
    import torch

    rows = []
    for lesson in lessons:
        prompt = tokenizer.apply_chat_template(
            lesson.messages, tools=lesson.tools or None, add_generation_prompt=True
        )["input_ids"]
        whole = tokenizer.apply_chat_template(
            [*lesson.messages, lesson.answer], tools=lesson.tools or None
        )["input_ids"]
        assert whole[: len(prompt)] == prompt, "the template renders the prompt differently"
        rows.append((whole, [-100] * len(prompt) + whole[len(prompt) :]))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    inputs = [ids + [pad] * (width - len(ids)) for ids, _ in rows]
    labels = [lab + [-100] * (width - len(lab)) for _, lab in rows]
    return torch.tensor(inputs), torch.tensor(labels)
