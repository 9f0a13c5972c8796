"""Where audiosep-kit keeps what it can rebuild: one cache root, ``$AUDIOSEP_CACHE``.

Below it, ``onnx/`` and ``aoti/`` hold exported artifacts keyed by what is baked into them (export
layer), and ``features/`` holds feature stores keyed by the extractor and the audio (features layer).
Deleting the folder only costs time.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "AUDIOSEP_CACHE"


def cache_root(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$AUDIOSEP_CACHE``, else ``$XDG_CACHE_HOME/audiosep-kit`` (``~/.cache`` by default)."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "audiosep-kit"
