"""The HEAR 2021 common API over the AudioSep encoder, as hear-eval-kit's runner and hear-validator call it.

``load_model(model_file_path)`` returns a ``torch.nn.Module`` with ``sample_rate``, ``scene_embedding_size``
and ``timestamp_embedding_size``; ``get_scene_embeddings(audio, model)`` maps (n_sounds, n_samples) float32
audio to (n_sounds, D); ``get_timestamp_embeddings(audio, model)`` to (n_sounds, T, D) with (n_sounds, T)
timestamps in milliseconds. Everything runs through the runtime's :class:`FeatureExtractor` (any backend,
equal-length batching, exact tiling of long clips), so HEAR numbers and the toolkit's own are the same
features.

**Sample rate.** The encoder was trained at 32 kHz, so ``model.sample_rate`` is 32000 by default (one of
HEAR's rates: the runner then reads ``tasks/<task>/32000/``). A tensor does not carry its rate, so audio at
another rate cannot be detected: it must be at ``model.sample_rate``. Two ways to be safe: load with
``sample_rate=48000`` (or 16000, 22050, 44100) to declare the rate of the task audio you have (the model
then resamples it to 32 kHz with the toolkit's soxr HQ front door, and timestamps stay in the input's
milliseconds); and pass ``sample_rate=`` to the ``get_*`` functions, which refuse audio declared at a rate
other than the model's.

**Scene embeddings** are the toolkit's default features: the bottleneck (``center``, after
``conv_block7a``) averaged over time and frequency, 384 numbers (``layer``/``pooling`` choose others).

**Timestamp embeddings: tap and hop.** Each of the first five encoder blocks halves time, so the taps step
20 ms (block1, 32 channels), 40 ms (block2, 64), 80 ms (block3, 128), 160 ms (block4, 256) and 320 ms
(block5, block6, center; 384). The bottleneck's 320 ms is too coarse for HEAR's event tasks (DCASE 2016
task 2 scores onsets within 200 ms, MAESTRO within 50 ms), and HEAR suggests hops of at most 50 ms. The
default is therefore ``block2``: the deepest tap with a hop within 50 ms, a 40 ms hop whose receptive field
spans 214 ms (STFT frames 4t-6 ... 4t+9, plus the 2048-sample window). Its map (64 channels x 256
frequency cells of 62.5 Hz) is averaged into :data:`TIMESTAMP_BANDS` = 16 bands of 1 kHz, the bands the
bottleneck itself ends with, giving 64 x 16 = 1024 numbers per frame (ordered channel-major: index
``16 * channel + band``); averaging all frequencies would leave 64, too few to tell events apart. The price
is depth: block2 has seen four 3x3 convolutions, local spectro-temporal patterns rather than the
bottleneck's 4 s of context. ``timestamp_layer`` trades resolution for depth (block3: 80 ms, 2048 numbers).

**Timestamps** mark the centre of each frame's window. Cell t of a tap with stride s (STFT frames per
cell) averages frames s*t ... s*t+s-1, and frame f's window is centred on sample 320 f, i.e. 10 f ms; so
the cell is centred at 10 (s t + (s-1)/2) ms (block2: 15 + 40 t ms), and its receptive field is symmetric
around that. Cells whose centre lies past the clip's end (the last partial cell, and the cells of the zero
padding to 32 frames) are dropped rather than clipped to the end, because a clipped timestamp would break
the regular spacing that hear-validator requires (1 ms); at least one cell is kept, its timestamp clipped
into [0, duration]. All sounds of a batch have one length, hence one T.

**Short clips** (< 1025 samples at 32 kHz, the STFT's minimum) are zero-padded by the audio front door, as
everywhere in the toolkit; their timestamps still stop at the clip's own duration. Long clips run in the
runtime's exact windows; the block2 map is held whole before its band average, 1.6 MB per second of audio
(HEAR's clips are seconds to minutes long).

**Batches and determinism.** A clip's embeddings never depend on its batch-mates: batches hold equal-length
clips only, and the runtime runs a short clip alone in a batch of two, so it takes the same kernels as in a
batch. On CPU, oneDNN may still choose batch-size-dependent kernels for sub-second clips: results then agree
to float32 rounding (~1e-7 relative) rather than to the bit. The same input gives the same output.

**Devices.** ``model.to(device)`` (which the HEAR runner and hear-validator call) rebuilds the backend on
that device on the next call; embeddings come back on the input audio's device. Dtype casts such as
``model.half()`` do not apply: HEAR embeddings are float32, and a backend's precision is a load option
(``precision=``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audiosep_kit._devices import torch_device
from audiosep_kit._validation import check_choice
from audiosep_kit.errors import AudioDecodeError, CheckpointError, ConfigError
from audiosep_kit.model import (
    CHECKPOINT_ENV,
    HOP,
    LAYER_CHANNELS,
    LAYERS,
    SAMPLE_RATE,
    EncoderConfig,
    LoadedWeights,
    load_weights,
    resolve_checkpoint,
)
from audiosep_kit.runtime import FeatureExtractor, read_condition, tap_stride

__all__ = [
    "AudioSepHear",
    "DEFAULT_TIMESTAMP_LAYER",
    "HEAR_SAMPLE_RATES",
    "SCENE_POOLINGS",
    "TIMESTAMP_BANDS",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
    "timestamp_count",
    "timestamps_ms",
]

_log = logging.getLogger(__name__)

#: The rates HEAR's preprocessed tasks come in (and hear-validator accepts).
HEAR_SAMPLE_RATES = (16_000, 22_050, 32_000, 44_100, 48_000)
#: Scene poolings: those that give one fixed-width vector per sound.
SCENE_POOLINGS = ("mean", "meanstd", "max")
DEFAULT_TIMESTAMP_LAYER = "block2"
#: Frequency bands a timestamp frame keeps (1 kHz each; every tap's frequency axis divides into 16).
TIMESTAMP_BANDS = 16
#: Milliseconds per STFT frame (hop 320 at 32 kHz).
_FRAME_MS = 1000 * HOP / SAMPLE_RATE
_FRAMES_PER_SECOND = SAMPLE_RATE // HOP


def check_hear_options(sample_rate: object, pooling: str, timestamp_layer: str) -> None:
    """Refuse a rate HEAR has no tasks at, a scene pooling without one vector per sound, an unknown tap."""
    check_choice("sample_rate", sample_rate, HEAR_SAMPLE_RATES)
    check_choice("pooling (of scene embeddings)", pooling, SCENE_POOLINGS)
    check_choice("timestamp_layer", timestamp_layer, LAYERS)


def timestamp_count(num_samples: int, sample_rate: int, stride: int) -> int:
    """Timestamps of a clip of ``num_samples`` at ``sample_rate``: the cells whose centre
    10 (s t + (s-1)/2) ms is within the clip, at least one. Integer arithmetic, so no rounding drift."""
    # centre <= duration  <=>  2 sr (s t) + sr (s - 1) <= 200 n   (times in 10 ms frames, doubled)
    numerator = 2 * _FRAMES_PER_SECOND * num_samples - sample_rate * (stride - 1)
    return numerator // (2 * sample_rate * stride) + 1 if numerator >= 0 else 1


def timestamps_ms(count: int, num_samples: int, sample_rate: int, stride: int) -> np.ndarray:
    """(count,) float32 centres 10 (s t + (s-1)/2) ms, clipped into [0, duration] (only a lone
    timestamp of a clip shorter than its first centre is ever clipped)."""
    centres = _FRAME_MS * (stride * np.arange(count, dtype=np.float64) + (stride - 1) / 2)
    duration = 1000.0 * num_samples / sample_rate
    return np.clip(centres, 0.0, duration).astype(np.float32)


def band_frames(maps: np.ndarray, bands: int = TIMESTAMP_BANDS) -> np.ndarray:
    """(B, C, T, F) tap maps -> (B, T, C * bands): frequency averaged into ``bands`` equal bands,
    index ``bands * channel + band``."""
    b, c, t, f = maps.shape
    pooled = maps.reshape(b, c, t, bands, f // bands).mean(axis=4, dtype=np.float32)
    return np.ascontiguousarray(pooled.transpose(0, 2, 1, 3).reshape(b, t, c * bands))


class AudioSepHear(nn.Module):
    """The AudioSep encoder as a HEAR model: attributes HEAR reads, and the embedding computations.

    Build it with :func:`load_model`. ``weights`` stay on the CPU; each embedding kind runs through its own
    :class:`FeatureExtractor` on those weights, built on first use on the module's device (a buffer that
    ``.to()`` moves). ``scene`` is the scene tap's configuration; timestamps use ``timestamp_layer`` with
    the same FiLM options, unpooled.
    """

    _device_anchor: torch.Tensor

    def __init__(
        self,
        weights: LoadedWeights,
        scene: EncoderConfig,
        *,
        timestamp_layer: str = DEFAULT_TIMESTAMP_LAYER,
        sample_rate: int = SAMPLE_RATE,
        backend: str = "eager",
        device: str = "cpu",
        batch_size: int = 8,
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_hear_options(sample_rate, scene.pooling, timestamp_layer)
        width = scene.output_dim
        assert width is not None  # a SCENE_POOLINGS pooling has a fixed width
        self.weights = weights
        self.scene_config = scene
        self.timestamp_config = replace(scene, layer=timestamp_layer, pooling="none")
        self.sample_rate = int(sample_rate)
        self.scene_embedding_size = int(width)
        self.timestamp_embedding_size = LAYER_CHANNELS[timestamp_layer] * TIMESTAMP_BANDS
        self.timestamp_stride = tap_stride(timestamp_layer)
        self.timestamp_hop_ms = _FRAME_MS * self.timestamp_stride
        self.random_weights = weights.is_random
        self.backend = backend
        self.batch_size = batch_size
        self.backend_options = dict(backend_options or {})
        self.register_buffer("_device_anchor", torch.zeros(0, dtype=torch.uint8, device=torch_device(device)))
        self._extractors: dict[str, FeatureExtractor] = {}

    @property
    def device(self) -> torch.device:
        """Where the backend runs: the device of the last ``.to()``, or the one loaded on."""
        return self._device_anchor.device

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> AudioSepHear:
        """``.to()``, ``.cuda()``, ``.cpu()`` move the anchor; a new device means new backends."""
        before = self.device
        super()._apply(fn, recurse)  # an integer anchor: float casts (.half(), .double()) leave it alone
        if self.device != before:
            self._extractors.clear()
        return self

    def extractor(self, kind: str) -> FeatureExtractor:
        """The 'scene' or 'timestamp' extractor on the current device, built on first use."""
        if kind not in self._extractors:
            config = self.scene_config if kind == "scene" else self.timestamp_config
            _log.info("building the %s backend for HEAR %s embeddings (layer %s) on %s", self.backend, kind,
                      config.layer, self.device)  # fmt: skip
            self._extractors[kind] = FeatureExtractor.from_weights(
                self.weights,
                config,
                self.backend,
                str(self.device),
                batch_size=self.batch_size,
                **self.backend_options,
            )
        return self._extractors[kind]

    def scene_embeddings(self, waves: np.ndarray) -> np.ndarray:
        """(n, L) float32 at ``sample_rate`` -> (n, scene_embedding_size) float32."""
        return self.extractor("scene").embed(waves, self.sample_rate)

    def timestamp_embeddings(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, L) float32 at ``sample_rate`` -> embeddings (n, T, timestamp_embedding_size), timestamps (n, T) ms."""
        n_sounds, n_samples = waves.shape
        count = timestamp_count(n_samples, self.sample_rate, self.timestamp_stride)
        stamps = np.tile(timestamps_ms(count, n_samples, self.sample_rate, self.timestamp_stride), (n_sounds, 1))
        if n_sounds == 0:
            return np.empty((0, count, self.timestamp_embedding_size), np.float32), stamps
        maps = self.extractor("timestamp").embed(waves, self.sample_rate)  # (n, C, T', F)
        return band_frames(maps[:, :, :count]), stamps

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Scene embeddings, so the module can be called like any other: (n, L) -> (n, D)."""
        return get_scene_embeddings(audio, self)

    def describe(self) -> dict:
        """What produced the embeddings: weights (random ones say so), options, backend, HEAR geometry."""
        return {
            "weights": self.weights.describe(),
            "backend": self.backend,
            "device": str(self.device),
            "sample_rate": self.sample_rate,
            "scene": {**self.scene_config.to_dict(), "size": self.scene_embedding_size},
            "timestamp": {
                **self.timestamp_config.to_dict(),
                "size": self.timestamp_embedding_size,
                "hop_ms": self.timestamp_hop_ms,
                "bands": TIMESTAMP_BANDS,
            },
        }

    def extra_repr(self) -> str:
        label = " (RANDOM weights)" if self.random_weights else ""
        return (
            f"weights={self.weights.source}{label}, backend={self.backend}, sample_rate={self.sample_rate}, "
            f"scene={self.scene_config.layer}/{self.scene_config.pooling} ({self.scene_embedding_size}), "
            f"timestamps={self.timestamp_config.layer} every {self.timestamp_hop_ms:g} ms "
            f"({self.timestamp_embedding_size})"
        )


def load_model(
    model_file_path: str | Path = "",
    *,
    sample_rate: int = SAMPLE_RATE,
    backend: str = "eager",
    device: str = "cpu",
    film: str = "none",
    condition: np.ndarray | str | Path | None = None,
    layer: str = "center",
    pooling: str = "mean",
    timestamp_layer: str = DEFAULT_TIMESTAMP_LAYER,
    batch_size: int = 8,
    trust_checkpoint: bool = False,
    **backend_options: Any,
) -> AudioSepHear:
    """The HEAR model on ``model_file_path``: a checkpoint file, or ``random:SEED`` (labelled random).

    Empty: the toolkit's default resolution (``$AUDIOSEP_CHECKPOINT``, then
    ``pretrained_models/AudioSep/`` under the working directory). ``sample_rate`` declares the rate of
    the audio to come (one of :data:`HEAR_SAMPLE_RATES`; not 32 kHz means resampled inside). ``layer`` and
    ``pooling`` choose the scene embedding, ``timestamp_layer`` the timestamp tap (module docstring);
    ``backend``, ``device``, ``film``/``condition`` and any backend option (``precision``, ...) are the
    toolkit's. The scene backend is built now, so a bad backend, device or option fails here.
    """
    check_hear_options(sample_rate, pooling, timestamp_layer)
    scene = EncoderConfig(film=film, layer=layer, pooling=pooling, condition=read_condition(condition))
    checkpoint = resolve_checkpoint(str(model_file_path) or None)
    if checkpoint is None:
        raise CheckpointError(
            "no checkpoint: pass model_file_path (hear-validator's --model, the runner's --model), a .ckpt, "
            f".bin, .pt or .safetensors file or 'random:SEED' for a labelled smoke run; or set ${CHECKPOINT_ENV}; "
            "or put audiosep_base_4M_steps.ckpt / pytorch_model.bin in pretrained_models/AudioSep/ under the "
            "working directory (see pretrained_models/README.md)."
        )
    weights = load_weights(checkpoint, trust_pickle=trust_checkpoint)
    if weights.is_random:
        _log.info("HEAR model on RANDOM weights (%s): embeddings for smoke tests only", weights.source)
    model = AudioSepHear(
        weights,
        scene,
        timestamp_layer=timestamp_layer,
        sample_rate=sample_rate,
        backend=backend,
        device=device,
        batch_size=batch_size,
        backend_options=backend_options,
    )
    model.extractor("scene")
    return model


def _as_model(model: object) -> AudioSepHear:
    if isinstance(model, AudioSepHear):
        return model
    wanted = ("sample_rate", "scene_embedding_size", "timestamp_embedding_size")
    missing = [name for name in wanted if not hasattr(model, name)]
    lacks = f" (it has no {', '.join(missing)})" if missing else ""
    raise ConfigError(
        f"`model` must be the module audiosep_kit.hear.load_model returns; got {type(model).__name__}{lacks}. "
        "Load it with audiosep_kit.hear.load_model(path or 'random:SEED')."
    )


def _audio_batch(audio: object, model: AudioSepHear, sample_rate: int | None) -> np.ndarray:
    """``audio`` as the (n_sounds, n_samples) float32 numpy batch, or a refusal saying how to fix it."""
    if sample_rate is not None and sample_rate != model.sample_rate:
        raise AudioDecodeError(
            f"audio declared at sample_rate={sample_rate!r} Hz, but this model takes {model.sample_rate} Hz "
            f"(HEAR feeds audio at model.sample_rate). Resample it, or load the model with "
            f"load_model(..., sample_rate={sample_rate!r}) (one of {list(HEAR_SAMPLE_RATES)}), which resamples."
        )
    if not isinstance(audio, torch.Tensor):
        raise AudioDecodeError(
            f"expected audio as a torch.Tensor of shape (n_sounds, n_samples); got {type(audio).__name__} "
            "(wrap a numpy array with torch.from_numpy(x))."
        )
    if audio.ndim != 2:
        hint = " For one sound use audio[None] (shape (1, n_samples))." if audio.ndim == 1 else ""
        raise AudioDecodeError(f"expected audio of shape (n_sounds, n_samples); got shape {tuple(audio.shape)}.{hint}")
    if audio.dtype != torch.float32:
        raise AudioDecodeError(
            f"expected float32 samples in [-1, 1]; got {audio.dtype}. Use audio.float() "
            "(and divide integer PCM by its full scale, e.g. 32768 for 16-bit)."
        )
    return np.ascontiguousarray(audio.detach().cpu().numpy())


def get_scene_embeddings(audio: torch.Tensor, model: AudioSepHear, *, sample_rate: int | None = None) -> torch.Tensor:
    """(n_sounds, n_samples) float32 at ``model.sample_rate`` -> (n_sounds, scene_embedding_size) float32,
    on the audio's device. ``sample_rate``, when given, is checked against the model's (HEAR passes none)."""
    hear = _as_model(model)
    out = hear.scene_embeddings(_audio_batch(audio, hear, sample_rate))
    return torch.from_numpy(out).to(audio.device)


def get_timestamp_embeddings(
    audio: torch.Tensor, model: AudioSepHear, *, sample_rate: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_sounds, n_samples) float32 -> embeddings (n_sounds, T, timestamp_embedding_size) float32 and
    timestamps (n_sounds, T) in ms (frame centres, ascending, within the clip), on the audio's device.
    ``sample_rate`` as in :func:`get_scene_embeddings`."""
    hear = _as_model(model)
    embeddings, stamps = hear.timestamp_embeddings(_audio_batch(audio, hear, sample_rate))
    return torch.from_numpy(embeddings).to(audio.device), torch.from_numpy(stamps).to(audio.device)
