"""Long clips in bounded memory, exactly: the encoder run in overlapping windows.

Why this is exact. Everything the encoder does is local in time: the STFT frame t reads the samples
[320 t - 1024, 320 t + 1024), BatchNorm is a per-channel affine in eval mode, each ConvBlockRes has
two 3x3 convolutions, and the pools have kernel = stride. So an output frame depends only on the
input frames around it. Summed over the blocks, the receptive field reaches 2 + 4 + 8 + 16 + 32 + 64
+ 64 = 190 STFT frames either way, and the STFT of a window differs from the whole clip's only in the
4 frames next to each window edge (its reflect padding). A window that carries
:data:`MARGIN_FRAMES` = 256 frames of real neighbouring audio on each side of the part it keeps (its
core) therefore computes the core exactly as the whole clip would, provided that

* windows start on the 32-frame grid of the five time pools (sample 320 * 32 k), so each window's
  pools see the same frame groups as the whole clip's;
* the first window starts at sample 0 and the last ends at the clip's last sample, so the clip's
  own edges (reflect padding, the zero pad to a multiple of 32 frames, the pools' floor without
  ``pad_to_32``) are computed exactly as in one pass.

The kept cores are pooled as one map, streaming: sums, sums of squares (float64) and maxima, so
memory stays bounded for any length (``frames`` and ``none`` outputs grow with the clip by nature).
Measured on random weights (tests/runtime/test_tiling.py): the tiled tap map equals the whole-clip
map to the bit on CPU eager; with a 192-frame margin it differs by ~5e-7, with 96 by ~4e-2, which
is why the margin is 256 and why the test can fail.

Memory. A backend call holds about :data:`BYTES_PER_SECOND` of activations per second of audio
(eager, fp32, CPU; measured 71 MB/s) on top of the loaded process (:data:`BASE_BYTES`). With the
default window of 1024 + 2 x 256 frames (15.36 s), one call stays under about 1.8 GB whatever the
clip length; decoding adds 4 bytes per sample at the file's rate and at 32 kHz.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from audiosep_kit.errors import ConfigError
from audiosep_kit.model import HOP, LAYERS, SAMPLE_RATE

#: Frames of real audio a window carries beyond its core on each side (>= 190 + 4 + pool alignment).
MARGIN_FRAMES = 256
#: Frames each window keeps by default (a multiple of the 32-frame pool grid).
CORE_FRAMES = 1024
#: The time pools' grid: windows start on multiples of it.
GRID_FRAMES = 32
#: STFT frames per second of 32 kHz audio (hop 320).
FRAMES_PER_SECOND = SAMPLE_RATE // HOP
#: Measured activation memory per second of audio in one backend call (eager, fp32, CPU).
BYTES_PER_SECOND = 71 * 2**20
#: Measured resident memory of a loaded extractor before any call (torch, weights).
BASE_BYTES = 600 * 2**20


@dataclass(frozen=True)
class Window:
    """One backend call of a tiled clip: samples [start, stop), keeping tap frames [keep_from, keep_to)."""

    start: int
    stop: int
    keep_from: int
    keep_to: int | None  # None: to the end of the window's map (the last window)


@dataclass(frozen=True)
class Tiling:
    """How long clips are cut: ``core_frames`` kept per window, ``margin_frames`` either side.

    A clip of at most :attr:`window_samples` runs whole; a longer one runs in windows. Both sizes
    are multiples of the 32-frame pool grid, and the margin is at least the receptive field.
    """

    core_frames: int = CORE_FRAMES
    margin_frames: int = MARGIN_FRAMES

    def __post_init__(self) -> None:
        for name in ("core_frames", "margin_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0 or value % GRID_FRAMES:
                raise ConfigError(f"`{name}` must be a positive multiple of {GRID_FRAMES} frames; got {value!r}.")

    @classmethod
    def from_seconds(cls, window_seconds: float) -> Tiling:
        """The tiling whose windows hold at most ``window_seconds`` of audio (margins included)."""
        frames = int(window_seconds * FRAMES_PER_SECOND)
        core = (frames - 2 * MARGIN_FRAMES) // GRID_FRAMES * GRID_FRAMES
        if core < GRID_FRAMES:
            shortest = (2 * MARGIN_FRAMES + GRID_FRAMES) / FRAMES_PER_SECOND
            raise ConfigError(
                f"window_seconds={window_seconds} leaves no room beside the two {MARGIN_FRAMES}-frame margins "
                f"of exact tiling; use at least {shortest:.2f} s."
            )
        return cls(core_frames=core)

    @property
    def window_samples(self) -> int:
        """Most samples one backend call is given (a clip this long or shorter runs whole)."""
        return HOP * (self.core_frames + 2 * self.margin_frames)

    @property
    def window_seconds(self) -> float:
        return self.window_samples / SAMPLE_RATE

    def needs_tiling(self, num_samples: int) -> bool:
        return num_samples > self.window_samples

    def windows(self, num_samples: int, layer: str) -> list[Window]:
        """The windows of a clip of ``num_samples``; their kept tap frames, in order, tile its map."""
        stride = tap_stride(layer)
        out: list[Window] = []
        core_start = 0
        while True:
            first = max(0, core_start - self.margin_frames)
            end = core_start + self.core_frames + self.margin_frames
            keep_from = (core_start - first) // stride
            if HOP * end >= num_samples:  # reaches the clip's end: the last window ends there too
                out.append(Window(HOP * first, num_samples, keep_from, None))
                return out
            out.append(Window(HOP * first, HOP * end, keep_from, keep_from + self.core_frames // stride))
            core_start += self.core_frames

    def describe(self) -> dict:
        return {
            "core_frames": self.core_frames,
            "margin_frames": self.margin_frames,
            "window_seconds": self.window_seconds,
        }


def tap_stride(layer: str) -> int:
    """STFT frames per time step of ``layer``'s map (five time-halving pools at most)."""
    return 2 ** min(LAYERS.index(layer) + 1, 5)


