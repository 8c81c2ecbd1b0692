"""A trained adapter folded into its base: the directory a server loads as a plain model.

    merge(adapter, out, shard_size="2GB")  ->  MergeResult

``out`` holds ``config.json``, ``generation_config.json``, the weights as safetensors
(``model-0000N-of-0000M.safetensors`` plus ``model.safetensors.index.json`` once they pass
``shard_size``), the tokenizer files with the chat template, and ``README.md``: a short
model card naming the base, the training data's hash, the config and the eval figures.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneInputError
from finetune.libs import lib
from finetune.train import RECORD, check_base

__all__ = ["MergeResult", "base_of", "merge"]


@dataclass(frozen=True)
class MergeResult:
    """The merged directory and what is in it."""

    out: Path
    base: Path
    shards: int
    parameters: int


def base_of(adapter: Path) -> Path:
    """The base model an adapter was trained on, as training recorded it.

    Raises:
        FinetuneInputError: ``adapter`` is not an adapter directory.
    """
    config = adapter / "adapter_config.json"
    if not config.is_file():
        raise FinetuneInputError(
            f"{adapter} is not a LoRA adapter directory (no adapter_config.json)"
        )
    record = adapter / RECORD
    if record.is_file():
        return Path(json.loads(record.read_text(encoding="utf-8"))["base"])
    return Path(json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"])


def merge(
    adapter: Path, out: Path, *, shard_size: str = "2GB", base: Path | None = None
) -> MergeResult:
    """Fold ``adapter`` into its base (or ``base``) and save the result to ``out``."""
    base = check_base(base or base_of(adapter))
    transformers, peft = lib("transformers"), lib("peft")
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    merged = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, max_shard_size=shard_size)
    transformers.AutoTokenizer.from_pretrained(adapter).save_pretrained(out)
    shards = len(list(out.glob("model*.safetensors")))
    parameters = sum(p.numel() for p in merged.parameters())
    _write_card(out, base, _record(adapter), shards, parameters)
    return MergeResult(out, base, shards, parameters)


def _record(adapter: Path) -> dict[str, Any]:
    path = adapter / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_card(
    out: Path, base: Path, record: dict[str, Any], shards: int, parameters: int
) -> None:
    config = record.get("config", {})
    lines = [
        f"# {out.name}",
        "",
        "A LoRA fine-tune of the deskbot agent's tool-calling conversations, merged into its",
        "base. Load it with `AutoModelForCausalLM.from_pretrained` or serve it with",
        "`deskbot serve-model`; the chat template renders tools the Qwen2.5 way.",
        "",
        f"- base: `{base}`",
        f"- training data: `{record.get('data', '?')}` (sha256 `{record.get('data_sha256', '?')}`)",
        f"- examples: {record.get('examples', '?')} train, {record.get('eval_examples', '?')} eval",
        f"- steps: {record.get('steps', '?')}",
        f"- train loss: {_num(record.get('first_loss'))} -> {_num(record.get('last_loss'))}",
        f"- eval loss: {_num(record.get('eval_loss_before'))} -> "
        f"{_num(record.get('eval_loss_after'))}",
        f"- parameters: {parameters:,} in {shards} safetensors file(s)",
        f"- merged: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "## Training config",
        "",
        "```json",
        json.dumps(config, indent=2),
        "```",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"
