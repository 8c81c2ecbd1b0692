"""A model's tool calling measured on held-out conversations.

For each assistant turn of each example, the model is given the conversation up to that
turn (tools in the system prompt, as in training), generates greedily, and its text is read
with the same parser the local backend uses; :mod:`finetune.metrics` compares the result
with the teacher's turn. Perplexity is taken over the teacher's assistant tokens of the
same examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune.data import read_jsonl
from finetune.errors import FinetuneInputError
from finetune.libs import lib
from finetune.metrics import Scores, score_turn
from finetune.tokens import IGNORE, tokenize_examples
from finetune.toolcalls import MalformedToolCallError, parse_assistant

__all__ = ["evaluate_model"]


def evaluate_model(
    model_dir: Path,
    data: Path,
    *,
    adapter: Path | None = None,
    max_new_tokens: int = 128,
    max_length: int = 4096,
) -> dict[str, Any]:
    """The metrics of the model at ``model_dir`` (plus ``adapter``) on the examples in ``data``."""
    if not (model_dir / "config.json").is_file():
        raise FinetuneInputError(f"{model_dir} is not a model directory (no config.json)")
    model, tokenizer = _load(model_dir, adapter)
    examples = read_jsonl(data)
    scores = Scores()
    for example in examples:
        for index, message in enumerate(example["messages"]):
            if message["role"] == "assistant":
                text = _generate(model, tokenizer, example, index, max_new_tokens)
                scores.add(score_turn(message, _parsed(text), example.get("tools") or []))
    figures = scores.as_dict()
    figures["perplexity"] = _perplexity(model, tokenizer, examples, max_length)
    return {"model": str(model_dir), "adapter": str(adapter) if adapter else None, **figures}


def _load(model_dir: Path, adapter: Path | None) -> tuple[Any, Any]:
    transformers = lib("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        model = lib("peft").PeftModel.from_pretrained(model, adapter)
    tokenizer = transformers.AutoTokenizer.from_pretrained(adapter or model_dir)
    return model.eval(), tokenizer


def _generate(model: Any, tokenizer: Any, example: dict[str, Any], turn: int, limit: int) -> str:
    prompt = tokenizer.apply_chat_template(
        example["messages"][:turn],
        tools=example.get("tools") or None,
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with lib("torch").no_grad():
        out = model.generate(**prompt, max_new_tokens=limit, do_sample=False)
    new = out[0][prompt["input_ids"].shape[1] :]
    return str(tokenizer.decode(new, skip_special_tokens=True))


def _parsed(text: str) -> dict[str, Any] | None:
    try:
        turn = parse_assistant(text)
    except MalformedToolCallError:
        return None
    return {"role": "assistant", "content": turn.content, "tool_calls": turn.tool_calls}


def _perplexity(
    model: Any, tokenizer: Any, examples: Sequence[dict[str, Any]], max_length: int
) -> float | None:
    """exp of the mean loss per assistant token of the teacher's turns."""
    torch = lib("torch")
    rows = tokenize_examples(tokenizer, examples, max_length, name="eval").rows
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            labels = torch.tensor([row["labels"]])
            loss = model(input_ids=torch.tensor([row["input_ids"]]), labels=labels).loss
            tokens = int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one
            total, count = total + float(loss) * tokens, count + tokens
    return math.exp(total / count) if count else None
