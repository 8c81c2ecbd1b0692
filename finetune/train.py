"""LoRA supervised fine-tuning with TRL's ``SFTTrainer`` on a local base model.

    train(base, data, config, out=out)  ->  TrainResult

The base is a local Hugging Face directory: nothing is fetched from a hub, and a missing
directory says so. Loss falls on assistant tokens only (:mod:`finetune.tokens`). On CPU the
weights train in fp32 without gradient checkpointing; with CUDA in bf16 with it, and with
bitsandbytes installed as QLoRA (4-bit base). Checkpoints go to ``out/checkpoint-N`` every
``save_steps``; ``resume`` picks up the newest one with its optimizer state and step count.
``out`` ends up holding the adapter, the tokenizer with its chat template, ``losses.csv``
(and ``loss.png`` with matplotlib) and ``finetune.json``, the record ``merge`` turns into a
model card.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.config import TrainConfig
from finetune.data import read_jsonl
from finetune.errors import FinetuneInputError
from finetune.libs import lib
from finetune.plots import write_losses
from finetune.tokens import Tokenized, ensure_training_template, tokenize_examples

__all__ = ["RECORD", "TrainResult", "check_base", "train"]

RECORD = "finetune.json"


@dataclass
class TrainResult:
    """What a training run did, for the summary table and the model card."""

    out: Path
    steps: int
    examples: int
    eval_examples: int
    tokens_per_second: float
    seconds: float
    first_loss: float | None
    last_loss: float | None
    eval_loss_before: float | None
    eval_loss_after: float | None
    truncated: int
    plot: Path | None
    notes: list[str] = field(default_factory=list)


def check_base(base: Path) -> Path:
    """``base`` if it is a local model directory.

    Raises:
        FinetuneInputError: It is missing or has no ``config.json``.
    """
    if not (base / "config.json").is_file():
        raise FinetuneInputError(
            f"base model directory {base} not found or has no config.json (nothing is fetched "
            "from a hub: give a local Hugging Face directory, e.g. one `deskbot finetune "
            "init-tiny` wrote)"
        )
    return base


def train(
    base: Path,
    data: Path,
    config: TrainConfig,
    *,
    out: Path,
    eval_data: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a LoRA adapter on ``data`` (and evaluate on ``eval_data``) into ``out``."""
    check_base(base)
    if resume and not _checkpoints(out):
        raise FinetuneInputError(f"nothing to resume: no checkpoint-N directory in {out}")
    # The trainer prints its log lines on stdout; they belong with the progress bar on stderr,
    # so stdout carries only the result (e.g. ``--json``).
    with contextlib.redirect_stdout(sys.stderr):
        return _train(base, data, config, out, eval_data, resume, progress)


def _train(
    base: Path,
    data: Path,
    config: TrainConfig,
    out: Path,
    eval_data: Path | None,
    resume: bool,
    progress: bool,
) -> TrainResult:
    examples = read_jsonl(data)  # a bad file fails before the libraries load
    held_out = read_jsonl(eval_data) if eval_data is not None else None
    if not examples:
        raise FinetuneInputError(f"no training examples: {data} holds no conversation")
    tokenizer = lib("transformers").AutoTokenizer.from_pretrained(base)
    ensure_training_template(tokenizer)
    train_set = tokenize_examples(tokenizer, examples, config.max_length, name="training")
    held = (
        tokenize_examples(tokenizer, held_out, config.max_length, name="eval")
        if held_out is not None
        else None
    )
    trainer = _trainer(base, tokenizer, config, out, train_set, held, progress)
    before = trainer.evaluate()["eval_loss"] if held and not resume else None
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - started
    trainer.save_model(str(out))
    tokenizer.save_pretrained(out)
    result = _result(trainer, out, train_set, held, seconds, before)
    _write_record(out, base, data, config, result)
    return result


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]))


def _trainer(
    base: Path,
    tokenizer: Any,
    config: TrainConfig,
    out: Path,
    train_set: Tokenized,
    held: Tokenized | None,
    progress: bool,
) -> Any:
    datasets, peft, trl = lib("datasets"), lib("peft"), lib("trl")
    cuda = bool(lib("torch").cuda.is_available())
    evaluating = held is not None and config.eval_steps > 0
    args = trl.SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the steps
        max_length=config.max_length,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=config.eval_steps if evaluating else None,
        seed=config.seed,
        bf16=cuda,
        use_cpu=not cuda,
        # TRL turns it on by default (as gradient_checkpointing): it saves GPU memory by
        # recomputing activations, which on CPU only costs another forward pass per step.
        activation_checkpointing=cuda,
        report_to="none",
        save_total_limit=3,  # the newest checkpoints only: each holds the optimizer state
        disable_tqdm=not progress,
        include_num_input_tokens_seen="non_padding",
    )
    lora = peft.LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    return trl.SFTTrainer(
        model=_load_model(base, cuda),
        args=args,
        train_dataset=datasets.Dataset.from_list(train_set.rows),
        eval_dataset=datasets.Dataset.from_list(held.rows) if held else None,
        processing_class=tokenizer,
        peft_config=lora,
    )


def _load_model(base: Path, cuda: bool) -> Any:
    torch, transformers = lib("torch"), lib("transformers")
    if not cuda:
        return transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    options: dict[str, Any] = {"dtype": torch.bfloat16}
    try:  # QLoRA: the frozen base in 4 bits, the adapter in bf16
        lib("bitsandbytes")
        options["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    except ImportError:
        pass
    return transformers.AutoModelForCausalLM.from_pretrained(base, **options)


def _result(
    trainer: Any,
    out: Path,
    train_set: Tokenized,
    held: Tokenized | None,
    seconds: float,
    before: float | None,
) -> TrainResult:
    state = trainer.state
    losses = [row["loss"] for row in state.log_history if "loss" in row]
    after = trainer.evaluate()["eval_loss"] if held else None
    plot, notes = write_losses(out, state.log_history)
    tokens = float(getattr(state, "num_input_tokens_seen", 0) or 0)
    return TrainResult(
        out=out,
        steps=int(state.global_step),
        examples=len(train_set.rows),
        eval_examples=len(held.rows) if held else 0,
        tokens_per_second=tokens / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        eval_loss_before=before,
        eval_loss_after=after,
        truncated=train_set.truncated,
        plot=plot,
        notes=notes,
    )


def _write_record(
    out: Path, base: Path, data: Path, config: TrainConfig, result: TrainResult
) -> None:
    record = {
        "base": str(base.resolve()),
        "data": str(data),
        "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "config": config.to_dict(),
        "steps": result.steps,
        "examples": result.examples,
        "eval_examples": result.eval_examples,
        "first_loss": result.first_loss,
        "last_loss": result.last_loss,
        "eval_loss_before": result.eval_loss_before,
        "eval_loss_after": result.eval_loss_after,
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
