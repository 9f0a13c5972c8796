"""The encoder's options, validated once, shared by every backend, export and report."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError

SAMPLE_RATE = 32_000
N_FFT = 2048
HOP = 320
#: The reflect pad of n_fft // 2 needs strictly more samples than the pad itself.
MIN_SAMPLES = N_FFT // 2 + 1
CONDITION_SIZE = 512

FILM_MODES = ("none", "zero", "query")
LAYERS = ("block1", "block2", "block3", "block4", "block5", "block6", "center")
POOLINGS = ("mean", "meanstd", "max", "frames", "none")
#: Output channels of each tap (pooled output of the named block).
LAYER_CHANNELS = {
    "block1": 32,
    "block2": 64,
    "block3": 128,
    "block4": 256,
    "block5": 384,
    "block6": 384,
    "center": 384,
}


def _condition_digest(condition: np.ndarray) -> str:
    data = np.ascontiguousarray(condition, dtype="<f4").tobytes()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EncoderConfig:
    """What the encoder computes, apart from its weights.

    ``condition`` is the 512-d FiLM condition vector, required for ``film='query'`` and refused
    otherwise, so that a report can never claim a query that was not used.
    """

    film: str = "none"
    layer: str = "center"
    pooling: str = "mean"
    pad_to_32: bool = True
    condition: np.ndarray | None = field(default=None, compare=False, repr=False)
    condition_sha256: str | None = None

    def __post_init__(self) -> None:
        check_choice("film", self.film, FILM_MODES)
        check_choice("layer", self.layer, LAYERS)
        check_choice("pooling", self.pooling, POOLINGS)
        if not isinstance(self.pad_to_32, bool):
            raise ConfigError(f"`pad_to_32` must be a bool; got {self.pad_to_32!r}.")
        if self.film == "query":
            if self.condition is None:
                raise ConfigError(
                    "film='query' needs a 512-d condition vector (e.g. a CLAP text embedding saved "
                    "as .npy); pass condition=... or --condition FILE."
                )
            cond = np.asarray(self.condition, dtype=np.float32).reshape(-1)
            if cond.shape != (CONDITION_SIZE,) or not np.all(np.isfinite(cond)):
                raise ConfigError(
                    f"the FiLM condition must be {CONDITION_SIZE} finite numbers; got shape {np.shape(self.condition)}."
                )
            object.__setattr__(self, "condition", cond)
            object.__setattr__(self, "condition_sha256", _condition_digest(cond))
        elif self.condition is not None:
            raise ConfigError(f"a condition vector is only used with film='query'; got film={self.film!r}.")

    @property
    def output_dim(self) -> int | None:
        """Feature width for the pooled modes; None for 'none' (the full map)."""
        channels = LAYER_CHANNELS[self.layer]
        if self.pooling == "none":
            return None
        return 2 * channels if self.pooling == "meanstd" else channels

    def to_dict(self) -> dict:
        """JSON-safe description (the condition is represented by its checksum)."""
        out = asdict(self)
        out.pop("condition")
        out["output_dim"] = self.output_dim
        return out
