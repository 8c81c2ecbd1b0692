"""``deskbot moderation ...`` and ``classifier train --extra``, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.test_classifier import comment_rows, write_table

pytestmark = pytest.mark.e2e

Run = Callable[..., CliResult]

TRAIN = ("--text-col", "comments", "--label-col", "hate", "--holdout", "0.25")
# Pest control, not people: a tiny model trained on "X are vermin" calls it hate.
FALSE_POSITIVE = "The vermin in my garden ate the tomatoes"


def _one_line(result: CliResult, code: int, *needles: str) -> None:
    assert result.code == code, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_table(tmp_path / "comments.csv", comment_rows())


def _label(run_cli: Run, text: str) -> str:
    result = run_cli("classify", text, "--json")
    assert result.code == 0, result.stderr
    label: str = json.loads(result.stdout)["label"]
    return label


def test_train_extra_appends_rows(run_cli: Run, data_file: Path, tmp_path: Path) -> None:
    train = ("classifier", "train", "--data", str(data_file), *TRAIN)
    assert run_cli(*train).code == 0
    assert _label(run_cli, FALSE_POSITIVE) == "hate"
    extra = write_table(tmp_path / "fp.csv", [{"text": FALSE_POSITIVE, "label": "none"}])
    result = run_cli(*train, "--extra", str(extra), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["manifest"]["data_rows"] == 37
    assert _label(run_cli, FALSE_POSITIVE) != "hate"
    spam = write_table(tmp_path / "spam.csv", [{"text": "buy now", "label": "spam"}])
    _one_line(run_cli(*train, "--extra", str(spam)), 2, "spam.csv", "'spam' (1)")
    wrong = write_table(tmp_path / "cols.csv", [{"comments": "x", "hate": "none"}])
    _one_line(run_cli(*train, "--extra", str(wrong)), 2, "no column 'text', 'label'")
