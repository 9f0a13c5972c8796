"""How fast an extraction would run, measured in a few seconds on its own first inputs.

Why measured, not looked up: the rate depends on the backend, precision, device, batch size and tap,
on the machine and its load at the moment, and (for decoding) on the inputs' format and rate. So
``audiosep-extract --dry-run`` builds the extractor the run would build and times it here on the first
inputs the run would process: each decoded as a decoding worker decodes it (``decode_row``: fingerprint,
decode, resample; one thread, so the rate is one worker's), then the model on at most
``CALIBRATION_AUDIO_S`` of those clips, twice: the second call is the one timed (first-call costs,
allocation or compilation, are not throughput), unless the first took ``CALIBRATION_WALL_S`` or more
(a slow engine, a loaded machine): then that cold time stands, so the estimate errs long and says so,
rather than the dry run waiting twice as long. The run takes about audio / min(model rate, decoding
rate x decoders): decoding runs ahead of the model, so the slower of the two sets the pace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from audiosep_kit.audio import DEFAULT_MAX_SECONDS, AudioClip, AudioSegment
from audiosep_kit.bench._measure import time_calls
from audiosep_kit.errors import AudioDecodeError, ConfigError
from audiosep_kit.features import Decoded, decode_row
from audiosep_kit.model import SAMPLE_RATE
from audiosep_kit.runtime import min_samples

#: Audio the model is timed on (seconds): a rate within a few seconds of wall even for eager fp32 on a
#: CPU, which embeds 2-4 audio s/s (benchmarks/README.md); two clips of a dataset of 1 s clips.
CALIBRATION_AUDIO_S = 2.0
#: Most inputs decoded for it, and how many more may fail to decode before it gives up.
CALIBRATION_FILES = 8
_MAX_FAILED = 16
#: A first model call this long (seconds) is not repeated warm (see the module docstring).
CALIBRATION_WALL_S = 3.0


@dataclass(frozen=True)
class Calibration:
    """One timing of the decoding and of the model on real inputs (seconds of wall and of audio)."""

    files: int
    failed: int
    decoded_audio_s: float
    decode_s: float
    model_audio_s: float
    model_s: float
    first_call_s: float
    warm: bool

    @property
    def decode_rate(self) -> float:
        """Audio seconds one decoding worker decodes and resamples per second."""
        return self.decoded_audio_s / self.decode_s

    @property
    def model_rate(self) -> float:
        """Audio seconds the model embeds per second (at the run's batch size; warm unless ``warm`` is False)."""
        return self.model_audio_s / self.model_s

    def estimate(self, audio_seconds: float, decoders: int) -> dict:
        """Seconds to extract ``audio_seconds`` with ``decoders`` decoding workers, and which bound sets it."""
        if decoders < 1 or audio_seconds < 0:
            raise ConfigError(f"`decoders` must be >= 1 and `audio_seconds` >= 0; got {decoders}, {audio_seconds}.")
        decoding = self.decode_rate * decoders
        rate = min(self.model_rate, decoding)
        return {
            "estimated_seconds": round(audio_seconds / rate, 1),
            "estimated_bound": "model" if self.model_rate <= decoding else "decoding",
            "estimated_audio_seconds_per_second": round(rate, 3),
            "decoding_audio_seconds_per_second": round(decoding, 3),
        }

    def describe(self) -> dict:
        return {
            **{key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()},
            "model_audio_seconds_per_second": round(self.model_rate, 3),
            "decode_audio_seconds_per_second_one_worker": round(self.decode_rate, 3),
        }


def _timed_decode(source: AudioSegment, max_seconds: float, config, hashes: dict) -> tuple[Decoded, float]:
    """``decode_row`` of ``source`` and its seconds of wall."""
    out: list[Decoded] = []
    seconds = time_calls(lambda: out.append(decode_row(source, max_seconds, config, hashes)), warmup=0, repeats=1)
    return out[0], seconds[0]


def _decode_first(sources: Sequence[AudioSegment], max_seconds: float, config, audio_s: float, max_files: int):
    """The first clips that decode (until ``audio_s`` of audio or ``max_files``), the failures, the seconds."""
    clips: list[AudioClip] = []
    failures: list[Exception] = []
    seconds, audio = 0.0, 0.0
    hashes: dict = {}  # what decode_row caches file hashes in
    for source in sources:
        if len(clips) >= max_files or audio >= audio_s or len(failures) >= _MAX_FAILED:
            break
        (outcome, _), took = _timed_decode(source, max_seconds, config, hashes)
        seconds += took
        if isinstance(outcome, Exception):
            failures.append(outcome)
        else:
            clips.append(outcome)
            audio += outcome.duration_s
    return clips, failures, seconds


def _cut(clips: list[AudioClip], samples: int, shortest: int) -> list[np.ndarray]:
    """The clips' 32 kHz waveforms, the last one cut so that they hold about ``samples`` in all."""
    waves = []
    for clip in clips:
        if samples <= 0:
            break
        wave = clip.waveform[: max(samples, shortest)]
        waves.append(wave)
        samples -= wave.shape[0]
    return waves


def calibrate(
    extractor,
    sources: Sequence[AudioSegment],
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    audio_seconds: float = CALIBRATION_AUDIO_S,
    max_files: int = CALIBRATION_FILES,
) -> Calibration:
    """Time decoding and ``extractor`` on the first of ``sources`` (see the module docstring).

    Raises AudioDecodeError when none of the first inputs decodes (there is nothing to time).
    """
    if audio_seconds <= 0 or max_files < 1:
        raise ConfigError(f"`audio_seconds` must be > 0 and `max_files` >= 1; got {audio_seconds}, {max_files}.")
    clips, failures, decode_s = _decode_first(sources, max_seconds, extractor.config, audio_seconds, max_files)
    if not clips:
        first = f" (the first: {failures[0]})" if failures else ""
        raise AudioDecodeError(
            f"the calibration needs one input that decodes; got {len(failures)} that failed{first}. "
            "Fix or drop them, or skip the calibration (--no-calibrate)."
        )
    waves = _cut(clips, int(audio_seconds * SAMPLE_RATE), min_samples(extractor.config))
    run = partial(extractor.embed_waves, waves)
    cold = time_calls(run, warmup=0, repeats=1)[0]
    warm = cold < CALIBRATION_WALL_S
    model_s = time_calls(run, warmup=0, repeats=1)[0] if warm else cold
    return Calibration(
        files=len(clips),
        failed=len(failures),
        decoded_audio_s=sum(c.duration_s for c in clips),
        decode_s=decode_s,
        model_audio_s=sum(w.shape[0] for w in waves) / SAMPLE_RATE,
        model_s=model_s,
        first_call_s=cold,
        warm=warm,
    )
