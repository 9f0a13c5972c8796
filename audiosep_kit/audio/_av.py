"""AAC in MP4 (.m4a) and raw ADTS (.aac), which libsndfile cannot read, decoded with PyAV (FFmpeg).

PyAV is optional (``pip install 'audiosep-kit[av]'``): it is imported only when such a file is met, and
without it the file is refused, or listed by a folder scan, with that install hint, never skipped.

Encoder priming and padding. An AAC encoder emits ~1024 (FFmpeg) to 2112 (Apple) samples of priming
before the signal and pads the end to a whole 1024-sample frame. In an MP4 the edit list says how many:
FFmpeg's demuxer drops the priming itself, and this decoder cuts the tail at the track's declared duration,
so an .m4a decodes to exactly the samples that were encoded, aligned. A raw ADTS stream records neither, so
its priming and padding are kept (the clip starts ~21-48 ms late and ends up to one frame long); so are they
in an MP4 without an edit list (older iTunes files keep gapless data only in an iTunSMPB tag, which FFmpeg
does not apply). We do not guess an encoder's delay.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from types import ModuleType
from typing import Any

import numpy as np

from audiosep_kit.audio._decode import (
    Decoded,
    NonFiniteTally,
    check_duration,
    frame_range,
    outside_error,
    too_long_error,
)
from audiosep_kit.errors import AudioDecodeError

#: Endings decoded through PyAV rather than libsndfile.
AV_EXTENSIONS = (".m4a", ".aac")
AV_INSTALL_HINT = "needs PyAV (pip install 'audiosep-kit[av]', or pip install av)"


def import_av() -> ModuleType | None:
    """PyAV, or None when it cannot be imported (asked at each use, so an install is seen without a restart)."""
    try:
        import av
    except ImportError:
        return None
    return av


def unsupported_reason(suffix: str) -> str:
    """Why a file with this ending cannot be decoded here: the words a scan and a refusal share."""
    return f"unsupported format {suffix}: {AV_INSTALL_HINT}"


def decode_av(source: str, start_s: float | None, end_s: float | None, max_seconds: float) -> Decoded:
    """The channel mean of ``source`` (first audio stream) at its own rate, the segment [start_s, end_s)."""
    av = import_av()
    if av is None:
        suffix = source[source.rfind(".") :].lower()
        raise AudioDecodeError(f"{source}: {unsupported_reason(suffix)}.")
    try:
        with av.open(source) as container:
            return _decode_stream(av, container, source, (start_s, end_s), max_seconds)
    except (av.FFmpegError, OSError) as exc:
        raise AudioDecodeError(f"{source}: cannot decode audio ({exc}).") from exc


def _declared_frames(container: Any, stream: Any, rate: int) -> int | None:
    """The track's length in samples when the container states it exactly (MP4's edit list / track
    duration); None for raw ADTS, whose duration is only a bitrate estimate."""
    if not container.format.name.startswith("mov") or not stream.duration or stream.time_base is None:
        return None
    return int(round(Fraction(stream.duration) * stream.time_base * rate))


def _decode_stream(
    av: ModuleType, container: Any, source: str, segment: tuple[float | None, float | None], max_seconds: float
) -> Decoded:
    if not container.streams.audio:
        raise AudioDecodeError(f"{source}: holds no audio stream.")
    stream = container.streams.audio[0]
    rate, channels = int(stream.codec_context.sample_rate), int(stream.codec_context.channels)
    if rate <= 0:
        raise AudioDecodeError(f"{source}: the audio is empty (0 frames).")
    start, stop = frame_range(_declared_frames(container, stream, rate), rate, *segment, source)
    if stop is not None:
        check_duration(source, (stop - start) / rate, max_seconds)
    limit = int(max_seconds * rate) if stop is None else stop - start
    wave, reached = _collect(_mono_blocks(av, container, stream), (start, stop), limit, source, rate)
    if reached == 0:
        raise AudioDecodeError(f"{source}: the audio is empty (0 frames).")
    if reached <= start:
        raise outside_error(source, *segment, reached / rate)
    if wave.shape[0] > limit:
        raise too_long_error(source, max_seconds)
    return Decoded(wave, rate, channels)


def _mono_blocks(av: ModuleType, container: Any, stream: Any) -> Iterator[np.ndarray]:
    """Decoded frames as float32 channel means. Every sample format (AAC's fltp, ALAC's s16p/s32p ...)
    is converted to planar float by FFmpeg's resampler, a pass-through for fltp."""
    to_float = av.AudioResampler(format="fltp")
    for frame in container.decode(stream):
        for converted in to_float.resample(frame):
            yield converted.to_ndarray().mean(axis=0, dtype=np.float32)
    for converted in to_float.resample(None):
        yield converted.to_ndarray().mean(axis=0, dtype=np.float32)


def _collect(
    blocks: Iterator[np.ndarray], span: tuple[int, int | None], limit: int, source: str, rate: int
) -> tuple[np.ndarray, int]:
    """The samples of the decoded stream in [start, stop), checked for NaN/Inf, and how far decoding got.

    With a known stop the buffer is allocated once, exactly; an open-ended stream (raw ADTS) grows it by
    doubling up to one sample past ``limit``, where decoding stops: memory never outgrows max_seconds.
    """
    start, stop = span
    out = np.empty(stop - start if stop is not None else min(limit + 1, 60 * rate), np.float32)
    tally, pos, size = NonFiniteTally(), 0, 0
    for block in blocks:
        lo, hi = max(start - pos, 0), len(block) if stop is None else min(stop - pos, len(block))
        pos += len(block)
        if hi <= lo:
            continue
        piece = block[lo : min(hi, lo + limit + 1 - size)]
        tally.add(piece, pos - len(block) + lo)
        if size + len(piece) > len(out):
            out = _grown(out, size, size + len(piece), limit + 1)
        out[size : size + len(piece)] = piece
        size += len(piece)
        if (stop is not None and pos >= stop) or size > limit:
            break
    tally.raise_if_any(source, rate)
    return out[:size], pos


def _grown(out: np.ndarray, used: int, needed: int, cap: int) -> np.ndarray:
    """A buffer of at least ``needed`` (at most ``cap``) samples holding ``out[:used]``."""
    bigger = np.empty(min(max(needed, 2 * len(out)), cap), np.float32)
    bigger[:used] = out[:used]
    return bigger
