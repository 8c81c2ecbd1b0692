"""The training config: YAML and flags through one dataclass."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.config import TrainConfig, load_config
from finetune.errors import FinetuneInputError

pytestmark = pytest.mark.unit


def test_flags_override_the_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "finetune.yaml"
    path.write_text("lora_r: 8\nepochs: 2\ntarget_modules: [q_proj, v_proj]\n", encoding="utf-8")

    config = load_config(path, {"epochs": 5, "learning_rate": None, "target_modules": None})

    assert config == TrainConfig(lora_r=8, epochs=5.0, target_modules=("q_proj", "v_proj"))


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "finetune.yaml"
    path.write_text("lora_r: 8\nlearning_rte: 0.1\n", encoding="utf-8")

    with pytest.raises(
        FinetuneInputError, match=r"unknown key\(s\) in .*: learning_rte \(known: lora_r,"
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lora_r": 0}, "lora_r must be at least 1"),
        ({"batch_size": 2.5}, "batch_size must be a whole number"),
        ({"learning_rate": "fast"}, "learning_rate must be a float"),
        ({"lora_dropout": 1.5}, r"lora_dropout and warmup_ratio must be in \[0, 1\)"),
        ({"target_modules": ""}, "target_modules names no module"),
    ],
)
def test_bad_values_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(FinetuneInputError, match=message):
        load_config(None, overrides)


def test_modules_given_as_a_comma_list() -> None:
    assert load_config(None, {"target_modules": "q_proj, k_proj"}).target_modules == (
        "q_proj",
        "k_proj",
    )