def estimate_peak_bytes(window_seconds: float, longest_seconds: float, original_rate: int = 48_000) -> int:
    """Rough peak resident memory of extracting a clip of ``longest_seconds`` (eager fp32 CPU).

    One backend call holds at most ``window_seconds`` of audio (longer clips are tiled); decoding
    holds the mono waveform at its own rate and at 32 kHz (float32).
    """
    call = min(window_seconds, longest_seconds) * BYTES_PER_SECOND
    decode = longest_seconds * 4 * (original_rate + SAMPLE_RATE)
    return int(BASE_BYTES + call + decode)


class _StreamingPool:
    """Pools a (C, T', F') map given in consecutive time slices, as ``model.pool_features`` would."""

    def __init__(self, pooling: str):
        self.pooling = pooling
        self.count = 0
        self.total: np.ndarray | None = None
        self.squares: np.ndarray | None = None
        self.maximum: np.ndarray | None = None
        self.pieces: list[np.ndarray] = []

    def add(self, part: np.ndarray) -> None:
        if self.pooling in ("frames", "none"):
            self.pieces.append(part.mean(axis=2).T if self.pooling == "frames" else part)
            return
        flat = part.reshape(part.shape[0], -1).astype(np.float64)
        self.count += flat.shape[1]
        sums, peaks = flat.sum(axis=1), flat.max(axis=1)
        self.total = sums if self.total is None else self.total + sums
        self.maximum = peaks if self.maximum is None else np.maximum(self.maximum, peaks)
        if self.pooling == "meanstd":
            squares = np.square(flat).sum(axis=1)
            self.squares = squares if self.squares is None else self.squares + squares

    def result(self) -> np.ndarray:
        if self.pooling == "frames":
            return np.concatenate(self.pieces, axis=0).astype(np.float32)
        if self.pooling == "none":
            return np.concatenate(self.pieces, axis=1).astype(np.float32)
        assert self.total is not None and self.maximum is not None
        if self.pooling == "max":
            return self.maximum.astype(np.float32)
        mean = self.total / self.count
        if self.pooling == "mean":
            return mean.astype(np.float32)
        assert self.squares is not None
        std = np.sqrt(np.maximum(self.squares / self.count - mean**2, 0.0))
        return np.concatenate([mean, std]).astype(np.float32)


def run_tiled(
    run_map: Callable[[np.ndarray], np.ndarray], wave: np.ndarray, tiling: Tiling, layer: str, pooling: str
) -> np.ndarray:
    """Features of one long 32 kHz ``wave`` from windows of ``run_map`` ((1, L) -> (1, C, T', F') map).

    Equal to the whole-clip features to float32 rounding (see the module docstring).
    """
    taps = run_tiled_taps(lambda batch: {layer: run_map(batch)}, wave, tiling, [(layer, pooling)])
    return taps[(layer, pooling)]


def run_tiled_taps(
    run_maps: Callable[[np.ndarray], dict[str, np.ndarray]],
    wave: np.ndarray,
    tiling: Tiling,
    taps: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], np.ndarray]:
    """Features of several (layer, pooling) ``taps`` of one long ``wave``, one ``run_maps`` call per window.

    ``run_maps`` maps a (1, L) window to ``{layer: (1, C, T', F') map}`` for every layer of ``taps``.
    The windows' samples do not depend on the layer (only the tap frames each keeps do: the layer's
    time stride), so one pass per window serves every layer, each kept and pooled as ``run_tiled``
    would have for that layer alone.
    """
    layers = list(dict.fromkeys(layer for layer, _ in taps))
    windows = {layer: tiling.windows(wave.shape[0], layer) for layer in layers}
    pools = {tap: _StreamingPool(tap[1]) for tap in taps}
    for k, window in enumerate(windows[layers[0]]):
        maps = run_maps(wave[None, window.start : window.stop])
        for (layer, _), pool in pools.items():
            kept = windows[layer][k]
            pool.add(maps[layer][0][:, kept.keep_from : kept.keep_to])
    return {tap: pool.result() for tap, pool in pools.items()}
