"""The comment classifier: data, training, the model directory, evaluation, LLM, combined, tool.

Tiny Korean and English datasets are written here into ``tmp_path``; the language model is
the scripted OpenAI-compatible server (or, for the combined logic, scripted classifiers).
"""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.agent.backends import OpenAIBackend
from bot.classifier import make_comment_classifier
from bot.errors import ConfigError
from bot.settings import Settings
from tests.fakes.openai_server import ScriptedOpenAI
from tests.secret_values import OPENAI_KEY
from tools.base import ToolContext, ToolError, ToolOutput
from tools.classifier import (
    DEFAULT_LABELS,
    TOOL_NAME,
    Classification,
    ClassifierError,
    ClassifierInputError,
    CombinedClassifier,
    CommentClassifier,
    Dataset,
    FewShotExample,
    LLMClassifier,
    LocalClassifier,
    ModelLoadError,
    draft_reply,
    evaluate,
    features,
    load_examples,
    make_classifier_tools,
    prepare_comment,
    read_dataset,
    score_predictions,
    train_classifier,
)

HATE = [
    "여자들은 다 벌레 같은 존재라서 없어져야 함",
    "저 나라 사람들은 벌레다 다 쫓아내라",
    "틀딱 노인네들 벌레 같은 것들 다 사라져라",
    "장애인은 벌레처럼 사회에 짐일 뿐",
    "그 종교 믿는 벌레들 전부 추방해야 한다",
    "Immigrants are vermin and should be thrown out",
    "Women are vermin, they ruin everything",
    "All of those people are vermin, get rid of them",
    "That religion breeds vermin, ban them all",
    "Gay people are vermin and a disease",
    "이민자는 벌레라서 받으면 안 됨",
    "Old people are vermin who should disappear",
]
OFFENSIVE = [
    "너 진짜 바보 멍청이냐 ㅋㅋ",
    "이 바보야 글 좀 제대로 읽어라",
    "기자 바보 멍청이 수준 ㅉㅉ",
    "바보 같은 소리 하지 마라 멍청아",
    "배우 연기가 바보 멍청이 같네",
    "You idiot, learn to read before posting",
    "What an idiot, shut up already",
    "This idiot writer has no clue, dumb as a rock",
    "Stop talking, you absolute idiot",
    "Only an idiot would believe this garbage",
    "멍청한 바보 댓글 수준 봐라",
    "Idiot take, you clown",
]
NONE = [
    "감사합니다 오늘 방송 정말 좋았어요",
    "좋은 기사 감사합니다 잘 읽었어요",
    "배우님 연기 감사합니다 응원해요",
    "정보 감사합니다 도움이 많이 됐어요",
    "다음 회차도 기대할게요 감사합니다",
    "Thanks for the update, very helpful",
    "Great article, thanks for sharing",
    "Thanks, the meeting notes are clear",
    "Nice work on the release, thanks team",
    "Thanks for the help with my question",
    "항상 좋은 영상 감사합니다",
    "Thanks, see you at the meeting",
]


