"""Properties of the audio front door, over random lengths, rates, channel counts, dtypes and NaN/Inf positions.

Whatever goes in, prepare_waveform, prepare_batch and read_audio either return 1-D finite float32 at 32 kHz of
length ~duration x 32000 (padded to >= 1025), or raise AudioDecodeError naming the source; never anything else.
Inputs that today's rules accept must be accepted, those they refuse must be refused for that reason.
Examples are few and small (max_seconds 20) so the default suite stays quick; no example database is written.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from audiosep_kit.audio import prepare_batch, prepare_waveform, read_audio
from audiosep_kit.audio._io import looks_channels_last
from audiosep_kit.errors import AudioDecodeError
from audiosep_kit.model._config import MIN_SAMPLES, SAMPLE_RATE

MAX_SECONDS = 20.0
FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
RATES = st.one_of(
    st.sampled_from([1, 2, 7, 4000, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000, 384000]),
    st.integers(1, 384_000),
)
LENGTHS = st.one_of(st.sampled_from([0, 1, 2, 1024, 1025, 1026]), st.integers(0, 1100), st.integers(0, 200_000))
#: Amplitudes: silence, tiny, normal, loud, beyond float16 (Inf once cast), near float32's limit, beyond it.
SCALES = st.sampled_from([0.0, 1e-6, 0.5, 1.0, 1e3, 7e4, 3e38, 1e300])
#: NaN/Inf (index, value) pairs to plant; none in about two cases out of three, so most inputs are clean.
NON_FINITE = st.one_of(
    st.just([]),
    st.just([]),
    st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from([np.nan, np.inf, -np.inf])), min_size=1, max_size=3),
)


@dataclass(frozen=True)
class Case:
    """One generated in-memory input: samples of some dtype at some rate (integers are refused by the rules)."""

    wave: np.ndarray
    rate: int
    integer: bool

    @property
    def seconds(self) -> float:
        return self.wave.shape[0] / self.rate


@st.composite
def cases(draw) -> Case:
    n, rate, scale = draw(LENGTHS), draw(RATES), draw(SCALES)
    # float32/float64 twice: most inputs should be the kinds that are accepted
    dtype = np.dtype(draw(st.sampled_from(["float16", "float32", "float32", "float64", "float64", "int16", "int32"])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        return Case(rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True), rate, True)
    with np.errstate(over="ignore"):
        wave = (rng.uniform(-1, 1, n) * scale).astype(dtype)
    for index, value in draw(NON_FINITE) if n else []:
        wave[index % n] = value
    return Case(wave, rate, False)


def _check_model_ready(wave: np.ndarray, padded: int, frames: int, rate: int) -> None:
    """1-D finite float32 of ~frames x 32000 / rate samples (+/- 1, soxr rounds), zero-padded to >= 1025."""
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert np.all(np.isfinite(wave))
    resampled = wave.shape[0] - padded
    assert abs(resampled - frames * SAMPLE_RATE / rate) <= 1
    assert wave.shape[0] == max(resampled, MIN_SAMPLES) and np.all(wave[resampled:] == 0)


def _check_row(wave: np.ndarray, frames: int, rate: int) -> None:
    """A prepared row (its padding not reported): some soxr length within 1 of the ideal, padded to >= 1025."""
    assert wave.dtype == np.float32 and wave.ndim == 1 and np.all(np.isfinite(wave))
    ideal = frames * SAMPLE_RATE / rate
    lengths = {max(r, MIN_SAMPLES) for r in range(int(ideal) - 1, int(ideal) + 3) if abs(r - ideal) <= 1}
    assert wave.shape[0] in lengths


def _refusal(call, source: str) -> str | None:
    """The refusal message of ``call()`` (which must name ``source`` first), or None when it succeeded."""
    try:
        call()
    except AudioDecodeError as exc:
        message = str(exc)
        assert message.startswith(f"{source}: ") or source == "<batch>", message
        return message
    return None


def _expected_refusal(case: Case) -> str | None:
    """What today's rules refuse ``case`` for (a message fragment), or None when it must be accepted.
    "overflow?" marks values near float32's limit, which soxr's ringing may or may not push past it."""
    with np.errstate(over="ignore"):
        as_float32 = case.wave.astype(np.float32)
    if case.integer:
        return "expected floating-point samples"
    if case.seconds > MAX_SECONDS:
        return "exceeds the 20 s limit"
    if case.wave.shape[0] == 0:
        return "the audio is empty"
    if not np.all(np.isfinite(as_float32)):
        return "NaN or infinite"
    if np.max(np.abs(as_float32)) > 1e30:
        return "overflow?"
    return None


@settings(FAST, max_examples=150)
@given(case=cases())
def test_prepare_waveform_returns_model_ready_audio_or_refuses_by_name(case):
    """Accepted iff float, non-empty, within max_seconds and finite as float32 (values near float32's limit
    may overflow the resampler, refused as such); integers are refused with the fix; refusals name the source."""
    outcome: dict = {}

    def call():
        outcome["out"] = prepare_waveform(case.wave, case.rate, source="clip-x", max_seconds=MAX_SECONDS)

    message, expected = _refusal(call, "clip-x"), _expected_refusal(case)
    event(expected or "accepted")
    if expected == "overflow?":
        assert message is None or "overflowed float32" in message
    elif expected is not None:
        assert message is not None and expected in message, message
    else:
        assert message is None, message
    if message is None:
        wave, padded = outcome["out"]
        _check_model_ready(wave, padded, case.wave.shape[0], case.rate)


@FAST
@given(
    rows=st.integers(0, 40),
    cols=st.integers(0, 40),
    ratio=st.one_of(st.none(), st.integers(1, 40)),
    rate=st.sampled_from([8000, 44100]),
)
def test_prepare_batch_tells_channels_from_batches(rows, cols, ratio, rate):
    """A 2-D array is refused as (frames, channels) exactly when it has <= 8 columns and >= 16 rows per
    column; otherwise it is B rows (each model-ready, or the row refused by index). ``ratio`` draws shapes
    (ratio x cols, cols) around that boundary."""
    shape = (rows, cols) if ratio is None else (ratio * cols, cols)
    array = np.full(shape, 0.25, np.float32)
    outcome: dict = {}

    def call():
        outcome["rows"] = prepare_batch(array, rate, max_seconds=MAX_SECONDS)

    message = _refusal(call, "<batch>")
    if 1 <= shape[1] <= 8 and shape[0] >= 16 * shape[1]:
        assert looks_channels_last(shape) and message is not None and "looks like (frames, channels)" in message
    elif message is not None:
        assert re.match(r"<row 0>: (the audio is empty|.*exceeds the 20 s limit)", message), message
    else:
        waves, single = outcome["rows"]
        assert not single and len(waves) == shape[0]
        for wave in waves:
            _check_row(wave, shape[1], rate)


FILE_FORMATS = st.sampled_from(
    [("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"), ("WAV", "FLOAT"), ("WAV", "DOUBLE"), ("FLAC", "PCM_16")]
)
_NAMES = itertools.count()


@dataclass(frozen=True)
class FileSpec:
    """One generated file: format, length, layout, NaN/Inf positions, and a segment as fractions of its length."""

    fmt: str
    subtype: str
    frames: int
    channels: int
    rate: int
    bad: list
    segment: tuple[float, float] | None
    seed: int

    def span(self) -> tuple[int, int, float | None, float | None]:
        """Frames [start, stop) the segment asks for (the rule read_audio documents), and its seconds."""
        if self.segment is None:
            return 0, self.frames, None, None
        start_s, end_s = (f * self.frames / self.rate for f in self.segment)
        return int(round(start_s * self.rate)), min(int(round(end_s * self.rate)), self.frames), start_s, end_s


@st.composite
def files(draw) -> FileSpec:
    fmt, subtype = draw(FILE_FORMATS)
    return FileSpec(
        fmt=fmt,
        subtype=subtype,
        frames=draw(st.one_of(st.sampled_from([0, 1, 1025]), st.integers(0, 3000), st.integers(0, 60_000))),
        channels=draw(st.integers(1, 8)),
        rate=draw(RATES),
        bad=draw(NON_FINITE) if subtype in ("FLOAT", "DOUBLE") else [],
        segment=draw(st.one_of(st.none(), st.tuples(st.floats(-0.1, 1.2), st.floats(-0.1, 1.2)))),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _write(spec: FileSpec, folder: Path) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(spec.seed).uniform(-0.9, 0.9, (spec.frames, spec.channels))
    for index, value in spec.bad if spec.frames else []:
        data[index % spec.frames, index % spec.channels] = value
    path = folder / f"clip{next(_NAMES)}.{spec.fmt.lower()}"
    try:
        sf.write(path, data, spec.rate, format=spec.fmt, subtype=spec.subtype)
    except sf.LibsndfileError:  # the writer's limits (libFLAC refuses some rates, e.g. 65536 Hz): not our input
        path.unlink(missing_ok=True)
        reject()
    return path, data


def _expected_file_refusal(spec: FileSpec, data: np.ndarray) -> str | None:
    """What read_audio must refuse the file for, in the order it checks, or None when it must decode."""
    start, stop, _, _ = spec.span()
    if spec.frames == 0:  # libsndfile cannot reopen the 0-frame FLAC it wrote: refused as undecodable
        return "cannot decode audio" if spec.fmt == "FLAC" else "the audio is empty"
    if start < 0 or stop <= start or start >= spec.frames:
        return "lies outside the file"
    if (stop - start) / spec.rate > MAX_SECONDS:
        return "exceeds the 20 s limit"
    if not np.all(np.isfinite(data[start:stop])):
        return "NaN or infinite"
    return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@settings(FAST, max_examples=80)
@given(spec=files())
def test_read_audio_returns_model_ready_audio_or_refuses_by_name(spec, folder):
    """Any written WAV/FLAC (1-8 channels, 1 Hz-384 kHz, any length, NaN/Inf anywhere, any segment) decodes to
    its segment's frames at 32 kHz, or is refused naming the file for the reason the rules give."""
    path, data = _write(spec, folder)
    start, stop, start_s, end_s = spec.span()
    outcome: dict = {}

    def call():
        outcome["clip"] = read_audio(path, start_s=start_s, end_s=end_s, max_seconds=MAX_SECONDS)

    try:
        message = _refusal(call, str(path))
    finally:
        path.unlink()
    expected = _expected_file_refusal(spec, data)
    event(expected or "accepted")
    if expected is not None:
        assert message is not None and expected in message, message
        return
    assert message is None, message
    clip = outcome["clip"]
    assert (clip.original_sample_rate, clip.channels) == (spec.rate, spec.channels)
    assert clip.original_frames == stop - start
    _check_model_ready(clip.waveform, clip.padded_samples, stop - start, spec.rate)
