"""``deskbot classifier train|eval`` and ``deskbot classify``, end to end.

The commands run through click's runner on the ``deskbot`` group itself (settings read once
in the group callback, from the environment given).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli as deskbot
from tests.fakes.openai_server import ScriptedOpenAI
from tests.secret_values import OPENAI_KEY
from tests.test_classifier import comment_rows, write_table
from tools.classifier import TOOL_NAME

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        base = {"DESKBOT_DATA_DIR": str(tmp_path / "data"), **(env or {})}
        return CliRunner().invoke(deskbot, list(args), env=base, catch_exceptions=False)

    return invoke


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_table(tmp_path / "comments.csv", comment_rows())


TRAIN = ("--text-col", "comments", "--label-col", "hate")


@pytest.fixture
def trained(run: Run, data_file: Path, tmp_path: Path) -> Path:
    result = run("classifier", "train", "--data", str(data_file), *TRAIN, "--holdout", "0.25")
    assert result.exit_code == 0, result.output
    return tmp_path / "data" / "classifier"


@pytest.mark.e2e
def test_train_saves_to_the_settings_path(run: Run, data_file: Path, trained: Path) -> None:
    assert (trained / "manifest.json").is_file()
    assert (trained / "model.joblib").is_file()
    out = trained.parent / "other"
    result = run(
        "classifier", "train", "--data", str(data_file), *TRAIN, "--out", str(out), "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["path"] == str(out)
    assert report["manifest"]["labels"] == ["hate", "offensive", "none"]
    assert report["manifest"]["data_rows"] == 36


@pytest.mark.e2e
def test_eval_json(run: Run, data_file: Path, trained: Path) -> None:
    result = run(
        "classifier", "eval", "--model", str(trained), "--data", str(data_file), *TRAIN, "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 36
    assert 0.8 <= report["accuracy"] <= 1.0
    assert 0.8 <= report["macro_f1"] <= 1.0
    assert set(report["per_label"]) == {"hate", "offensive", "none"}
    assert set(report["per_label"]["hate"]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, report["confusion"])) == 36
    text = run("classifier", "eval", "--data", str(data_file), *TRAIN)
    assert "macro-F1" in text.stdout and "confusion" in text.stdout


@pytest.mark.e2e
def test_classify_json_and_truncation(run: Run, trained: Path) -> None:
    result = run("classify", "You idiot, learn to read", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["label"] == "offensive"
    assert answer["classifier"] == "local"
    assert answer["truncated"] is False
    assert sum(answer["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    cut = run("classify", "thanks " * 20, "--json", env={"DESKBOT_CLASSIFIER_MAX_CHARS": "10"})
    assert json.loads(cut.stdout)["truncated"] is True
    plain = run("classify", "thanks " * 20, env={"DESKBOT_CLASSIFIER_MAX_CHARS": "10"})
    assert plain.stdout.startswith("none")
    assert "only the first 10 characters" in plain.stdout


@pytest.mark.e2e
@pytest.mark.usefixtures("trained")
def test_classify_combined_asks_the_llm_inside_the_band(
    run: Run, openai_server: ScriptedOpenAI, tmp_path: Path
) -> None:
    llm = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": OPENAI_KEY}
    empty_band = {**llm, "DESKBOT_CLASSIFIER_BAND_LOW": "0", "DESKBOT_CLASSIFIER_BAND_HIGH": "0"}
    never = run("classify", "thanks", "--json", env=empty_band)
    assert json.loads(never.stdout)["classifier"] == "local"
    assert openai_server.chat_requests() == []
    verdict = {"label": "hate", "scores": {"hate": 0.7, "offensive": 0.2, "none": 0.1}}
    openai_server.reply_tool_calls((TOOL_NAME, {**verdict, "rationale": "Targets a group."}))
    always = {**llm, "DESKBOT_CLASSIFIER_BAND_LOW": "0", "DESKBOT_CLASSIFIER_BAND_HIGH": "1"}
    shots = tmp_path / "shots.json"
    shots.write_text(json.dumps([{"text": "꺼져 벌레야", "label": "hate"}]), encoding="utf-8")
    answer = json.loads(
        run("classify", "thanks", "--json", "--examples", str(shots), env=always).stdout
    )
    assert answer["classifier"] == "llm"
    assert answer["label"] == "hate"
    assert answer["rationale"] == "Targets a group."
    (request,) = openai_server.chat_requests()
    assert "Comment: 꺼져 벌레야" in request["messages"][0]["content"]


@pytest.mark.e2e
def test_classify_llm_mode_errors(run: Run, openai_server: ScriptedOpenAI) -> None:
    no_llm = run("classify", "hello", "--mode", "llm")
    assert no_llm.exit_code == 2
    assert "needs a language model" in no_llm.stderr
    openai_server.reply_text("sorry, I cannot help")
    env = {"OPENAI_BASE_URL": openai_server.base_url, "DESKBOT_LLM_MAX_RETRIES": "0"}
    malformed = run("classify", "hello", "--mode", "llm", env=env)
    assert malformed.exit_code == 1
    assert malformed.stderr.startswith("deskbot: the language model's reply is not a classif")
    assert len(malformed.stderr.strip().splitlines()) == 1


def _one_line(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.e2e
def test_data_errors_exit_2_with_one_line(run: Run, tmp_path: Path, data_file: Path) -> None:
    train = ("classifier", "train", "--data")
    _one_line(
        run(*train, str(data_file), "--text-col", "text", "--label-col", "hate"),
        2,
        "no column 'text'",
        "the columns are: comments, hate",
    )
    spam = write_table(tmp_path / "spam.csv", [*comment_rows(), {"comments": "x", "hate": "spam"}])
    _one_line(run(*train, str(spam), *TRAIN), 2, "1 rows have labels outside", "'spam' (1)")
    dropped = run(*train, str(spam), *TRAIN, "--drop-unknown", "--holdout", "0.25")
    assert dropped.exit_code == 0, dropped.output
    assert "skipped rows: 1 labelled 'spam'" in dropped.stdout
    single = write_table(tmp_path / "one.csv", [{"comments": "x", "hate": "none"}] * 4)
    _one_line(run(*train, str(single), *TRAIN), 2, "one label only")
    _one_line(run(*train, str(tmp_path / "nope.csv"), *TRAIN), 2, "cannot read")
    bad_map = run(*train, str(data_file), *TRAIN, "--map", "0hate")
    assert bad_map.exit_code == 2
    assert "FROM=TO" in bad_map.output


@pytest.mark.e2e
def test_model_and_input_errors_exit_2(run: Run, tmp_path: Path, data_file: Path) -> None:
    _one_line(run("classify", "hello"), 2, "no classifier model at", "classifier train")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("[]")
    evaluated = run(
        "classifier", "eval", "--model", str(tmp_path / "bad"), "--data", str(data_file), *TRAIN
    )
    _one_line(evaluated, 2, "is not a classifier manifest")


@pytest.mark.e2e
@pytest.mark.usefixtures("trained")
def test_empty_comment_exits_2(run: Run) -> None:
    _one_line(run("classify", "   "), 2, "the comment is empty")


def test_the_agent_gets_classify_comment_once_a_model_exists(run: Run, trained: Path) -> None:
    listed = run("tools", "list")
    called = run("tools", "call", "classify_comment", "--args", '{"text": "정말 좋은 영화였다"}')

    assert listed.exit_code == 0, listed.output
    assert "classify_comment" in listed.stdout
    assert called.exit_code == 0, called.output
    result = json.loads(called.stdout)
    assert result["label"] in {"hate", "offensive", "none"}
    assert result["classifier"] == "local"
    assert abs(sum(result["scores"].values()) - 1) < 1e-6


def test_classify_comment_is_absent_without_a_model(run: Run) -> None:
    listed = run("tools", "list")

    assert listed.exit_code == 0, listed.output
    assert "classify_comment" not in listed.stdout