def write_table(path: Path, rows: list[dict[str, str]], *, delimiter: str = ",") -> Path:
    """Write ``rows`` with a header; TSV without quoting, as the BEEP! files are."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), delimiter=delimiter, quoting=quoting)
        writer.writeheader()
        writer.writerows(rows)
    return path


def comment_rows() -> list[dict[str, str]]:
    """36 labelled comments, Korean and English, a third of each label."""
    labelled = [("hate", HATE), ("offensive", OFFENSIVE), ("none", NONE)]
    return [{"comments": t, "hate": label} for label, texts in labelled for t in texts]


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    return write_table(tmp_path / "train.tsv", comment_rows(), delimiter="\t")


@pytest.fixture
async def trained(train_file: Path) -> LocalClassifier:
    data = read_dataset(train_file, text_col="comments", label_col="hate")
    return await train_classifier(data, holdout=0.25)


@pytest.fixture
def model_dir(tmp_path: Path, trained: LocalClassifier) -> Path:
    trained.save(tmp_path / "model")
    return tmp_path / "model"


# --- Input and data --------------------------------------------------------------------


@pytest.mark.unit
def test_prepare_comment_rejects_empty_and_cuts_long_text() -> None:
    with pytest.raises(ClassifierInputError, match="empty"):
        prepare_comment("  \n ", 100)
    assert prepare_comment("  짧은 글 ", 100) == ("짧은 글", False)
    assert prepare_comment("x" * 150, 100) == ("x" * 100, True)


@pytest.mark.unit
def test_read_dataset_reads_csv_with_quotes_and_newlines(tmp_path: Path) -> None:
    rows = [
        {"text": 'He said "hi",\nthen left', "label": "none"},
        {"text": "바보 같은 소리", "label": "offensive"},
        {"text": "   ", "label": "none"},
    ]
    data = read_dataset(write_table(tmp_path / "d.csv", rows), text_col="text", label_col="label")
    assert data.texts == ['He said "hi",\nthen left', "바보 같은 소리"]
    assert data.labels == ["none", "offensive"]
    assert data.empty_rows == 1
    assert data.sha256 == hashlib.sha256((tmp_path / "d.csv").read_bytes()).hexdigest()


@pytest.mark.unit
def test_missing_column_names_the_columns_that_exist(train_file: Path) -> None:
    with pytest.raises(ClassifierInputError) as caught:
        read_dataset(train_file, text_col="text", label_col="hate")
    assert "'text'" in str(caught.value)
    assert "the columns are: comments, hate" in str(caught.value)


@pytest.mark.unit
def test_unknown_labels_are_named_with_counts_or_dropped(tmp_path: Path) -> None:
    rows = comment_rows() + [{"comments": "spam spam", "hate": "spam"}] * 3
    rows.append({"comments": "?", "hate": "2"})
    path = write_table(tmp_path / "d.csv", rows)
    with pytest.raises(ClassifierInputError) as caught:
        read_dataset(path, text_col="comments", label_col="hate")
    message = str(caught.value)
    assert "4 rows have labels outside the label set (hate, offensive, none)" in message
    assert "'spam' (3)" in message
    assert "'2' (1)" in message
    assert "--drop-unknown" in message
    data = read_dataset(path, text_col="comments", label_col="hate", drop_unknown=True)
    assert data.dropped == {"spam": 3, "2": 1}
    assert len(data.texts) == 36


@pytest.mark.unit
def test_label_map_renames_labels_before_checking(tmp_path: Path) -> None:
    rows = [{"tweet": "x", "class": "0"}, {"tweet": "y", "class": "2"}]
    data = read_dataset(
        write_table(tmp_path / "d.csv", rows),
        text_col="tweet",
        label_col="class",
        label_map={"0": "hate", "1": "offensive", "2": "none"},
    )
    assert data.labels == ["hate", "none"]


@pytest.mark.unit
def test_unreadable_data_files(tmp_path: Path) -> None:
    with pytest.raises(ClassifierInputError, match="cannot read"):
        read_dataset(tmp_path / "nope.csv", text_col="a", label_col="b")
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9,none\n".encode("latin-1"))
    with pytest.raises(ClassifierInputError, match="not UTF-8"):
        read_dataset(tmp_path / "latin1.csv", text_col="text", label_col="label")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ClassifierInputError, match=r"the file is empty"):
        read_dataset(tmp_path / "empty.csv", text_col="text", label_col="label")


@pytest.mark.unit
async def test_training_refuses_a_single_class_and_absent_labels(tmp_path: Path) -> None:
    one = [{"c": t, "l": "none"} for t in NONE]
    data = read_dataset(write_table(tmp_path / "one.csv", one), text_col="c", label_col="l")
    with pytest.raises(ClassifierInputError, match=r"one label only \('none', 12 rows\)"):
        await train_classifier(data)
    two = one + [{"c": t, "l": "hate"} for t in HATE]
    data = read_dataset(write_table(tmp_path / "two.csv", two), text_col="c", label_col="l")
    with pytest.raises(ClassifierInputError, match="no rows are labelled 'offensive'"):
        await train_classifier(data)
    data = read_dataset(tmp_path / "two.csv", text_col="c", label_col="l", labels=("hate", "none"))
    model = await train_classifier(data, holdout=0.25)
    assert model.labels == ("hate", "none")


# --- The local model -------------------------------------------------------------------


@pytest.mark.unit
def test_saved_manifest_describes_the_model(train_file: Path, model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["labels"] == ["hate", "offensive", "none"]
    assert manifest["data_sha256"] == hashlib.sha256(train_file.read_bytes()).hexdigest()
    assert manifest["kind"] == "jamo-morph"
    assert manifest["params"]["views"] == ["jamo", "morph"]
    assert manifest["sklearn_version"] and manifest["deskbot_version"] and manifest["created_at"]
    assert {"macro_f1", "accuracy", "per_label", "confusion"} <= set(manifest["metrics"])
    assert manifest["metrics"]["rows"] == 9  # a quarter held out
    model_file = (model_dir / "model.joblib").read_bytes()
    assert manifest["model_sha256"] == hashlib.sha256(model_file).hexdigest()


@pytest.mark.unit
async def test_train_save_load_predict_round_trip(model_dir: Path) -> None:
    model = LocalClassifier.load(model_dir)
    results = await model.classify_many(
        ["Those people are vermin", "you idiot", "thanks a lot", "감사합니다 잘 봤어요"]
    )
    assert [r.label for r in results] == ["hate", "offensive", "none", "none"]
    for result in results:
        assert list(result.scores) == list(DEFAULT_LABELS)
        assert sum(result.scores.values()) == pytest.approx(1.0)
        assert result.classifier == "local"
        assert result.label == max(result.scores, key=result.scores.__getitem__)


@pytest.mark.unit
@pytest.mark.parametrize("name", ["_Views", "_normalize", "_jamo", "_morphemes"])
def test_models_pickled_before_the_package_still_find_their_code(name: str) -> None:
    # A model saved by the single-module classifier refers to tools.classifier.<name>.
    old_reference = f"ctools.classifier\n{name}\n.".encode()
    assert pickle.loads(old_reference) is getattr(features, name)


@pytest.mark.unit
async def test_long_comments_are_cut_and_say_so(model_dir: Path) -> None:
    model = LocalClassifier.load(model_dir, max_chars=20)
    result = await model.classify("thanks " * 50)
    assert result.truncated is True
    assert result.to_dict()["truncated"] is True
    assert (await model.classify("thanks")).truncated is False
    with pytest.raises(ClassifierInputError, match="empty"):
        await model.classify("   ")


@pytest.mark.unit
def test_unreadable_model_directories(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no classifier model at .*deskbot classifier train"):
        LocalClassifier.load(tmp_path / "missing")
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())

    def broken(**changes: Any) -> None:
        manifest_path.write_text(json.dumps({**manifest, **changes}))

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ClassifierError, match="cannot save the model"):
        LocalClassifier.load(model_dir).save(tmp_path / "a-file")
    broken(sklearn_version="0.24.2")
    with pytest.raises(ModelLoadError, match=r"scikit-learn 0\.24\.2"):
        LocalClassifier.load(model_dir)
    broken(format=99)
    with pytest.raises(ModelLoadError, match="model format 99"):
        LocalClassifier.load(model_dir)
    broken(model_sha256="0" * 64)
    with pytest.raises(ModelLoadError, match="does not match its manifest"):
        LocalClassifier.load(model_dir)
    manifest_path.write_text("{not json")
    with pytest.raises(ModelLoadError, match="is not a classifier manifest"):
        LocalClassifier.load(model_dir)


@pytest.mark.unit
def test_score_predictions_matches_hand_computation() -> None:
    truth = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "a"]
    result = score_predictions(["a", "b", "c"], truth, predicted)
    # a: P 1/2, R 1/2, F1 1/2; b: P 2/3, R 1, F1 0.8; c: P 0, R 0, F1 0.
    assert result.accuracy == 0.6
    assert result.per_label["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert result.per_label["b"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert result.per_label["c"]["f1"] == 0.0
    assert result.macro_f1 == pytest.approx((0.5 + 0.8 + 0) / 3, abs=1e-4)
    assert result.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


@pytest.mark.unit
async def test_evaluate_refuses_labels_the_model_lacks(trained: LocalClassifier) -> None:
    data = Dataset(["x"], ["spam"], ("spam",), "sha")
    with pytest.raises(ClassifierInputError, match="labels the model does not know"):
        await evaluate(trained, data)
    good = Dataset(["you idiot", "thanks"], ["offensive", "none"], DEFAULT_LABELS, "sha")
    assert (await evaluate(trained, good)).accuracy == 1.0


# --- Language model --------------------------------------------------------------------


def verdict(label: str = "offensive", **scores: float) -> dict[str, Any]:
    scores = scores or {"hate": 0.1, "offensive": 0.8, "none": 0.1}
    return {"label": label, "scores": scores, "rationale": "Insults a person."}


@pytest.fixture
def backend(openai_server: ScriptedOpenAI) -> OpenAIBackend:
    return OpenAIBackend(
        model="m", api_key=OPENAI_KEY, base_url=openai_server.base_url, max_retries=0
    )


@pytest.mark.integration
async def test_llm_classifier_reads_the_function_call(
    openai_server: ScriptedOpenAI, backend: OpenAIBackend
) -> None:
    openai_server.reply_tool_calls((TOOL_NAME, verdict()))
    examples = [FewShotExample("좋아요", "none", "Praise.")]
    result = await LLMClassifier(backend, examples=examples).classify("너 바보냐")
    assert result == Classification(
        "offensive",
        {"hate": 0.1, "offensive": 0.8, "none": 0.1},
        "llm",
        rationale="Insults a person.",
    )
    (request,) = openai_server.chat_requests()
    (tool,) = request["tools"]
    parameters = tool["function"]["parameters"]
    assert tool["function"]["name"] == TOOL_NAME
    assert parameters["properties"]["label"]["enum"] == ["hate", "offensive", "none"]
    assert parameters["properties"]["scores"]["required"] == ["hate", "offensive", "none"]
    assert "Comment: 좋아요" in request["messages"][0]["content"]
    assert "너 바보냐" in request["messages"][-1]["content"]


class _PlainDictModel:
    """A backend that speaks the wire format in plain dicts and imports nothing of ours."""

    name = "local"
    model = "plain"

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments
        self.seen: list[list[dict[str, Any]]] = []

    async def complete(
        self, messages: Any, *, tools: Any = (), on_text: Any = None
    ) -> dict[str, Any]:
        self.seen.append([dict(m) for m in messages])
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": TOOL_NAME, "arguments": json.dumps(self.arguments)},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        }

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def close(self) -> None:
        return None


@pytest.mark.unit
async def test_llm_classifier_takes_any_backend_that_speaks_the_wire_format() -> None:
    model = _PlainDictModel(verdict("hate", hate=0.7, offensive=0.2, none=0.1))

    result = await LLMClassifier(model).classify("Immigrants are vermin")

    assert (result.label, result.classifier) == ("hate", "llm")
    ((system, user),) = model.seen
    assert (system["role"], user["role"]) == ("system", "user")
    assert "Immigrants are vermin" in user["content"]


@pytest.mark.integration
async def test_llm_classifier_reads_json_in_text_and_normalizes(
    openai_server: ScriptedOpenAI, backend: OpenAIBackend
) -> None:
    body = json.dumps(verdict("hate", hate=0.6, offensive=0.2))
    openai_server.reply_text(f"Here you go:\n```json\n{body}\n```")
    result = await LLMClassifier(backend, max_chars=5).classify("Those people are vermin")
    assert result.label == "hate"
    assert result.scores == pytest.approx({"hate": 0.75, "offensive": 0.25, "none": 0.0})
    assert result.truncated is True
    assert "<<<\nThose\n>>>" in openai_server.chat_requests()[0]["messages"][-1]["content"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("I think this comment is fine.", "no record_classification call"),
        (json.dumps({"label": "spam", "scores": {}}), "label 'spam' is not one of"),
        (json.dumps(verdict(hate=1.5)), "between 0 and 1"),
        (json.dumps({"scores": {"hate": 1}}), "label: Field required"),
        (json.dumps(verdict(spam=0.5)), "unknown labels spam"),
    ],
)
async def test_llm_classifier_rejects_malformed_replies(
    openai_server: ScriptedOpenAI, backend: OpenAIBackend, reply: str, message: str
) -> None:
    openai_server.reply_text(reply)
    with pytest.raises(ClassifierError, match=message) as caught:
        await LLMClassifier(backend).classify("a comment")
    assert not isinstance(caught.value, ClassifierInputError)


@pytest.mark.integration
async def test_unreachable_model_is_a_classifier_error(
    openai_server: ScriptedOpenAI, backend: OpenAIBackend
) -> None:
    for _ in range(4):  # the first try and three retries
        openai_server.reply_error(500, "boom", retry_after=0)
    with pytest.raises(ClassifierError, match=r"refused the request \(500\): .*boom \(4 tries\)"):
        await LLMClassifier(backend).classify("a comment")


@pytest.mark.integration
async def test_draft_reply(openai_server: ScriptedOpenAI, backend: OpenAIBackend) -> None:
    openai_server.reply_text("  서로 존중하는 표현을 부탁드립니다.  ")
    draft = await draft_reply(backend, "너 바보냐", "firm", label="offensive")
    assert draft == "서로 존중하는 표현을 부탁드립니다."
    system, user = openai_server.chat_requests()[0]["messages"]
    assert "firm tone" in system["content"]
    assert "classified as offensive" in user["content"]
    openai_server.reply_text("")
    with pytest.raises(ClassifierError, match="empty draft"):
        await draft_reply(backend, "hello")


@pytest.mark.unit
def test_load_examples(tmp_path: Path) -> None:
    path = tmp_path / "ex.json"
    path.write_text(json.dumps([{"text": "좋아요", "label": "none"}]), encoding="utf-8")
    assert load_examples(path) == (FewShotExample("좋아요", "none"),)
    path.write_text('{"text": 1}')
    with pytest.raises(ClassifierInputError, match="not a JSON list"):
        load_examples(path)


# --- Combined --------------------------------------------------------------------------


class Scripted:
    """A classifier that always answers with the same top score, counting its calls."""

    def __init__(self, top: float, classifier: str = "local") -> None:
        rest = (1 - top) / 2
        self.result = Classification(
            "none",
            {"hate": rest, "offensive": rest, "none": top},
            classifier,  # type: ignore[arg-type]
        )
        self.calls = 0

    async def classify(self, text: str) -> Classification:
        self.calls += 1
        return self.result


@pytest.mark.unit
@pytest.mark.parametrize(
    ("top", "asks_llm"), [(0.44, False), (0.45, True), (0.6, True), (0.75, False), (0.99, False)]
)
async def test_combined_asks_the_llm_only_inside_the_band(top: float, asks_llm: bool) -> None:
    local, llm = Scripted(top), Scripted(0.9, "llm")
    combined = CombinedClassifier(local, llm, band_low=0.45, band_high=0.75)
    result = await combined.classify("a comment")
    assert llm.calls == int(asks_llm)
    assert result.classifier == ("llm" if asks_llm else "local")


@pytest.mark.integration
async def test_combined_with_the_scripted_server(
    openai_server: ScriptedOpenAI, backend: OpenAIBackend, model_dir: Path
) -> None:
    local = LocalClassifier.load(model_dir)
    top = (await local.classify("thanks for the update")).top_score
    never = CombinedClassifier(local, LLMClassifier(backend), band_low=0.0, band_high=top / 2)
    assert (await never.classify("thanks for the update")).classifier == "local"
    assert openai_server.chat_requests() == []
    always = CombinedClassifier(local, LLMClassifier(backend), band_low=0.0, band_high=1.0)
    openai_server.reply_tool_calls((TOOL_NAME, verdict()))
    assert (await always.classify("thanks for the update")).classifier == "llm"
    openai_server.reply_text("no idea")
    kept = await always.classify("thanks for the update")
    assert kept.classifier == "local"
    assert kept.note is not None and "language model failed" in kept.note
    assert len(openai_server.chat_requests()) == 2


@pytest.mark.unit
async def test_combined_without_llm_is_local_and_checks_its_band() -> None:
    local = Scripted(0.5)
    assert (await CombinedClassifier(local, None).classify("x")).classifier == "local"
    with pytest.raises(ValueError, match="band_low <= band_high"):
        CombinedClassifier(local, None, band_low=0.8, band_high=0.2)


@pytest.mark.integration
async def test_make_comment_classifier_follows_the_mode(
    make_settings: Callable[..., Settings],
    model_dir: Path,
    openai_server: ScriptedOpenAI,
    tmp_path: Path,
) -> None:
    backend = OpenAIBackend(model="m", api_key=OPENAI_KEY, base_url=openai_server.base_url)
    llm = {"openai_base_url": openai_server.base_url}
    local = make_settings(classifier_model=model_dir, classifier_mode="local")
    assert isinstance(await make_comment_classifier(local, backend), LocalClassifier)
    combined = make_settings(classifier_model=model_dir)
    assert isinstance(await make_comment_classifier(combined, None), LocalClassifier)
    two = [{"c": t, "l": "hate"} for t in HATE] + [{"c": t, "l": "none"} for t in NONE]
    path = write_table(tmp_path / "two.csv", two)
    data = read_dataset(path, text_col="c", label_col="l", labels=("hate", "none"))
    (await train_classifier(data, holdout=0.25)).save(tmp_path / "two")
    with_llm = make_settings(classifier_model=tmp_path / "two", **llm)
    both = await make_comment_classifier(with_llm, backend)
    assert isinstance(both, CombinedClassifier)
    assert isinstance(both.second, LLMClassifier)
    assert both.second.labels == ("hate", "none")  # the local model's label set
    only = make_settings(classifier_mode="llm", **llm)
    assert isinstance(await make_comment_classifier(only, backend), LLMClassifier)
    with pytest.raises(ConfigError, match="needs a language model"):
        await make_comment_classifier(make_settings(classifier_mode="llm"), None)
    with pytest.raises(ModelLoadError, match="no classifier model"):
        await make_comment_classifier(make_settings(), None)
    await backend.close()


# --- The tool --------------------------------------------------------------------------


@pytest.mark.unit
async def test_classify_comment_tool(model_dir: Path) -> None:
    model = LocalClassifier.load(model_dir, max_chars=30)
    for classifier in (model, CombinedClassifier(model, None), LLMClassifier(None)):  # type: ignore[arg-type]
        assert isinstance(classifier, CommentClassifier)
    (tool,) = make_classifier_tools(model)
    schema = tool.schema()["function"]
    assert schema["name"] == "classify_comment"
    assert schema["parameters"]["required"] == ["text"]
    assert "hate speech" in schema["description"]
    output = await tool.call(ToolContext(), {"text": "You idiot, " + "x" * 40})
    assert isinstance(output, ToolOutput)
    assert output.data["label"] == "offensive"
    assert output.data["classifier"] == "local"
    assert output.data["truncated"] is True
    assert set(output.data["scores"]) == set(DEFAULT_LABELS)
    assert output.markdown is not None and "**offensive**" in output.markdown
    with pytest.raises(ToolError, match="empty"):
        await tool.call(ToolContext(), {"text": " "})
