"""FeatureExtractor: one interface over every backend, fed through the one audio front door.

Batching rule: clips are grouped by exact length and only equal-length clips share a batch, so a
clip's features never depend on its batch-mates (no padding that would leak into the pooled mean).
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from audiosep_kit.errors import AudioDecodeError, ConfigError
from audiosep_kit.model.checkpoint import LoadedWeights, load_weights
from audiosep_kit.model.config import SAMPLE_RATE, EncoderConfig
from audiosep_kit.runtime.audio import RESAMPLER, prepare_waveform, read_audio
from audiosep_kit.runtime.backends import Backend, make_backend
from audiosep_kit.versions import package_versions

__all__ = ["FeatureExtractor", "read_condition", "run_grouped"]


def read_condition(condition: np.ndarray | str | Path | None) -> np.ndarray | None:
    """A FiLM condition given as an array or a ``.npy`` path (e.g. a saved CLAP text embedding)."""
    if condition is None or isinstance(condition, np.ndarray):
        return condition
    path = Path(condition)
    if not path.is_file():
        raise ConfigError(f"condition file not found: {path} (--condition expects a .npy of 512 floats).")
    return np.load(path, allow_pickle=False)


def run_grouped(backend: Backend, waves: Sequence[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Run ``waves`` (1-D, 32 kHz) through ``backend`` in equal-length batches; results in input order."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, wave in enumerate(waves):
        by_length[wave.shape[0]].append(i)
    out: list[np.ndarray | None] = [None] * len(waves)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            result = backend.run(np.stack([waves[i] for i in chunk]))
            for i, row in zip(chunk, result):
                out[i] = row
    return out  # type: ignore[return-value]


class FeatureExtractor:
    """Waveforms or files in, AudioSep encoder features out (numpy, float32).

    Build it with :meth:`from_checkpoint`; ``describe()`` tells which weights, options and engine
    produced the numbers, for manifests and reports.
    """

    def __init__(self, backend: Backend, weights: LoadedWeights, config: EncoderConfig, *, batch_size: int = 8):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
        self.backend = backend
        self.weights = weights
        self.config = config
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        backend: str = "eager",
        device: str = "cpu",
        film: str = "none",
        condition: np.ndarray | str | Path | None = None,
        layer: str = "center",
        pooling: str = "mean",
        pad_to_32: bool = True,
        *,
        batch_size: int = 8,
        trust_pickle: bool = False,
        **backend_options,
    ) -> "FeatureExtractor":
        """Load ``checkpoint`` (a file, or ``random:SEED``) strictly and build the ``backend``."""
        config = EncoderConfig(
            film=film, layer=layer, pooling=pooling, pad_to_32=pad_to_32, condition=read_condition(condition)
        )
        weights = load_weights(checkpoint, trust_pickle=trust_pickle)
        engine = make_backend(backend, weights, config, device, **backend_options)
        return cls(engine, weights, config, batch_size=batch_size)

    @property
    def fixed_width(self) -> bool:
        return self.config.output_dim is not None and self.config.pooling != "frames"

    def embed(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Features of one waveform (1-D -> (D,)) or a batch of equal-length ones (2-D -> (B, D))."""
        array = np.asarray(waveform)
        if array.ndim == 1:
            return self.embed_waves([prepare_waveform(array, sample_rate)[0]])[0]
        if array.ndim != 2:
            raise AudioDecodeError(f"expected a 1-D waveform or a 2-D (batch, samples) array; got shape {array.shape}.")
        waves = [prepare_waveform(row, sample_rate, source=f"<row {i}>")[0] for i, row in enumerate(array)]
        return np.stack(self.embed_waves(waves))

    def embed_waves(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of model-ready 32 kHz waveforms (any lengths >= 1025), in input order."""
        return run_grouped(self.backend, waves, self.batch_size)

    def embed_files(self, paths: Iterable[str | Path]) -> np.ndarray | list[np.ndarray]:
        """Features of audio files: (N, D) for fixed-width pooling, else a list of per-file arrays.

        A file that cannot be used raises AudioDecodeError naming it; for per-file error records
        and resumable output use ``audiosep-extract`` (runtime.store).
        """
        waves = [read_audio(p).waveform for p in paths]
        rows = self.embed_waves(waves)
        return np.stack(rows) if (self.fixed_width and rows) else rows

    def describe(self) -> dict:
        """Weights identity, encoder options, backend and what executed, versions, date."""
        return {
            "weights": self.weights.describe(),
            "backend": self.backend.name,
            "precision": self.backend.precision,
            "executed": self.backend.executed(),
            "encoder": self.config.to_dict(),
            "sample_rate": SAMPLE_RATE,
            "resampler": RESAMPLER,
            "batching": "equal-length groups",
            "batch_size": self.batch_size,
            "versions": package_versions(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
