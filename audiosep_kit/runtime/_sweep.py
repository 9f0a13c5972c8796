"""Several taps of the encoder from one pass: the extractor of an ablation sweep.

Why one pass: the encoder's cost is in its deep blocks, and the map of every block up to the
deepest tap is a tensor the forward computes anyway; pooling it is cheap. So the (layer, pooling)
taps of one FiLM mode come from one pass per batch, costing about what the deepest tap alone costs.
A FiLM mode changes the forward itself, so each mode needs its own SweepExtractor (its own pass).

Why the numbers equal single runs to the bit: the same eager module, the same batches
(``run_grouped``: equal-length groups, a lone short clip doubled, calls capped at one window), and
for a clip longer than one window the same exact tiling per layer (``run_tiled_taps``: the windows'
samples are the same for every layer, so one pass per window serves them all). Each tap's
description (:meth:`SweepExtractor.describe_tap`) is the one a FeatureExtractor of that
configuration gives, so its features share that configuration's feature-cache entry.

Eager only: the PyTorch reference is the one engine whose intermediate maps can be read; compile,
onnx, aoti and fast run a graph with one tap baked in. A sweep on them is refused, never silently
run on eager.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from audiosep_kit.errors import ConfigError
from audiosep_kit.model import (
    LAYERS,
    AudioSepEncoder,
    EncoderConfig,
    LoadedWeights,
    load_weights,
    pool_features,
    run_encoder,
    run_encoder_maps,
)
from audiosep_kit.runtime._extractor import check_clip_length, describe_extraction, read_condition, run_grouped
from audiosep_kit.runtime._tiling import Tiling, run_tiled_taps
from audiosep_kit.runtime.backends import Backend, TorchBackend, make_backend

#: Poolings a sweep offers: the fixed-width ones a feature store holds.
SWEEP_POOLINGS = ("mean", "meanstd", "max")
#: A tap of a sweep: (layer, pooling).
Tap = tuple[str, str]


def check_sweep_backend(backend: str) -> None:
    """Refuse any backend but eager, with the reason and the fix (see the module docstring)."""
    if backend != "eager":
        raise ConfigError(
            f"a sweep runs on the eager backend only: it reads several taps from one pass of the PyTorch "
            f"reference, and backend={backend!r} runs a graph with a single tap baked in. Use backend='eager', "
            "or evaluate each configuration on its own with layer=, pooling= and film=."
        )


class _JointRun:
    """The eager backend, pooling every tap of one pass side by side: run(batch) -> (B, sum of widths)."""

    def __init__(self, backend: TorchBackend, encoder: AudioSepEncoder, taps: Sequence[Tap]):
        self.name = backend.name
        self.precision = backend.precision
        self.executed = backend.executed
        self.device = backend.device
        self.encoder = encoder
        self.taps = taps
        self.layers = list(dict.fromkeys(layer for layer, _ in taps))

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.encoder.feature_maps(x, self.layers)
        return torch.cat([pool_features(maps[layer], pooling) for layer, pooling in self.taps], dim=1)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return run_encoder(self._pooled, batch, self.device)


class SweepExtractor:
    """Waveforms in, the features of several (layer, pooling) taps of one FiLM mode out, one pass each.

    ``config`` gives the FiLM mode, condition and pad_to_32 (its layer and pooling are unused). Build
    it with :meth:`from_checkpoint` or :meth:`from_weights` (one per FiLM mode, sharing the weights).
    """

    def __init__(
        self,
        backend: Backend,
        weights: LoadedWeights,
        config: EncoderConfig,
        *,
        batch_size: int = 8,
        tiling: Tiling | None = None,
    ):
        if not isinstance(backend, TorchBackend) or not isinstance(backend.fn, AudioSepEncoder):
            raise ConfigError(f"a SweepExtractor needs the eager backend's encoder module; got {backend!r}.")
        check_sweep_backend(backend.name)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
        self.backend = backend
        self.encoder: AudioSepEncoder = backend.fn
        self.weights = weights
        self.config = config
        self.batch_size = batch_size
        self.tiling = tiling or Tiling()

    @classmethod
    def from_weights(
        cls,
        weights: LoadedWeights,
        backend: str = "eager",
        device: str = "cpu",
        film: str = "none",
        condition: np.ndarray | str | Path | None = None,
        pad_to_32: bool = True,
        *,
        batch_size: int = 8,
        window_seconds: float | None = None,
        **backend_options,
    ) -> SweepExtractor:
        """The sweep extractor of one FiLM mode on loaded ``weights`` (options as FeatureExtractor's)."""
        check_sweep_backend(backend)
        config = EncoderConfig(film=film, pad_to_32=pad_to_32, condition=read_condition(condition))
        engine = make_backend(backend, weights, config, device, **backend_options)
        tiling = Tiling() if window_seconds is None else Tiling.from_seconds(window_seconds)
        return cls(engine, weights, config, batch_size=batch_size, tiling=tiling)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, backend: str = "eager", *, trust_pickle: bool = False, **options
    ) -> SweepExtractor:
        """Load ``checkpoint`` (a file, or ``random:SEED``) strictly; ``options`` as :meth:`from_weights`."""
        check_sweep_backend(backend)  # before loading anything
        return cls.from_weights(load_weights(checkpoint, trust_pickle=trust_pickle), backend, **options)

    def tap_config(self, tap: Tap) -> EncoderConfig:
        """The EncoderConfig a FeatureExtractor computing ``tap`` alone has."""
        layer, pooling = tap
        if pooling not in SWEEP_POOLINGS:
            raise ConfigError(
                f"a sweep compares fixed-width features: `pooling` must be one of {set(SWEEP_POOLINGS)}; got "
                f"{pooling!r}. Extract frames or full maps of one configuration with FeatureExtractor instead."
            )
        return replace(self.config, layer=layer, pooling=pooling)

    def describe_tap(self, tap: Tap) -> dict:
        """What a FeatureExtractor of ``tap``'s configuration would describe (so the cache key is its key)."""
        return describe_extraction(self.backend, self.weights, self.tap_config(tap), self.batch_size, self.tiling)

    def view(self, tap: Tap) -> TapView:
        return TapView(self, tap)

    def embed_sweep(self, waves: Sequence[np.ndarray], taps: Sequence[Tap]) -> dict[Tap, np.ndarray]:
        """{tap: (B, D) float32} for model-ready 32 kHz ``waves`` (any lengths >= the deepest tap's minimum).

        Equal to ``FeatureExtractor.embed_waves`` of each tap's configuration on the same waves.
        """
        taps = list(dict.fromkeys(taps))
        if not taps:
            raise ConfigError("a sweep needs at least one (layer, pooling) tap; got none.")
        widths = [self.tap_config(tap).output_dim or 0 for tap in taps]
        deepest = max(taps, key=lambda tap: LAYERS.index(tap[0]))
        for i, wave in enumerate(waves):
            check_clip_length(self.tap_config(deepest), wave.shape[0], f"clip {i}")
        rows = self._rows(waves, taps, widths)
        return {
            tap: np.stack([row[tap] for row in rows]) if rows else np.empty((0, width), np.float32)
            for tap, width in zip(taps, widths, strict=True)
        }

    def _rows(self, waves: Sequence[np.ndarray], taps: list[Tap], widths: list[int]) -> list[dict[Tap, np.ndarray]]:
        """Per wave, {tap: (D,)}: whole clips in joint batches, longer ones tiled (see module docstring)."""
        joint = _JointRun(self.backend, self.encoder, taps)
        whole = [i for i, wave in enumerate(waves) if not self.tiling.needs_tiling(wave.shape[0])]
        joined = run_grouped(joint, [waves[i] for i in whole], self.batch_size, self.tiling.window_samples)
        rows: dict[int, dict[Tap, np.ndarray]] = {}
        for i, row in zip(whole, joined, strict=True):
            rows[i] = dict(zip(taps, np.split(row, np.cumsum(widths)[:-1]), strict=True))
        for i, wave in enumerate(waves):
            if i not in rows:
                run_maps = functools.partial(run_encoder_maps, self.encoder, layers=joint.layers, device=joint.device)
                rows[i] = run_tiled_taps(run_maps, wave, self.tiling, taps)
        return [rows[i] for i in range(len(waves))]


class TapView:
    """One tap of a sweep, shaped like a FeatureExtractor for the feature store and the cache.

    ``describe()`` and ``config`` are those of a FeatureExtractor of the tap's configuration;
    ``embed_waves`` computes the tap alone (a one-tap sweep).
    """

    fixed_width = True

    def __init__(self, sweep: SweepExtractor, tap: Tap):
        self.sweep = sweep
        self.tap = tap
        self.config = sweep.tap_config(tap)

    @property
    def batch_size(self) -> int:
        return self.sweep.batch_size

    def describe(self) -> dict:
        return self.sweep.describe_tap(self.tap)

    def embed_waves(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(self.sweep.embed_sweep(waves, [self.tap])[self.tap])
