"""``deskbot finetune train``, ``merge`` and ``eval`` on the tiny model.

The training run is the session's chain (``tests/finetune_chain.py``): the tiny model trained
through the CLI on the runs the agent stored and ``finetune export`` wrote, then merged.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.embedded_pg import EmbeddedPostgres
from tests.conftest import CliResult
from tests.finetune_chain import STEPS, TRAIN_FLAGS, Chain, chain_once
from tests.finetune_support import deskbot_in_process, tiny_model_dir, write_weather_data

pytestmark = pytest.mark.e2e

RunCli = Callable[..., CliResult]


@pytest.fixture
def deskbot_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``deskbot`` through click's runner in this process (``run_cli`` without the process)."""
    return deskbot_in_process(tmp_path / "data")


@pytest.fixture(scope="module")
def chain(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The session's training run: the tiny model on the agent's exported runs."""
    return chain_once(pg_server, tmp_path_factory)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hand-written examples, for the runs that fail before training."""
    return write_weather_data(tmp_path_factory.mktemp("weather"))


def test_training_lowers_the_train_and_eval_loss(chain: Chain) -> None:
    trained = chain.summary
    assert trained["steps"] == STEPS
    assert (trained["examples"], trained["eval_examples"]) == (4, 1)  # data.eval.jsonl found
    assert trained["last_loss"] < trained["first_loss"]
    assert trained["eval_loss_after"] < trained["eval_loss_before"]
    assert trained["tokens_per_second"] > 0
    out = chain.adapter
    assert {"adapter_config.json", "adapter_model.safetensors", "finetune.json"} <= {
        p.name for p in out.iterdir()
    }
    curve = (out / "losses.csv").read_text(encoding="utf-8").splitlines()
    assert curve[0] == "step,train_loss,eval_loss" and len(curve) > STEPS // 4
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG") and not trained["notes"]


def test_resume_continues_the_step_count(deskbot_cli: RunCli, chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    shutil.copytree(chain.adapter, out)
    shutil.rmtree(out / f"checkpoint-{STEPS}")  # as if stopped after the last checkpoint
    resumed_from = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))

    args = ("finetune", "train", "--base", str(chain.tiny), "--data", str(chain.data))
    result = deskbot_cli(
        *args, "--out", str(out), *TRAIN_FLAGS, "--max-steps", str(STEPS + 4), "--resume", "--json"
    )

    assert result.code == 0, result.stderr
    assert resumed_from < STEPS
    assert json.loads(result.stdout)["steps"] == STEPS + 4
    state = json.loads((out / f"checkpoint-{STEPS + 4}" / "trainer_state.json").read_text())
    steps = [row["step"] for row in state["log_history"] if "loss" in row]
    assert steps == sorted(steps) and steps[-1] == STEPS + 4 and steps[0] == 4


# peft asks transformers a deprecated question when it wraps a model; the answer is right.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_merge_gives_the_logits_of_base_plus_adapter(chain: Chain) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged, tiny = chain.merged, chain.tiny  # `finetune merge --shard-size 100KB` wrote it

    index = json.loads((merged / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert {"config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in merged.iterdir()
    }
    card = (merged / "README.md").read_text(encoding="utf-8")
    assert str(tiny) in card and "sha256" in card and "eval loss" in card
    tokenizer = AutoTokenizer.from_pretrained(merged)
    ids = tokenizer("<|im_start|>user\nWeather in Seoul?<|im_end|>", return_tensors="pt").input_ids
    plain = AutoModelForCausalLM.from_pretrained(merged).eval()
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny), chain.adapter
    ).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny).eval()
    with torch.no_grad():
        got, want, before = (m(ids).logits for m in (plain, adapted, base))
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, before, atol=1e-3)  # the adapter did change the model


def test_a_missing_base_says_nothing_is_downloaded(
    deskbot_cli: RunCli, data: Path, tmp_path: Path
) -> None:
    result = deskbot_cli(
        "finetune", "train", "--base", str(tmp_path / "Qwen2.5-0.5B"), "--data", str(data)
    )

    assert result.code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "nothing is fetched from a hub" in result.stderr


def test_examples_cut_before_any_assistant_token_are_counted(
    deskbot_cli: RunCli, tiny: Path, data: Path, tmp_path: Path
) -> None:
    args = ("finetune", "train", "--base", str(tiny), "--data", str(data), "--max-length", "150")
    result = deskbot_cli(*args, "--out", str(tmp_path / "a"))

    assert result.code == 2
    assert "5 of 5 training examples have no assistant token within max_length 150" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_an_empty_data_file_is_one_line(deskbot_cli: RunCli, tiny: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")

    result = deskbot_cli("finetune", "train", "--base", str(tiny), "--data", str(empty))

    assert result.code == 2
    assert result.stderr == f"deskbot: no training examples: {empty} holds no conversation\n"


def test_an_unknown_config_key_is_one_line(
    deskbot_cli: RunCli, tiny: Path, data: Path, tmp_path: Path
) -> None:
    config = tmp_path / "finetune.yaml"
    config.write_text("lora_r: 8\nepoch: 3\n", encoding="utf-8")

    result = deskbot_cli(
        "finetune", "train", "--base", str(tiny), "--data", str(data), "--config", str(config)
    )

    assert result.code == 2
    assert result.stderr.startswith("deskbot: unknown key(s) in") and "epoch" in result.stderr


def test_eval_reports_the_adapter_lowering_perplexity(deskbot_cli: RunCli, chain: Chain) -> None:
    held_out = str(chain.data.with_name("data.eval.jsonl"))
    args = ("finetune", "eval", "--model", str(chain.tiny), "--data", held_out)
    result = deskbot_cli(*args, "--max-new-tokens", "8", "--adapter", str(chain.adapter), "--json")

    assert result.code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["turns"], figures["call_turns"], figures["no_call_turns"]) == (2, 1, 1)
    assert 0 <= figures["parse_rate"] <= 1
    assert figures["chrf"] is None or 0 <= figures["chrf"] <= 100  # None: no answer parsed
    # one held-out example: its perplexity is exp of the trainer's eval loss on it
    trained = chain.summary
    assert figures["perplexity"] == pytest.approx(math.exp(trained["eval_loss_after"]), rel=1e-3)
    assert figures["perplexity"] < math.exp(trained["eval_loss_before"])
