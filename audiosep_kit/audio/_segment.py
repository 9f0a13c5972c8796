"""The one type for "audio to read": a file, or the segment [start_s, end_s) of it.

Dataset readers (``Example.segment``), feature stores and caches all name audio with it, so a clip
has one identity string (:attr:`AudioSegment.key`) wherever it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AudioSegment:
    """A file, or the segment [start_s, end_s) of it (seconds; None = from the start / to the end)."""

    path: Path
    start_s: float | None = None
    end_s: float | None = None

    @property
    def key(self) -> str:
        """``path``, or ``path#start-end`` for a segment (exact float reprs: a key never rounds)."""
        if self.start_s is None and self.end_s is None:
            return str(self.path)
        return f"{self.path}#{self.start_s}-{self.end_s}"
