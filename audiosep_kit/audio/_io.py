"""The audio front door: any file or array in, the 32 kHz mono float32 waveform the model expects out.

Decoding is soundfile's (libsndfile: WAV of any PCM/float subtype, FLAC, OGG, AIFF ...), or PyAV's for
.m4a/.aac (optional, see ``_av``); the downmix is the channel mean, the resampler is soxr 'HQ' (what
librosa 0.10, and so the official AudioSep pipeline, used). Every refusal names the file: a feature
extractor that drops inputs silently loses data.

Memory: a file is decoded in blocks of BLOCK_FRAMES frames straight into one mono buffer at its own rate,
so the peak is that buffer plus its 32 kHz resampling, whatever the channel count (a full (frames,
channels) read of a 10-minute 48 kHz stereo file would first hold twice the mono size on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiosep_kit.audio._av import AV_EXTENSIONS, decode_av
from audiosep_kit.audio._decode import (
    BLOCK_FRAMES,
    DEFAULT_MAX_SECONDS,
    Decoded,
    NonFiniteTally,
    check_duration,
    frame_range,
)
from audiosep_kit.errors import AudioDecodeError
from audiosep_kit.model import MIN_SAMPLES, SAMPLE_RATE

RESAMPLER = "soxr-HQ"
#: Endings libsndfile decodes (and the compressed kinds it may, depending on its build).
SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".mp3", ".opus", ".w64", ".caf")
#: File endings a folder walk picks up: libsndfile's, and those PyAV decodes when it is installed.
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS + AV_EXTENSIONS


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


def _check_finite(wave: np.ndarray, source: str, sample_rate: int) -> None:
    if wave.size == 0:
        raise AudioDecodeError(f"{source}: the audio is empty (0 samples).")
    tally = NonFiniteTally()
    tally.add(wave, 0)
    tally.raise_if_any(source, sample_rate)


def _pad_short(wave: np.ndarray) -> tuple[np.ndarray, int]:
    missing = MIN_SAMPLES - wave.shape[-1]
    if missing <= 0:
        return wave, 0
    return np.pad(wave, (0, missing)), missing


def _to_model_rate(wave: np.ndarray, sample_rate: int, source: str) -> tuple[np.ndarray, int]:
    """Resample finite float32 ``wave`` to 32 kHz and pad it; refuse what soxr cannot take or what
    overflows float32 on the way (samples far outside [-1, 1] can ring past 3.4e38)."""
    try:
        out = resample(wave, sample_rate)
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise AudioDecodeError(f"{source}: cannot resample {sample_rate} Hz to {SAMPLE_RATE} Hz ({exc}).") from exc
    if not np.all(np.isfinite(out)):
        peak = float(np.max(np.abs(wave)))
        raise AudioDecodeError(
            f"{source}: resampling to {SAMPLE_RATE} Hz overflowed float32 (the input reaches {peak:.3g}); "
            "samples are expected in [-1, 1]."
        )
    return _pad_short(out)


def check_sample_rate(sample_rate: object, source: str) -> None:
    """Refuse a rate that is not a positive integer (a float rate is almost always a swapped argument)."""
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise AudioDecodeError(f"{source}: sample_rate must be a positive integer in Hz; got {sample_rate!r}.")


def looks_channels_last(shape: tuple[int, ...]) -> bool:
    """Whether a 2-D shape is soundfile.read's (frames, channels) rather than (batch, samples).

    "Looks like" means <= 8 columns and at least 16 rows per column: a batch of such rows would be
    clips of a few samples each, never what anyone means, and running one takes minutes per second.
    """
    return len(shape) == 2 and 1 <= shape[1] <= 8 and shape[0] >= 16 * shape[1]


def prepare_waveform(
    wave: np.ndarray, sample_rate: int, source: str = "<array>", *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> tuple[np.ndarray, int]:
    """Validate a 1-D array at ``sample_rate``, resample it to 32 kHz and pad it to >= 1025 samples.

    Returns the waveform and the number of zeros appended. Float input of any width is converted to float32
    first and checked there (a float64 beyond float32's range is Inf to the model). ``max_seconds`` bounds
    the 32 kHz output, as for files: 1 Hz input is 32000x larger after resampling.
    """
    check_sample_rate(sample_rate, source)
    wave = np.asarray(wave)
    if wave.ndim != 1:
        hint = ""
        if looks_channels_last(wave.shape):
            hint = "; it looks like (frames, channels): pass `x.mean(axis=1)`, the mono mix"
        raise AudioDecodeError(f"{source}: expected a 1-D waveform; got shape {wave.shape}{hint}.")
    if not np.issubdtype(wave.dtype, np.floating):
        raise AudioDecodeError(
            f"{source}: expected floating-point samples in [-1, 1]; got dtype {wave.dtype} "
            "(convert integer PCM by dividing by its full scale)."
        )
    check_duration(source, wave.shape[0] / int(sample_rate), max_seconds)
    with np.errstate(over="ignore"):  # beyond float32's range becomes Inf, refused just below
        wave = wave.astype(np.float32, copy=False)
    _check_finite(wave, source, int(sample_rate))
    return _to_model_rate(wave, int(sample_rate), source)


def _read_mono(sound: sf.SoundFile, start: int, stop: int, source: str) -> np.ndarray:
    """Frames [start, stop) of an open file as the float32 channel mean, decoded BLOCK_FRAMES at a time
    into one preallocated buffer. Bit-identical to ``to_mono(sf.read(start=, stop=, always_2d=True))``:
    each frame's mean depends on that frame alone. A file shorter than its header says gives fewer frames."""
    if sound.seekable():
        sound.seek(start)
    out = np.empty(stop - start, np.float32)
    tally, pos = NonFiniteTally(), 0
    while pos < out.shape[0]:
        block = sound.read(min(BLOCK_FRAMES, out.shape[0] - pos), dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        mono = out[pos : pos + block.shape[0]]
        np.mean(block, axis=1, dtype=np.float32, out=mono)
        tally.add(mono, start + pos)
        pos += block.shape[0]
    tally.raise_if_any(source, sound.samplerate)
    return out[:pos]


def _decode_sndfile(source: str, start_s: float | None, end_s: float | None, max_seconds: float) -> Decoded:
    """The channel mean of ``source`` (the segment [start_s, end_s)) at its own rate, through libsndfile."""
    try:
        with sf.SoundFile(source) as sound:
            if sound.frames <= 0 or sound.samplerate <= 0:
                raise AudioDecodeError(f"{source}: the audio is empty (0 frames).")
            start, end = frame_range(sound.frames, sound.samplerate, start_s, end_s, source)
            stop = sound.frames if end is None else end  # never None: the length is known
            check_duration(source, (stop - start) / sound.samplerate, max_seconds)
            wave = _read_mono(sound, start, stop, source)
            return Decoded(wave, int(sound.samplerate), int(sound.channels))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioDecodeError(f"{source}: cannot decode audio ({exc}).") from exc


def read_audio(
    path: str | Path,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> AudioClip:
    """Decode ``path`` (optionally the segment [start_s, end_s)) into a model-ready AudioClip.

    .m4a/.aac go through PyAV (refused with the install hint when it is missing), everything else through
    libsndfile; both give the channel mean at the file's rate, resampled here the same way.
    """
    source = str(path)
    if not Path(path).is_file():
        raise AudioDecodeError(f"{source}: no such file.")
    decode = decode_av if Path(path).suffix.lower() in AV_EXTENSIONS else _decode_sndfile
    decoded = decode(source, start_s, end_s, max_seconds)
    if decoded.wave.size == 0:
        raise AudioDecodeError(f"{source}: the audio is empty (0 samples).")
    wave, padded = _to_model_rate(decoded.wave, decoded.sample_rate, source)
    return AudioClip(wave, source, decoded.sample_rate, decoded.channels, int(decoded.wave.shape[0]), padded)


def load_audio(path: str | Path, **kwargs) -> np.ndarray:
    """The 1-D float32 32 kHz mono waveform of ``path`` (see read_audio for options)."""
    return read_audio(path, **kwargs).waveform
