"""The extraction progress bar: files done, audio seconds per second, and an ETA that moves with the work.

Why its own piece: a store commits rows a chunk (default 64 files) at a time, but a bar that moved
once per chunk sat at ``0/43`` for minutes and then jumped to the end. The store calls
:meth:`ExtractionBar.advance` after every decoded failure and every inference batch instead, so the
bar (and tqdm's ETA, from files per second) moves as files finish, and the postfix shows the
throughput people reason in: seconds of audio per second of wall time.
"""

from __future__ import annotations

import time


class ExtractionBar:
    """A tqdm bar over ``total`` files; ``enabled=None`` shows it only on a terminal (tqdm's rule)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, unit="file", desc="extract", disable=None if enabled is None else not enabled)
        self._start = time.perf_counter()
        self.audio_seconds = 0.0

    def advance(self, files: int, audio_seconds: float = 0.0) -> None:
        """``files`` more are finished (extracted or failed), holding ``audio_seconds`` of audio."""
        self.audio_seconds += audio_seconds
        elapsed = time.perf_counter() - self._start
        if elapsed > 0 and self.audio_seconds > 0:
            self._bar.set_postfix_str(f"{self.audio_seconds / elapsed:.1f} audio s/s", refresh=False)
        self._bar.update(files)

    def close(self) -> None:
        self._bar.close()
