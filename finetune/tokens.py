"""Examples turned into token ids and labels: the loss falls on assistant tokens only.

The labels come from the chat template's ``{% generation %}`` mask, exactly what TRL's
``assistant_only_loss`` computes, but ahead of the trainer: Arrow would otherwise merge the
different tools' argument objects into one struct (``{"city": .., "query": null}``) and the
template would render arguments the model never saw.

An example whose assistant tokens all fall past ``max_length`` (a long tools prompt and a
short limit) teaches nothing; TRL drops such examples without a word and fails later on an
empty dataset, so here they are an error with their count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finetune.errors import FinetuneInputError
from finetune.template import CHAT_TEMPLATE

__all__ = ["Tokenized", "ensure_training_template", "tokenize_examples"]

IGNORE = -100


@dataclass(frozen=True)
class Tokenized:
    """Token ids and labels per example, and what truncation did."""

    rows: list[dict[str, list[int]]]
    longest: int
    truncated: int

    @property
    def tokens(self) -> int:
        """Tokens in all examples (after truncation)."""
        return sum(len(r["input_ids"]) for r in self.rows)


def ensure_training_template(tokenizer: Any) -> None:
    """Give a Qwen-style tokenizer without ``{% generation %}`` markers the project's template.

    Raises:
        FinetuneInputError: The template has no markers and is not a ChatML one we can replace.
    """
    template = tokenizer.chat_template or ""
    if "generation" in template and "endgeneration" in template:
        return
    if "<|im_start|>" not in tokenizer.get_vocab():
        raise FinetuneInputError(
            "the base model's chat template has no {% generation %} markers, so the assistant "
            "tokens cannot be told apart; add them around the assistant turn"
        )
    tokenizer.chat_template = CHAT_TEMPLATE


def tokenize_examples(
    tokenizer: Any, examples: Sequence[dict[str, Any]], max_length: int, *, name: str
) -> Tokenized:
    """Token ids and assistant-only labels, cut at ``max_length``.

    Raises:
        FinetuneInputError: There are no examples, or some keep no assistant token within
            ``max_length``.
    """
    if not examples:
        raise FinetuneInputError(f"no {name} examples: the file holds no conversation")
    rows, empty, longest, truncated = [], 0, 0, 0
    for example in examples:
        ids, mask = _render(tokenizer, example)
        longest, truncated = max(longest, len(ids)), truncated + (len(ids) > max_length)
        ids, mask = ids[:max_length], mask[:max_length]
        if not any(mask):
            empty += 1
            continue
        labels = [token if keep else IGNORE for token, keep in zip(ids, mask, strict=True)]
        rows.append({"input_ids": ids, "labels": labels})
    if empty:
        raise FinetuneInputError(
            f"{empty} of {len(examples)} {name} examples have no assistant token within "
            f"max_length {max_length} (the longest example is {longest} tokens, the tools "
            "prompt included): raise max_length or offer fewer tools"
        )
    return Tokenized(rows, longest, truncated)


def _render(tokenizer: Any, example: dict[str, Any]) -> tuple[list[int], list[int]]:
    out = tokenizer.apply_chat_template(
        example["messages"],
        tools=example.get("tools") or None,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    return list(out["input_ids"]), list(out["assistant_masks"])
