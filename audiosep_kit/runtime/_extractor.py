"""FeatureExtractor: one interface over every backend, fed through the one audio front door.

Batching rule: clips are grouped by exact length and only equal-length clips share a batch, so a
clip's features never depend on its batch-mates (no padding that would leak into the pooled mean).

One more rule keeps that true to the last bit: a short clip never runs in a batch of one. PyTorch's
CPU convolution sends a lone input with <= 20480 elements down its native kernel but any batch of >= 2
to oneDNN, and the two round differently (~1e-7). A short clip left alone is therefore run twice in
one batch of 2 and the first row kept, so it takes the same kernels whether or not it had batch-mates.
Above SHORT_CLIP_SAMPLES every conv input is large enough that torch uses oneDNN for a batch of one.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from audiosep_kit._versions import package_versions
from audiosep_kit.audio import RESAMPLER, prepare_batch, prepare_waveform, read_audio
from audiosep_kit.errors import AudioDecodeError, BackendUnavailableError, ConfigError
from audiosep_kit.model import HOP, LAYERS, MIN_SAMPLES, SAMPLE_RATE, EncoderConfig, LoadedWeights, load_weights
from audiosep_kit.runtime._tiling import Tiling, estimate_peak_bytes, run_tiled
from audiosep_kit.runtime.backends import Backend, make_backend

#: 2 s at 32 kHz: beyond this the smallest conv input (conv_block7a, 6144 values per pooled frame)
#: exceeds torch's 20480-element native-kernel cut-off, with or without pad_to_32.
SHORT_CLIP_SAMPLES = 64_000


def min_samples(config: EncoderConfig) -> int:
    """Shortest clip the configured tap can take: 1025 with pad_to_32; without it, enough STFT
    frames (T = L // 320 + 1) to survive the tap's time-halving pools."""
    if config.pad_to_32:
        return MIN_SAMPLES
    halvings = min(LAYERS.index(config.layer) + 1, 5)
    return max(MIN_SAMPLES, (2**halvings - 1) * HOP)


def check_clip_length(config: EncoderConfig, num_samples: int, source: str) -> None:
    """Refuse a 32 kHz clip too short for the configured tap, naming ``source`` (a clip or a file)."""
    shortest = min_samples(config)
    if num_samples < shortest:
        raise AudioDecodeError(
            f"{source} has {num_samples} samples at 32 kHz; layer={config.layer!r} with pad_to_32=False needs "
            f">= {shortest} (its pools would leave no time step). Use pad_to_32=True (--pad-to-32), which "
            "handles any clip of >= 1025 samples."
        )


def read_condition(condition: np.ndarray | str | Path | None) -> np.ndarray | None:
    """A FiLM condition given as an array or a ``.npy`` path (e.g. a saved CLAP text embedding)."""
    if condition is None or isinstance(condition, np.ndarray):
        return condition
    path = Path(condition)
    if not path.is_file():
        raise ConfigError(f"condition file not found: {path} (--condition expects a .npy of 512 floats).")
    return np.load(path, allow_pickle=False)


def run_grouped(
    backend: Backend, waves: Sequence[np.ndarray], batch_size: int, max_batch_samples: int | None = None
) -> list[np.ndarray]:
    """Run ``waves`` (1-D, 32 kHz) through ``backend`` in equal-length batches; results in input order.

    ``max_batch_samples`` caps the audio of one call (batch x length), which bounds its memory.
    """
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, wave in enumerate(waves):
        by_length[wave.shape[0]].append(i)
    out: list[np.ndarray | None] = [None] * len(waves)
    for length, indices in by_length.items():
        size = batch_size if max_batch_samples is None else max(1, min(batch_size, max_batch_samples // length))
        for start in range(0, len(indices), size):
            chunk = indices[start : start + size]
            batch = [waves[i] for i in chunk]
            if len(batch) == 1 and batch[0].shape[0] < SHORT_CLIP_SAMPLES:
                batch = batch * 2  # same kernels as in any larger batch (see module docstring)
            result = backend.run(np.stack(batch))
            for i, row in zip(chunk, result, strict=False):  # a doubled lone clip: keep row 0
                out[i] = row
    return out  # type: ignore[return-value]


class FeatureExtractor:
    """Waveforms or files in, AudioSep encoder features out (numpy, float32).

    Build it with :meth:`from_checkpoint`; ``describe()`` tells which weights, options and engine
    produced the numbers, for manifests and reports.

    Memory is bounded by ``tiling``: no backend call gets more than ``tiling.window_samples`` of
    audio. Batches are cut to fit, and a longer clip runs in exact overlapping windows
    (runtime._tiling) through ``map_backend``, a factory of the same engine built with
    ``pooling='none'`` (made on the first long clip). Without one, a long clip is refused with its
    memory estimate instead of risking the machine.
    """

    def __init__(
        self,
        backend: Backend,
        weights: LoadedWeights,
        config: EncoderConfig,
        *,
        batch_size: int = 8,
        tiling: Tiling | None = None,
        map_backend: Callable[[], Backend] | None = None,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
        self.backend = backend
        self.weights = weights
        self.config = config
        self.batch_size = batch_size
        self.tiling = tiling or Tiling()
        self._map_factory = map_backend
        self._map_backend: Backend | None = backend if config.pooling == "none" else None
        #: How to build this extractor again in another process (set by :meth:`from_checkpoint`; a
        #: picklable call), so a distributed engine builds the same one on every worker.
        self.recipe: Callable[[], FeatureExtractor] | None = None

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
        window_seconds: float | None = None,
        **backend_options,
    ) -> FeatureExtractor:
        """Load ``checkpoint`` (a file, or ``random:SEED``) strictly and build the ``backend``.

        ``window_seconds`` bounds the audio of one backend call (default: ``Tiling()``, 15.36 s).
        Long clips are tiled through the same backend built with ``pooling='none'``; a given
        ``model_path`` artifact has its pooling baked in, so with one, long clips are refused.
        """
        config = EncoderConfig(
            film=film, layer=layer, pooling=pooling, pad_to_32=pad_to_32, condition=read_condition(condition)
        )
        tiling = Tiling() if window_seconds is None else Tiling.from_seconds(window_seconds)
        weights = load_weights(checkpoint, trust_pickle=trust_pickle)
        extractor = cls.from_weights(
            weights, config, backend, device, batch_size=batch_size, tiling=tiling, **backend_options
        )
        where = checkpoint if str(checkpoint).startswith("random:") else os.path.abspath(checkpoint)
        extractor.recipe = functools.partial(
            cls.from_checkpoint, where, backend, device, film, config.condition, layer, pooling, pad_to_32,
            batch_size=batch_size, trust_pickle=trust_pickle, window_seconds=window_seconds, **backend_options,
        )  # fmt: skip
        return extractor

    @classmethod
    def from_weights(
        cls,
        weights: LoadedWeights,
        config: EncoderConfig,
        backend: str = "eager",
        device: str = "cpu",
        *,
        batch_size: int = 8,
        tiling: Tiling | None = None,
        **backend_options,
    ) -> FeatureExtractor:
        """Build the ``backend`` on weights already loaded, so several encoder configurations (or
        devices) share one read of the checkpoint; otherwise as :meth:`from_checkpoint`."""
        engine = make_backend(backend, weights, config, device, **backend_options)
        map_backend = None
        if "model_path" not in backend_options:
            map_config = replace(config, pooling="none")
            map_backend = lambda: make_backend(backend, weights, map_config, device, **backend_options)  # noqa: E731
        return cls(engine, weights, config, batch_size=batch_size, tiling=tiling, map_backend=map_backend)

    @property
    def fixed_width(self) -> bool:
        return self.config.output_dim is not None and self.config.pooling != "frames"

    def embed(self, waveform: np.ndarray | Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Features of one waveform (1-D -> (D,)) or a batch of equal-length ones (2-D -> (B, D)).

        ``sample_rate`` is the input's rate in Hz, required: a default would silently call 16 kHz audio
        32 kHz. A (frames, channels) array, as soundfile.read returns, is refused with the fix (it would run
        as thousands of few-sample clips), and so are rows of different lengths (use ``embed_waves``). An
        empty (0, L) batch gives (0, D) (for 'none'/'frames' pooling, (0, *row shape) of length L).
        """
        waves, single = prepare_batch(waveform, sample_rate)
        if single:
            return self.embed_waves(waves)[0]
        if waves:
            return np.stack(self.embed_waves(waves))
        width = self.config.output_dim
        if self.fixed_width and width is not None:
            return np.empty((0, width), np.float32)
        probe = prepare_waveform(np.zeros(np.shape(waveform)[1], np.float32), sample_rate, source="<batch>")[0]
        return np.empty((0, *self.embed_waves([probe])[0].shape), np.float32)

    def embed_waves(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of model-ready 32 kHz waveforms (any lengths >= 1025), in input order."""
        for i, wave in enumerate(waves):
            check_clip_length(self.config, wave.shape[0], f"clip {i}")
        out: list[np.ndarray | None] = [None] * len(waves)
        whole = [i for i, wave in enumerate(waves) if not self.tiling.needs_tiling(wave.shape[0])]
        rows = run_grouped(self.backend, [waves[i] for i in whole], self.batch_size, self.tiling.window_samples)
        for i, row in zip(whole, rows, strict=True):
            out[i] = row
        for i, wave in enumerate(waves):
            if out[i] is None:
                out[i] = self.embed_long(wave)
        return out  # type: ignore[return-value]

    def embed_long(self, wave: np.ndarray) -> np.ndarray:
        """Features of one 32 kHz clip of any length, in windows of at most ``tiling.window_samples``."""
        if not self.tiling.needs_tiling(wave.shape[0]):
            return self.embed_waves([wave])[0]
        backend = self._tiling_backend(wave.shape[0])
        return run_tiled(backend.run, wave, self.tiling, self.config.layer, self.config.pooling)

    def _tiling_backend(self, num_samples: int) -> Backend:
        if self._map_backend is None:
            if self._map_factory is None:
                seconds = num_samples / SAMPLE_RATE
                need = estimate_peak_bytes(seconds, seconds, SAMPLE_RATE) / 2**30
                raise BackendUnavailableError(
                    f"a {seconds:.1f} s clip is longer than one {self.tiling.window_seconds:.2f} s window, and this "
                    f"{self.backend.name} backend has no map engine to tile it exactly (an artifact given by "
                    f"model_path has its pooling={self.config.pooling!r} baked in). In one pass it would need "
                    f"about {need:.1f} GB. Drop model_path so the backend can build its own, cut the file, or "
                    "raise window_seconds / --window-seconds if the machine has the memory."
                )
            self._map_backend = self._map_factory()
        return self._map_backend

    def embed_files(self, paths: Iterable[str | Path]) -> np.ndarray | list[np.ndarray]:
        """Features of audio files: (N, D) for fixed-width pooling (also for no files: (0, D)), else a
        list of per-file arrays.

        A file that cannot be used raises AudioDecodeError naming it; for per-file error records
        and resumable output use ``audiosep-extract`` (runtime.store).
        """
        waves = [read_audio(p).waveform for p in paths]
        rows = self.embed_waves(waves)
        width = self.config.output_dim
        if not self.fixed_width or width is None:
            return rows
        return np.stack(rows) if rows else np.empty((0, width), np.float32)

    def describe(self) -> dict:
        """Weights identity, encoder options, backend and what executed, versions, date."""
        return describe_extraction(self.backend, self.weights, self.config, self.batch_size, self.tiling)


def describe_extraction(
    backend: Backend, weights: LoadedWeights, config: EncoderConfig, batch_size: int, tiling: Tiling
) -> dict:
    """What made a set of features: the one description that manifests, reports and the feature cache
    key read, whether the features came from a FeatureExtractor or from a sweep (runtime._sweep)."""
    return {
        "weights": weights.describe(),
        "backend": backend.name,
        "precision": backend.precision,
        "executed": backend.executed(),
        "encoder": config.to_dict(),
        "sample_rate": SAMPLE_RATE,
        "resampler": RESAMPLER,
        "batching": "equal-length groups",
        "batch_size": batch_size,
        "tiling": {**tiling.describe(), "exact": True},
        "versions": package_versions(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
