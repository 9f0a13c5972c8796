"""What every backend is: ``name``, ``precision``, ``run(batch) -> features``, ``executed() -> dict``."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str
    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(B, L) float32 waveforms at 32 kHz, L >= 1025 -> features (B, ...) float32."""
        ...

    def executed(self) -> dict:
        """What actually executed (device, execution providers, threads, compile mode ...)."""
        ...
