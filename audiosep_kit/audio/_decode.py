"""What every decoder of the front door shares: the mono result, the segment and length limits, the NaN tally.

libsndfile (``_io``) and PyAV (``_av``) both decode into a :class:`Decoded` (the channel mean at the file's own
rate) and refuse with these messages, so a user reads one wording whatever library opened the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audiosep_kit.errors import AudioDecodeError

#: Refuse longer inputs unless asked. The encoder runs any length in bounded windows, but the decoded
#: waveform itself is held whole: 4 bytes per sample at the file's rate and at 32 kHz, so one hour of
#: 48 kHz audio takes ~1.15 GB on top of the ~1.8 GB of a backend call. Raise it for longer recordings.
DEFAULT_MAX_SECONDS = 3600.0
#: Frames decoded per block: 64 Ki frames x 8 channels x 4 B = 2 MiB of transient (frames, channels) data,
#: whatever the file's length, so the peak is the mono buffer plus its 32 kHz resampling.
BLOCK_FRAMES = 65_536


@dataclass(frozen=True)
class Decoded:
    """A decoder's output before resampling: the float32 channel mean at the file's rate."""

    wave: np.ndarray  # (frames,) float32
    sample_rate: int
    channels: int


def outside_error(source: str, start_s: float | None, end_s: float | None, seconds: float | None) -> AudioDecodeError:
    """The refusal of a segment that does not overlap the file (``seconds`` long, when known)."""
    length = "" if seconds is None else f" ({seconds:.3f} s)"
    return AudioDecodeError(f"{source}: segment {start_s}-{end_s} s lies outside the file{length}.")


def frame_range(
    frames: int | None, rate: int, start_s: float | None, end_s: float | None, source: str
) -> tuple[int, int | None]:
    """[start, stop) in frames of the segment [start_s, end_s); ``stop`` is None when the end is open and
    the file's length is unknown (a raw ADTS stream). Refuses a segment that lies outside the file or
    holds no frame (negative, reversed or empty)."""
    start = 0 if start_s is None else int(round(start_s * rate))
    stop = None if end_s is None else int(round(end_s * rate))
    if frames is not None:
        stop = frames if stop is None else min(stop, frames)
    # stop <= start is refused too: a negative end_s used to reach soundfile as a slice from the end.
    if start < 0 or (stop is not None and stop <= start) or (frames is not None and start >= frames):
        raise outside_error(source, start_s, end_s, None if frames is None else frames / rate)
    return start, stop


def _seconds(value: float) -> str:
    """Seconds as a person reads them: whole from 10 s up (10800, not 1.08e+04), else 3 digits (0.4)."""
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.3g}"


def too_long_error(source: str, max_seconds: float, seconds: float | None = None) -> AudioDecodeError:
    """The refusal of an input longer than ``max_seconds`` (``seconds`` long, when known), with the fix."""
    amount = f"more than {_seconds(max_seconds)}" if seconds is None else _seconds(seconds)
    return AudioDecodeError(
        f"{source}: {amount} s of audio exceeds the {_seconds(max_seconds)} s limit "
        "(raise max_seconds / --max-seconds, or cut the file)."
    )


def check_duration(source: str, seconds: float, max_seconds: float) -> None:
    """Refuse ``seconds`` of audio beyond ``max_seconds`` before any of it is decoded or resampled."""
    if seconds > max_seconds:
        raise too_long_error(source, max_seconds, seconds)


@dataclass
class NonFiniteTally:
    """Counts NaN/Inf samples block by block, so a blocked decode reports the same total as a full read,
    plus where the first one sits (the place to look in an editor)."""

    count: int = 0
    first: int | None = field(default=None)

    def add(self, block: np.ndarray, offset: int) -> None:
        """Tally the 1-D ``block`` whose first sample is frame ``offset`` of the source."""
        bad = ~np.isfinite(block)
        if bad.any():
            if self.first is None:
                self.first = offset + int(np.argmax(bad))
            self.count += int(np.count_nonzero(bad))

    def raise_if_any(self, source: str, rate: int) -> None:
        if self.count and self.first is not None:
            raise AudioDecodeError(
                f"{source}: the audio holds {self.count} NaN or infinite sample(s) "
                f"(the first at {self.first / rate:.3f} s, sample {self.first})."
            )
