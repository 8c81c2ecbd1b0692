"""tiktoken encodings, loaded only when their BPE file is already on disk.

tiktoken downloads its BPE files on first use. deskbot must work offline, so it looks in
tiktoken's own cache first (the same places tiktoken looks) and, when the file is not
there, callers fall back to an estimate instead of reaching the network.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["tiktoken_encoding"]

_BPE_URLS = {
    name: f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    for name in ("o200k_base", "cl100k_base")
}


def _cache_dir() -> Path:
    # tiktoken's own lookup order (tiktoken/load.py); these are tiktoken's variables.
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def tiktoken_encoding(model: str) -> Any | None:
    """The tiktoken encoding of ``model`` if its BPE file is cached locally, else None."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"
    url = _BPE_URLS.get(name)
    if url is None:
        return None
    if not (_cache_dir() / hashlib.sha1(url.encode()).hexdigest()).exists():  # noqa: S324
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # a corrupt cache file: estimate rather than fail
        return None
