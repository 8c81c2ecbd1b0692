"""A local Hugging Face model behind the chat-backend protocol, in this process.

:class:`LocalBackend` satisfies the application's ``ChatBackend`` protocol structurally: it
takes Chat Completions request messages (plain dicts) and returns a Chat Completions body,
without importing the application. A turn is: the tokenizer's chat template renders the
conversation and the offered ``tools``; the model generates greedily in a worker thread (the
event loop never waits on it) until the template's end-of-turn token or ``max_new_tokens``;
Hermes ``<tool_call>`` blocks in the output become OpenAI ``tool_calls``
(:mod:`finetune.toolcalls`). Streaming passes the prose on as it is generated and stops at
the first call. The model is a merged directory, or a base directory plus a LoRA adapter
merged on load; it runs in bf16 on a GPU when there is one, in fp32 on the CPU otherwise.

Errors are :class:`~finetune.toolcalls.LocalModelError` (one line each); the application
maps them to its backend error, so the agent loop treats them like any model failure.
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from finetune.libs import lib
from finetune.toolcalls import (
    LocalModelError,
    MalformedToolCallError,
    ParsedTurn,
    VisibleText,
    parse_assistant,
)

__all__ = [
    "LocalBackend",
    "LocalModelError",
    "MalformedToolCallError",
    "ModelInfo",
    "describe_model",
]

TextCallback = Callable[[str], Awaitable[None]]
END_OF_TURN = "<|im_end|>"  # Qwen2.5's; added to whatever the generation config stops on
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass(frozen=True)
class ModelInfo:
    """What ``deskbot doctor`` says about a local model, read without loading its weights."""

    path: Path
    adapter: Path | None
    parameters: int
    device: str
    template_has_tools: bool


class LocalBackend:
    """A local causal language model that answers in Chat Completions wire format.

    Args:
        model_dir: A merged model directory, or the base model when ``adapter`` is given.
        adapter: A LoRA adapter directory (peft) to merge into the base on load.
        max_new_tokens: The most tokens one turn may generate.
        device: ``"cuda"`` or ``"cpu"``; the GPU when there is one, if not given.

    Raises:
        LocalModelError: a directory is missing or holds no model or chat template.
    """

    name: Literal["local"] = "local"

    def __init__(
        self,
        model_dir: Path,
        *,
        adapter: Path | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        device: str | None = None,
    ) -> None:
        self.model_dir = _model_dir(model_dir, "config.json", "model")
        self.adapter = (
            _model_dir(adapter, "adapter_config.json", "LoRA adapter") if adapter else None
        )
        self.model = self.model_dir.name + (f"+{self.adapter.name}" if self.adapter else "")
        self.max_new_tokens = max_new_tokens
        self._device = device
        self.tokenizer = _load_tokenizer(self.adapter or self.model_dir, self.model_dir)
        self._stops = _stop_ids(self.tokenizer)
        self._weights: Any = None
        self._loading = asyncio.Lock()
        self._generating = threading.Lock()  # one generation at a time: they share the model

    async def complete(
        self,
        messages: Sequence[Any],
        *,
        tools: Sequence[dict[str, Any]] = (),
        on_text: TextCallback | None = None,
        max_new_tokens: int | None = None,
    ) -> dict[str, Any]:
        """The next assistant turn as a Chat Completions body; prose goes to ``on_text``.

        ``max_new_tokens`` lowers this turn's bound (never above the backend's own).

        Raises:
            LocalModelError: an empty or too long conversation, or a malformed tool call.
        """
        if not messages:
            raise LocalModelError("the conversation is empty: nothing to answer")
        limit = min(max_new_tokens or self.max_new_tokens, self.max_new_tokens)
        model = await self.load()
        prompt = self._prompt(messages, tools, limit)
        generated = await _Generation(self, model, prompt, limit).run(on_text)
        finish = "length" if self._cut_off(generated, limit) else "stop"
        turn = self._parse(_decode(self.tokenizer, generated), finish, limit)
        finish = "tool_calls" if turn.tool_calls else finish
        message: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if turn.tool_calls:
            message["tool_calls"] = turn.tool_calls
        used = {"prompt_tokens": len(prompt), "completion_tokens": len(generated)}
        return {
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {**used, "total_tokens": sum(used.values())},
        }

    async def load(self) -> Any:
        """The model's weights, loaded (in a worker thread) on first use."""
        async with self._loading:
            if self._weights is None:
                self._weights = await asyncio.to_thread(
                    _load_model, self.model_dir, self.adapter, self.device
                )
                self._stops |= _configured_stops(self._weights)
        return self._weights

    @property
    def device(self) -> str:
        """Where the model runs: ``cuda`` when a GPU is there, else ``cpu``."""
        if self._device is None:
            self._device = _best_device()
        return self._device

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's context window."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    async def close(self) -> None:
        """Let go of the weights (the memory returns once nothing else holds them)."""
        self._weights = None

    def _prompt(
        self, messages: Sequence[Any], tools: Sequence[dict[str, Any]], limit: int
    ) -> list[int]:
        try:
            ids = self.tokenizer.apply_chat_template(
                [_for_template(m) for m in messages],
                tools=list(tools) or None,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        except Exception as exc:  # jinja's errors: the template could not render this turn
            raise LocalModelError(
                f"the chat template cannot render the conversation: {exc}"
            ) from None
        room = _context_size(self._weights) - limit
        if len(ids) > room:
            raise LocalModelError(
                f"the conversation is {len(ids)} tokens; the model takes {room} "
                f"before its {limit} new tokens"
            )
        return list(ids)

    def _parse(self, text: str, finish: str, limit: int) -> ParsedTurn:
        try:
            return parse_assistant(text)
        except MalformedToolCallError as exc:
            if finish != "length":
                raise
            raise MalformedToolCallError(
                f"the model's tool call was cut off at {limit} new tokens ({exc})"
            ) from None

    def _cut_off(self, generated: list[int], limit: int) -> bool:
        ended = bool(generated) and generated[-1] in self._stops
        return not ended and len(generated) >= limit


class _Generation:
    """One turn's generation: the model in a worker thread, its tokens fed back to the loop."""

    def __init__(self, backend: LocalBackend, model: Any, prompt: list[int], limit: int) -> None:
        self.backend = backend
        self.model = model
        self.prompt = prompt
        self.limit = limit
        self.cancelled = threading.Event()
        self.tokens: asyncio.Queue[list[int] | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._skipped_prompt = False

    async def run(self, on_text: TextCallback | None) -> list[int]:
        """The generated token ids; ``on_text`` gets the visible prose as it is decoded."""
        work = asyncio.ensure_future(asyncio.to_thread(self._generate, on_text is not None))
        try:
            if on_text is not None:
                await self._stream(on_text)
            return await asyncio.shield(work)
        finally:
            self.cancelled.set()  # a cancelled turn stops at its next token, not at the end

    async def _stream(self, on_text: TextCallback) -> None:
        generated: list[int] = []
        visible = VisibleText()
        start = read = 0  # decode a short window, not the whole turn at each token
        while (piece := await self.tokens.get()) is not None:
            generated.extend(piece)
            before = _decode(self.backend.tokenizer, generated[start:read])
            after = _decode(self.backend.tokenizer, generated[start:])
            if len(after) <= len(before) or after.endswith("\ufffd"):
                continue  # half a character so far (Korean is split into bytes)
            start, read = read, len(generated)
            if shown := visible.feed(after[len(before) :]):
                await on_text(shown)
        if rest := visible.finish():
            await on_text(rest)

    def _generate(self, streaming: bool) -> list[int]:
        import torch

        try:
            with self.backend._generating, torch.inference_mode():
                inputs = torch.tensor([self.prompt], device=self.model.device)
                output = self.model.generate(
                    input_ids=inputs,
                    attention_mask=torch.ones_like(inputs),
                    generation_config=self._config(),
                    streamer=self if streaming else None,
                    stopping_criteria=[self._stop_when_cancelled],
                )
            return [int(t) for t in output[0, len(self.prompt) :].tolist()]
        finally:
            self.end()

    def _config(self) -> Any:
        stops = sorted(self.backend._stops)
        return lib("transformers").GenerationConfig(
            max_new_tokens=self.limit,
            do_sample=False,  # greedy: the same conversation gets the same turn
            eos_token_id=stops,
            pad_token_id=self.backend.tokenizer.pad_token_id or stops[0],
        )

    def _stop_when_cancelled(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        stop = self.cancelled.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    # The streamer interface generate() calls from the worker thread.
    def put(self, value: Any) -> None:
        """New token ids from ``generate`` (the first call is the prompt, skipped)."""
        if not self._skipped_prompt:
            self._skipped_prompt = True
            return
        ids = [int(t) for t in value.reshape(-1).tolist()]
        self._loop.call_soon_threadsafe(self.tokens.put_nowait, ids)

    def end(self) -> None:
        """Generation is over (or failed): the stream ends."""
        self._loop.call_soon_threadsafe(self.tokens.put_nowait, None)


def _decode(tokenizer: Any, ids: list[int]) -> str:
    """Text of ``ids``; no clean-up of spaces, so pieces decoded apart join up exactly."""
    text: str = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return text


def _model_dir(path: Path, marker: str, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise LocalModelError(
            f"{path}: no such directory (the {what} is read from disk, never downloaded)"
        )
    if not (path / marker).is_file():
        raise LocalModelError(f"{path}: not a {what} directory (no {marker})")
    return path


def _load_tokenizer(path: Path, fallback: Path) -> Any:
    source = path if (path / "tokenizer_config.json").is_file() else fallback
    tokenizer = lib("transformers").AutoTokenizer.from_pretrained(source, local_files_only=True)
    if not tokenizer.chat_template:
        raise LocalModelError(f"{source}: the tokenizer has no chat template")
    return tokenizer


def _stop_ids(tokenizer: Any) -> frozenset[int]:
    """The end-of-turn token and the tokenizer's end-of-sequence token (before loading)."""
    ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TURN)}
    return frozenset(i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id)


def _configured_stops(model: Any) -> frozenset[int]:
    """The generation config's own end tokens (Qwen2.5 lists ``<|endoftext|>`` there too)."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    listed = ids if isinstance(ids, list) else [ids]
    return frozenset(i for i in listed if isinstance(i, int))


def _best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_model(model_dir: Path, adapter: Path | None, device: str) -> Any:
    torch = lib("torch")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = lib("transformers").AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=dtype, local_files_only=True
    )
    if adapter is not None:  # merged once here, so each token costs what the base's does
        with warnings.catch_warnings():
            # peft 0.21 reads a property transformers 5 deprecated; nothing to act on here
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            model = lib("peft").PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.to(device).eval()


def _context_size(model: Any) -> int:
    return int(getattr(model.config, "max_position_embeddings", 0) or 32_768)


def _for_template(message: Any) -> dict[str, Any]:
    """A wire message as chat templates expect it: tool-call arguments as objects."""
    out = dict(message)
    out["content"] = message.get("content") or ""
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [_call_for_template(call) for call in calls]
    return out


def _call_for_template(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call["function"])
    try:  # upstream Qwen2.5 templates write a string argument encoded a second time
        arguments = json.loads(function.get("arguments") or "{}")
    except (TypeError, json.JSONDecodeError):
        arguments = None
    if isinstance(arguments, dict):
        function["arguments"] = arguments
    return {**call, "function": function}


def describe_model(model_dir: Path, *, adapter: Path | None = None) -> ModelInfo:
    """The model's path, size, device and whether its template takes tools.

    Parameters are counted from the safetensors headers, so nothing is loaded.

    Raises:
        LocalModelError: a directory is missing or holds no model or chat template.
    """
    model_dir = _model_dir(model_dir, "config.json", "model")
    adapter = _model_dir(adapter, "adapter_config.json", "LoRA adapter") if adapter else None
    tokenizer = _load_tokenizer(adapter or model_dir, model_dir)
    parameters = _count_parameters(model_dir) + (_count_parameters(adapter) if adapter else 0)
    device = _best_device()
    shown = f"{device} ({'bf16' if device == 'cuda' else 'fp32'})"
    template = str(tokenizer.chat_template)
    return ModelInfo(model_dir, adapter, parameters, shown, "tools" in template)


def _count_parameters(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="np") as weights:
            for key in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shape = weights.get_slice(key).get_shape()
                count = 1
                for size in shape:
                    count *= size
                total += count
    return total
