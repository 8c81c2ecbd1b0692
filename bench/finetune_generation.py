"""Local-model generation speed: Hugging Face ``generate`` alone, the local backend, serve-model.

    nice -n 10 .venv/bin/python bench/finetune_generation.py [--models tiny,0.5b]
        [--new-tokens-tiny 128] [--new-tokens-large 32] [--runs 3] [--json]

Models: ``tiny`` is what ``deskbot finetune init-tiny`` writes (hidden 64, 2 layers);
``0.5b`` is a Qwen2 configuration of Qwen2.5-0.5B's shape (hidden 896, 24 layers, vocabulary
151,936) with random weights and the tiny model's tokenizer, so nothing is downloaded. Both
have random weights, so greedy decoding rarely ends early: each turn generates about the
requested tokens, and tokens/s is completion tokens over wall time.

Rows, on the same prompt (a system prompt, one tool's schema and a question: the agent's
first turn, about 300 tokens) and the same greedy settings:

- ``generate``: ``model.generate`` called directly, the floor the backend adds to;
- ``backend``: :meth:`finetune.local.LocalBackend.complete` (template, worker thread,
  parsing), whole and streamed (with time to the first streamed token);
- ``serve-model``: the OpenAI SDK streaming from :func:`finetune.serve.chat_app` over HTTP
  on this machine;
- ``transformers serve`` (the peer): the same SDK call, streaming from Hugging Face's own
  OpenAI-compatible server (``transformers serve DIR``, a process of its own, offline with
  ``HF_HUB_OFFLINE=1``; needs the ``bench`` extra: FastAPI, Uvicorn). ``--no-peer`` leaves
  it out.

Both servers get the same request: the tools, ``max_tokens`` and ``temperature=0`` (greedy).
fp32 on CPU, bf16 on CUDA, for both. Median of ``--runs`` after one untimed warm-up turn,
the rows taken in turn in every run. Nothing is asserted; the exit status is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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
TOOL = {
    "type": "function",
    "function": {
        "name": "hotel_cap",
        "description": "The most a night in a hotel may cost in a city, in US dollars.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city, in English."}},
            "required": ["city"],
        },
    },
}
MESSAGES = [
    {"role": "system", "content": "You answer travel policy questions with the tools."},
    {"role": "user", "content": "How much may I spend on a hotel in Osaka? 오사카 호텔 상한은?"},
]


def _model_dir(name: str, root: Path) -> Path:
    """The tiny model, or the 0.5B shape with random weights beside the tiny tokenizer."""
    from finetune.tiny import init_tiny

    tiny = init_tiny(root / "tiny", seed=0)
    if name == "tiny":
        return tiny
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (("eos", "<|im_end|>"),)}
    config = Qwen2Config(**QWEN_05B, eos_token_id=ids["eos"], pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = root / "0.5b"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


Turn = Callable[[], Awaitable[tuple[int, float | None]]]


async def _timed(turns: dict[str, Turn], runs: int) -> dict[str, dict[str, Any]]:
    """Median tokens/s (and time to first token) per row, the rows taken in turn each run.

    Interleaved, so a neighbour's load on a shared machine falls on every row alike.
    """
    for turn in turns.values():
        await turn()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in turns}
    firsts: dict[str, list[float]] = {name: [] for name in turns}
    for _ in range(runs):
        for name, turn in turns.items():
            began = time.perf_counter()
            tokens, first = await turn()
            rates[name].append(tokens / (time.perf_counter() - began))
            if first is not None:
                firsts[name].append(first - began)
    rows: dict[str, dict[str, Any]] = {}
    for name in turns:
        rows[name] = {"tokens_per_s": round(statistics.median(rates[name]), 1)}
        if firsts[name]:
            rows[name]["first_token_ms"] = round(statistics.median(firsts[name]) * 1000, 1)
    return rows


async def _bench(
    name: str, root: Path, new_tokens: int, runs: int, *, peer: bool
) -> dict[str, Any]:
    from aiohttp import web
    from openai import AsyncOpenAI

    from finetune.local import LocalBackend
    from finetune.serve import chat_app

    model_dir = _model_dir(name, root)
    backend = LocalBackend(model_dir, max_new_tokens=new_tokens)
    model = await backend.load()
    prompt = backend._prompt(MESSAGES, [TOOL], new_tokens)
    runner = web.AppRunner(chat_app(backend), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    client = AsyncOpenAI(base_url=url, api_key="-", max_retries=0)
    turns: dict[str, Turn] = {
        "generate": lambda: _raw(backend, model, prompt),
        "backend": lambda: _backend(backend, stream=False),
        "backend, streamed": lambda: _backend(backend, stream=True),
        "serve-model, streamed": lambda: _served(client, "local", new_tokens),
    }
    clients = [client]
    with contextlib.ExitStack() as stack:
        if peer:
            peer_url = stack.enter_context(_transformers_serve(model_dir, backend.device))
            clients.append(AsyncOpenAI(base_url=peer_url, api_key="-", max_retries=0))
            turns["transformers serve, streamed"] = lambda: _served(
                clients[1], str(model_dir), new_tokens
            )
        try:
            rows = await _timed(turns, runs)
        finally:
            for each in clients:
                await each.close()
            await runner.cleanup()
    if peer:
        ours, theirs = rows["serve-model, streamed"], rows["transformers serve, streamed"]
        ours["vs_transformers_serve"] = round(ours["tokens_per_s"] / theirs["tokens_per_s"], 2)
    return {
        "model": name,
        "device": backend.device,
        "prompt_tokens": len(prompt),
        "new_tokens": new_tokens,
        "rows": rows,
    }


@contextlib.contextmanager
def _transformers_serve(model_dir: Path, device: str) -> Iterator[str]:
    """``transformers serve`` on the local directory (offline), until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        str(model_dir),
        "--host", "127.0.0.1", "--port", str(port),
        "--device", device, "--dtype", "float32" if device == "cpu" else "bfloat16",
        "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"transformers serve exited: {error.strip()[-500:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit("transformers serve did not start within 120 s")


async def _raw(backend: Any, model: Any, prompt: list[int]) -> tuple[int, float | None]:
    import torch

    def generate() -> int:
        inputs = torch.tensor([prompt], device=model.device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=backend.max_new_tokens,
                do_sample=False,
                eos_token_id=sorted(backend._stops),
                pad_token_id=backend.tokenizer.pad_token_id,
            )
        return int(out.shape[1] - len(prompt))

    return await asyncio.to_thread(generate), None


async def _backend(backend: Any, *, stream: bool) -> tuple[int, float | None]:
    first: list[float] = []

    async def on_text(_: str) -> None:
        if not first:
            first.append(time.perf_counter())

    completion = await backend.complete(MESSAGES, tools=[TOOL], on_text=on_text if stream else None)
    return completion["usage"]["completion_tokens"], (first[0] if first else None)


async def _served(client: Any, model: str, new_tokens: int) -> tuple[int, float | None]:
    first: float | None = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        tools=[TOOL],
        max_tokens=new_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return tokens, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,0.5b")
    parser.add_argument("--new-tokens-tiny", type=int, default=128)
    parser.add_argument("--new-tokens-large", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="Leave transformers serve out.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-generation-") as folder:
        for name in args.models.split(","):
            new = args.new_tokens_tiny if name == "tiny" else args.new_tokens_large
            bench = _bench(name, Path(folder), new, args.runs, peer=not args.no_peer)
            results.append(asyncio.run(bench))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        print(
            f"\n{result['model']} on {result['device']}: prompt {result['prompt_tokens']} tokens, "
            f"{result['new_tokens']} new tokens a turn"
        )
        for row, figures in result["rows"].items():
            first = (
                f", first token {figures['first_token_ms']} ms"
                if "first_token_ms" in figures
                else ""
            )
            ratio = figures.get("vs_transformers_serve")
            versus = f", {ratio}x transformers serve" if ratio else ""
            print(f"  {row:<30} {figures['tokens_per_s']:>8} tokens/s{first}{versus}")


if __name__ == "__main__":
    main()
