"""The training configuration: one dataclass behind both the CLI flags and a YAML file.

    lora_r: 16
    lora_alpha: 32
    target_modules: [q_proj, k_proj, v_proj, o_proj]
    learning_rate: 2.0e-4
    epochs: 3

``load_config(path, overrides)`` reads the YAML file (every key a field name; an unknown key
is an error naming it) and lays the flags the user gave over it. Each field's help text is
the CLI flag's help, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneInputError

__all__ = ["FIELD_TYPES", "TrainConfig", "load_config"]

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _help(text: str) -> Any:
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    """How a LoRA adapter is trained; validated on construction."""

    lora_r: int = field(default=16, metadata=_help("LoRA rank."))
    lora_alpha: int = field(default=32, metadata=_help("LoRA scaling (alpha / r)."))
    lora_dropout: float = field(default=0.05, metadata=_help("Dropout on the LoRA input."))
    target_modules: tuple[str, ...] = field(
        default=DEFAULT_TARGETS, metadata=_help("Modules that get an adapter, comma-separated.")
    )
    learning_rate: float = field(default=2e-4, metadata=_help("Peak learning rate."))
    epochs: float = field(default=3.0, metadata=_help("Passes over the training data."))
    max_steps: int = field(default=-1, metadata=_help("Stop after this many steps (-1: epochs)."))
    max_length: int = field(default=2048, metadata=_help("Tokens per example, tools prompt in."))
    batch_size: int = field(default=4, metadata=_help("Examples per device step."))
    grad_accum: int = field(default=1, metadata=_help("Steps accumulated per optimizer update."))
    warmup_ratio: float = field(default=0.0, metadata=_help("Share of steps spent warming up."))
    eval_steps: int = field(default=50, metadata=_help("Evaluate every N steps (0: never)."))
    save_steps: int = field(default=50, metadata=_help("Checkpoint every N steps."))
    logging_steps: int = field(default=5, metadata=_help("Log the loss every N steps."))
    seed: int = field(default=42, metadata=_help("Seed for shuffling and the adapter's init."))

    def __post_init__(self) -> None:
        positive = ("lora_r", "lora_alpha", "max_length", "batch_size", "grad_accum")
        for name in (*positive, "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise FinetuneInputError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            raise FinetuneInputError("lora_dropout and warmup_ratio must be in [0, 1)")
        if self.learning_rate <= 0 or self.epochs <= 0 or self.eval_steps < 0:
            raise FinetuneInputError("learning_rate and epochs must be > 0, eval_steps >= 0")
        if not self.target_modules:
            raise FinetuneInputError("target_modules names no module")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (``target_modules`` as a list), for YAML, JSON and the model card."""
        return {**dataclasses.asdict(self), "target_modules": list(self.target_modules)}


FIELD_TYPES: dict[str, type] = {
    f.name: (str if f.name == "target_modules" else type(f.default))
    for f in dataclasses.fields(TrainConfig)
}
"""Each field's scalar type as a flag or YAML value carries it (modules: a comma list)."""


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The YAML file at ``path`` (if any) with ``overrides`` (the flags given) laid over it.

    Raises:
        FinetuneInputError: The file is missing or malformed, names an unknown key, or a value
            has the wrong type or is out of range.
    """
    values = _read_yaml(path) if path is not None else {}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return TrainConfig(**{name: _coerce(name, value) for name, value in values.items()})


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FinetuneInputError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise FinetuneInputError(f"config {path} must be a mapping of settings")
    unknown = sorted(set(map(str, data)) - set(FIELD_TYPES))
    if unknown:
        raise FinetuneInputError(
            f"unknown key(s) in {path}: {', '.join(unknown)} (known: {', '.join(FIELD_TYPES)})"
        )
    return {str(k): v for k, v in data.items()}


def _coerce(name: str, value: Any) -> Any:
    if name == "target_modules":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise FinetuneInputError("target_modules must be a list or a comma-separated string")
        return tuple(str(x).strip() for x in items if str(x).strip())
    kind = FIELD_TYPES[name]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FinetuneInputError(f"{name} must be a {kind.__name__}, not {value!r}")
    try:
        coerced = kind(value)
    except ValueError:
        raise FinetuneInputError(f"{name} must be a {kind.__name__}, not {value!r}") from None
    if kind is int and coerced != float(value):
        raise FinetuneInputError(f"{name} must be a whole number, not {value!r}")
    return coerced
