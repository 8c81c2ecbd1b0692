"""Fine-tuning throughput: training tokens/s and peak memory, LoRA against full fine-tuning.

    .venv/bin/python bench/finetune.py [--models tiny,0.5b] [--modes lora,full]
        [--steps-tiny 20] [--steps-large 3] [--json]

Models: ``tiny`` is what ``deskbot finetune init-tiny`` writes (hidden 64, 2 layers);
``0.5b`` is a Qwen2 configuration of Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads,
2 KV heads, vocabulary 151,936) with random weights, so nothing is downloaded. Both train
on the same tool-calling conversations (the tests' weather set, tools prompt included),
tokenised by the tiny model's tokenizer with assistant-only labels, batch 2, max length
512, AdamW at 1e-4: one untimed step, then the timed ones. LoRA: r 16 on every attention
and MLP projection (the ``deskbot finetune train`` default); full: every weight trains.

Each (model, mode) runs in a child process so its peak resident memory (``ru_maxrss``) is
its own. fp32 on CPU; bf16 on CUDA, where peak memory is the GPU's too. The loop is the
optimiser step itself, without the trainer's logging and checkpoints. Nothing is
asserted; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QWEN_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": True,
}


def _batch(tokenizer: Any, device: str) -> tuple[Any, Any, int]:
    import torch

    from finetune.tokens import tokenize_examples
    from tests.finetune_support import CITIES, WEATHER_TOOL, weather_conversation

    examples = [
        {"messages": weather_conversation(c, a), "tools": [WEATHER_TOOL]} for c, a in CITIES[:2]
    ]
    rows = tokenize_examples(tokenizer, examples, 512, name="bench").rows
    width = max(len(r["input_ids"]) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in rows])
    labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows])
    return ids.to(device), labels.to(device), sum(len(r["input_ids"]) for r in rows)


def _model(name: str, tiny: Path, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if name == "tiny":
        return AutoModelForCausalLM.from_pretrained(tiny, dtype=dtype).to(device)
    torch.manual_seed(0)
    config = Qwen2Config(**QWEN_05B)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).to(device)


def run_one(name: str, mode: str, steps: int) -> dict[str, Any]:
    """Train ``steps`` timed steps in this process and report throughput and memory."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from finetune.config import DEFAULT_TARGETS
    from finetune.tiny import init_tiny

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tiny = init_tiny(Path(tempfile.mkdtemp(prefix="bench-tiny-")))
    model = _model(name, tiny, device)
    if mode == "lora":
        lora = LoraConfig(
            r=16, lora_alpha=32, target_modules=list(DEFAULT_TARGETS), task_type="CAUSAL_LM"
        )
        model = get_peft_model(model, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    ids, labels, tokens = _batch(AutoTokenizer.from_pretrained(tiny), device)
    seconds = 0.0
    for step in range(steps + 1):
        started = time.perf_counter()
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds += (time.perf_counter() - started) if step else 0.0  # step 0 warms up
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    return {
        "model": name,
        "mode": mode,
        "device": device,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in trainable),
        "steps": steps,
        "tokens_per_step": tokens,
        "tokens_per_second": tokens * steps / seconds,
        "seconds_per_step": seconds / steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mib": peak_gpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,0.5b")
    parser.add_argument("--modes", default="lora,full")
    parser.add_argument("--steps-tiny", type=int, default=20)
    parser.add_argument("--steps-large", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--one", nargs=3, metavar=("MODEL", "MODE", "STEPS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], int(args.one[2]))))
        return
    rows = []
    for name in args.models.split(","):
        steps = args.steps_tiny if name == "tiny" else args.steps_large
        for mode in args.modes.split(","):
            child = [sys.executable, __file__, "--one", name, mode, str(steps)]
            done = subprocess.run(child, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{name} {mode} failed: {done.stderr.strip()[-400:]}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    head = ("model", "mode", "device", "trainable", "tokens/s", "s/step", "peak RSS MiB")
    print("{:<6} {:<5} {:<6} {:>13} {:>10} {:>8} {:>13}".format(*head))
    for r in rows:
        print(
            f"{r['model']:<6} {r['mode']:<5} {r['device']:<6} {r['trainable']:>13,} "
            f"{r['tokens_per_second']:>10,.0f} {r['seconds_per_step']:>8.3f} "
            f"{r['peak_rss_mib']:>13,.0f}"
        )


if __name__ == "__main__":
    main()
