"""The audio front door: any file or array in, the 32 kHz mono float32 waveform the model expects out.

Decoding is soundfile's (libsndfile: WAV of any PCM/float subtype, FLAC, OGG, AIFF ...), the downmix is
the channel mean, the resampler is soxr 'HQ' (what librosa 0.10, and so the official AudioSep pipeline,
used). Every refusal names the file: a feature extractor that drops inputs silently loses data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiosep_kit.errors import AudioDecodeError
from audiosep_kit.model import MIN_SAMPLES, SAMPLE_RATE

RESAMPLER = "soxr-HQ"
#: File endings a folder walk picks up (what libsndfile decodes, and the compressed kinds it may).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".mp3", ".opus", ".w64", ".caf")
#: Refuse longer inputs unless asked: one 3-hour file would take ~1.4 GB as float32 at 32 kHz.
DEFAULT_MAX_SECONDS = 3 * 3600.0


@dataclass(frozen=True)
class AudioClip:
    """A decoded, model-ready waveform plus what it was before (for indexes and reports)."""

    waveform: np.ndarray  # (L,) float32 at 32 kHz, L >= MIN_SAMPLES
    source: str
    original_sample_rate: int
    channels: int
    original_frames: int
    padded_samples: int = 0  # zeros appended so the STFT has the 1025 samples it needs

    @property
    def duration_s(self) -> float:
        return self.original_frames / self.original_sample_rate


def to_mono(frames: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by the channel mean, float32."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    return frames.mean(axis=1, dtype=np.float32)


def resample(wave: np.ndarray, sample_rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """1-D float32 resampled to ``target`` with soxr HQ (a no-op copy-free pass when rates match)."""
    if sample_rate == target:
        return np.ascontiguousarray(wave, dtype=np.float32)
    return soxr.resample(wave, sample_rate, target, quality="HQ").astype(np.float32, copy=False)


def _check_finite(wave: np.ndarray, source: str) -> None:
    if wave.size == 0:
        raise AudioDecodeError(f"{source}: the audio is empty (0 samples).")
    if not np.all(np.isfinite(wave)):
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioDecodeError(f"{source}: the audio holds {bad} NaN or infinite sample(s).")


def _pad_short(wave: np.ndarray) -> tuple[np.ndarray, int]:
    missing = MIN_SAMPLES - wave.shape[-1]
    if missing <= 0:
        return wave, 0
    return np.pad(wave, (0, missing)), missing


def prepare_waveform(wave: np.ndarray, sample_rate: int, source: str = "<array>") -> tuple[np.ndarray, int]:
    """Validate a 1-D array at ``sample_rate``, resample it to 32 kHz and pad it to >= 1025 samples.

    Returns the waveform and the number of zeros appended.
    """
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise AudioDecodeError(f"{source}: sample_rate must be a positive integer in Hz; got {sample_rate!r}.")
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioDecodeError(f"{source}: expected a 1-D waveform; got shape {wave.shape}.")
    if not np.issubdtype(wave.dtype, np.floating):
        raise AudioDecodeError(
            f"{source}: expected floating-point samples in [-1, 1]; got dtype {wave.dtype} "
            "(convert integer PCM by dividing by its full scale)."
        )
    _check_finite(wave, source)
    return _pad_short(resample(wave.astype(np.float32, copy=False), int(sample_rate)))


def _frame_range(info, start_s: float | None, end_s: float | None, source: str) -> tuple[int, int]:
    start = 0 if start_s is None else int(round(start_s * info.samplerate))
    stop = info.frames if end_s is None else min(int(round(end_s * info.samplerate)), info.frames)
    if start < 0 or start >= max(stop, 1) or start >= info.frames:
        raise AudioDecodeError(
            f"{source}: segment {start_s}-{end_s} s lies outside the file ({info.frames / info.samplerate:.3f} s)."
        )
    return start, stop


def read_audio(
    path: str | Path,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> AudioClip:
    """Decode ``path`` (optionally the segment [start_s, end_s)) into a model-ready AudioClip."""
    source = str(path)
    if not Path(path).is_file():
        raise AudioDecodeError(f"{source}: no such file.")
    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioDecodeError(f"{source}: cannot decode audio ({exc}).") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioDecodeError(f"{source}: the audio is empty (0 frames).")
    start, stop = _frame_range(info, start_s, end_s, source)
    seconds = (stop - start) / info.samplerate
    if seconds > max_seconds:
        raise AudioDecodeError(
            f"{source}: {seconds:.0f} s of audio exceeds the {max_seconds:.0f} s limit "
            "(raise max_seconds / --max-seconds, or cut the file)."
        )
    try:
        frames, rate = sf.read(source, start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioDecodeError(f"{source}: cannot decode audio ({exc}).") from exc
    wave = to_mono(frames)
    _check_finite(wave, source)
    wave, padded = _pad_short(resample(wave, rate))
    return AudioClip(wave, source, int(rate), int(info.channels), int(frames.shape[0]), padded)


def load_audio(path: str | Path, **kwargs) -> np.ndarray:
    """The 1-D float32 32 kHz mono waveform of ``path`` (see read_audio for options)."""
    return read_audio(path, **kwargs).waveform
