#!/usr/bin/env bash
# Fine-tuning on a GPU: the throughput bench in bf16, then `deskbot finetune train` end to
# end on the tiny model (bf16; QLoRA when bitsandbytes is installed), merge and eval.
#
#   bash bench/finetune_gpu.sh [OUT_DIR]
#
# Needs the project's .venv with the ml extra and a CUDA build of torch; nothing is
# downloaded (both models are built locally with random weights). Prints the bench table,
# the training summary and the eval figures; everything it writes stays under OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d -t deskbot-ft-gpu-XXXX)}"
py=.venv/bin/python
deskbot=.venv/bin/deskbot

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
"$py" -c "import bitsandbytes" 2>/dev/null && echo "bitsandbytes: QLoRA (4-bit base)" || echo "bitsandbytes missing: bf16 LoRA"

"$py" bench/finetune.py --steps-tiny 50 --steps-large 20 | tee "$out/bench.txt"

"$deskbot" finetune init-tiny --out "$out/tiny"
"$py" -c "import sys; from pathlib import Path; from tests.finetune_support import write_weather_data; write_weather_data(Path(sys.argv[1]))" "$out/data"
"$deskbot" finetune train --base "$out/tiny" --data "$out/data/data.jsonl" --out "$out/adapter" \
    --learning-rate 0.01 --batch-size 2 --max-length 512 --max-steps 300 --eval-steps 50 \
    --save-steps 100 --no-progress
"$deskbot" finetune merge --adapter "$out/adapter" --out "$out/merged"
"$deskbot" finetune eval --model "$out/tiny" --data "$out/data/data.jsonl"
"$deskbot" finetune eval --model "$out/merged" --data "$out/data/data.jsonl"
echo "results in $out"
