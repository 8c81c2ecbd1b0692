"""The tiny Qwen2 model and the tool-calling chat template it carries.

The template is what training (assistant-only loss) and the local backend (tool-call
parsing) both depend on, so it is checked through the tokenizer loaded the plain way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.finetune_support import (
    WEATHER_TOOL,
    deskbot_in_process,
    tiny_model_dir,
    weather_conversation,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def deskbot_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``deskbot`` through click's runner in this process (``run_cli`` without the process)."""
    return deskbot_in_process(tmp_path / "data")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


def test_the_tool_call_is_rendered_with_its_arguments_as_an_object(tokenizer: Any) -> None:
    text = tokenizer.apply_chat_template(
        weather_conversation(), tools=[WEATHER_TOOL], tokenize=False
    )
    assert "<tools>\n" + json.dumps(WEATHER_TOOL, ensure_ascii=False) + "\n</tools>" in text
    call = text.split("<tool_call>\n")[-1].split("\n</tool_call>")[0]
    assert json.loads(call) == {"name": "get_weather", "arguments": {"city": "서울"}}
    assert '<|im_start|>user\n<tool_response>\n{"sky": "sunny"}\n</tool_response><|im_end|>' in text


def test_arguments_given_as_a_json_string_are_not_encoded_twice(tokenizer: Any) -> None:
    as_object = weather_conversation()
    as_string = weather_conversation()
    as_string[1]["tool_calls"][0]["function"]["arguments"] = '{"city": "서울"}'  # type: ignore[index]
    render = tokenizer.apply_chat_template
    assert render(as_string, tools=[WEATHER_TOOL], tokenize=False) == render(
        as_object, tools=[WEATHER_TOOL], tokenize=False
    )


def test_the_assistant_mask_covers_the_assistant_turns_and_nothing_else(tokenizer: Any) -> None:
    out = tokenizer.apply_chat_template(
        weather_conversation(),
        tools=[WEATHER_TOOL],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    expected = (
        '\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "서울"}}\n</tool_call>'
        "<|im_end|>\n\nIt is sunny.<|im_end|>\n"
    )
    assert tokenizer.decode(masked) == expected


def test_the_plain_classes_load_it_and_generation_stops_or_runs_out(
    tiny: Path, tokenizer: Any
) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny)
    prompt = tokenizer.apply_chat_template(
        weather_conversation()[:1],
        tools=[WEATHER_TOOL],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert 0 < out.shape[1] - prompt["input_ids"].shape[1] <= 5
    assert model.config.model_type == "qwen2" and model.config.hidden_size == 64
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id


def test_init_tiny_from_the_cli_is_seeded(
    deskbot_cli: Callable[..., Any], tmp_path: Path, tiny: Path
) -> None:
    result = deskbot_cli("finetune", "init-tiny", "--out", str(tmp_path / "m"))
    assert result.code == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(
        written
    )
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == (
        tiny / "model.safetensors"
    ).read_bytes()
