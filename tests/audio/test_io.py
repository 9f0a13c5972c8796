"""The audio front door: every real sample decodes; bad inputs are refused by name; short ones are padded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from audiosep_kit.audio import _io as audio_io
from audiosep_kit.audio._io import load_audio, prepare_waveform, read_audio, resample, to_mono
from audiosep_kit.errors import AudioDecodeError, AudioSepKitError
from audiosep_kit.model._config import MIN_SAMPLES, SAMPLE_RATE

_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: Every real sample, found at collection time (an empty list when ../shared is absent).
REAL_FILES = sorted(p for p in _DATA.rglob("*") if p.suffix in (".wav", ".flac")) if _DATA.is_dir() else []
STEREO_FILES = [p for p in REAL_FILES if p.suffix == ".wav" and sf.info(str(p)).channels > 1]
_ABSENT = [
    pytest.param(None, marks=pytest.mark.skip(reason=f"real dataset samples not found at {_DATA} (../shared/data)"))
]


def _rel(path: Path | None) -> str:
    return "absent" if path is None else str(path.relative_to(_DATA))


def _tone(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    cols = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.01 * rng.standard_normal(n) for c in range(channels)]
    out = np.stack(cols, axis=1).astype(np.float32)
    return out[:, 0] if channels == 1 else out


# --- real samples -------------------------------------------------------------------------------


def test_real_samples_cover_the_formats(shared_data_dir):
    """The walk of shared/data found the formats the toolkit must read: 4/16/44.1/48 kHz,
    stereo, PCM 16/24/32-bit and FLAC (so the per-file test below really covers them)."""
    assert len(REAL_FILES) > 300
    infos = [sf.info(str(p)) for p in REAL_FILES]
    assert {4000, 16000, 44100, 48000} <= {i.samplerate for i in infos}
    assert {"PCM_16", "PCM_24", "PCM_32"} <= {i.subtype for i in infos}
    assert "FLAC" in {i.format for i in infos}
    assert max(i.channels for i in infos) == 2


@pytest.mark.parametrize("path", REAL_FILES or _ABSENT, ids=_rel)
def test_every_real_sample_decodes(path, shared_data_dir):
    """Decodes to finite 1-D float32 at 32 kHz of length round(frames·32000/sr) (or padded to 1025),
    and the AudioClip records the file's rate, channels and frames."""
    info = sf.info(str(path))
    clip = read_audio(path)
    expected = int(round(info.frames * SAMPLE_RATE / info.samplerate))
    assert clip.waveform.dtype == np.float32 and clip.waveform.ndim == 1
    assert len(clip.waveform) == max(expected, MIN_SAMPLES)
    assert clip.padded_samples == max(MIN_SAMPLES - expected, 0)
    assert np.all(np.isfinite(clip.waveform)) and np.abs(clip.waveform).max() < 2.0
    assert (clip.original_sample_rate, clip.channels, clip.original_frames) == (
        info.samplerate,
        info.channels,
        info.frames,
    )
    assert clip.source == str(path)
    assert clip.duration_s == pytest.approx(info.frames / info.samplerate)


@pytest.mark.parametrize("path", STEREO_FILES or _ABSENT, ids=_rel)
def test_stereo_is_the_channel_mean(path, shared_data_dir):
    """UrbanSound8K stereo: load_audio equals a manual float32 channel mean then soxr HQ, bit for bit."""
    frames, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert frames.shape[1] == 2
    manual = soxr.resample(np.mean(frames, axis=1), rate, SAMPLE_RATE, quality="HQ")
    assert np.array_equal(load_audio(path), manual)


@pytest.mark.parametrize("x", ["a", "b", "c", "e"])
def test_golden_inputs_are_bit_identical(x, golden_dir, golden_inputs, shared_data_dir):
    """Golden input x equals load_audio(its source file)[offset:offset+L] bit for bit (provenance.json)."""
    meta = json.loads((golden_dir / "provenance.json").read_text())["inputs"][x]
    wave = load_audio(shared_data_dir / meta["source"])
    assert len(wave) == meta["resampled_length"]
    offset = meta["offset_samples_32k"]
    assert np.array_equal(wave[offset : offset + meta["length"]], golden_inputs[x])


# --- refusals, each naming the file --------------------------------------------------------------


def test_missing_file(tmp_path):
    """A path that does not exist."""
    path = tmp_path / "missing_clip.wav"
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + ": no such file"):
        read_audio(path)


def test_directory_is_not_a_file(tmp_path):
    """A directory given as an audio file."""
    with pytest.raises(AudioDecodeError, match=re.escape(str(tmp_path)) + ": no such file"):
        read_audio(tmp_path)


def test_corrupt_bytes(tmp_path):
    """Random bytes with a .wav suffix."""
    path = tmp_path / "corrupt_clip.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + ": cannot decode audio") as info:
        read_audio(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AudioSepKitError)


def test_truncated_header(tmp_path):
    """A real WAV cut inside its header."""
    good = tmp_path / "good.wav"
    sf.write(good, _tone(0.5, 16000), 16000)
    path = tmp_path / "truncated_clip.wav"
    path.write_bytes(good.read_bytes()[:20])
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + ": cannot decode audio"):
        read_audio(path)


def test_empty_wav(tmp_path):
    """A valid WAV with 0 frames."""
    path = tmp_path / "empty_clip.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    assert sf.info(str(path)).frames == 0
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": the audio is empty \(0 frames\)"):
        read_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_samples(bad, tmp_path):
    """A float WAV (subtype FLOAT) holding NaN or ±Inf samples."""
    wave = _tone(0.5, 16000)
    wave[[10, 500]] = bad
    path = tmp_path / "nonfinite_clip.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": the audio holds 2 NaN or infinite sample"):
        read_audio(path)


def test_too_long_for_max_seconds(tmp_path):
    """A file longer than max_seconds is refused before decoding, saying how to raise the limit."""
    path = tmp_path / "long_clip.wav"
    sf.write(path, _tone(2.0, 16000), 16000)
    with pytest.raises(
        AudioDecodeError, match=re.escape(str(path)) + r": 2 s of audio exceeds the 1 s limit.*--max-seconds"
    ):
        read_audio(path, max_seconds=1.0)
    assert len(read_audio(path, max_seconds=2.0).waveform) == 64000


def test_segment_outside_the_file(tmp_path):
    """start_s beyond the end of the file."""
    path = tmp_path / "short_clip.wav"
    sf.write(path, _tone(1.0, 16000), 16000)
    with pytest.raises(
        AudioDecodeError, match=re.escape(str(path)) + r": segment 2.0-None s lies outside the file \(1.000 s\)"
    ):
        read_audio(path, start_s=2.0)


@pytest.mark.parametrize(("start_s", "end_s"), [(None, -0.25), (0.5, 0.25), (0.5, 0.5), (-0.1, None)])
def test_negative_reversed_or_empty_segment(start_s, end_s, tmp_path):
    """A segment with no frame in the file is refused: end_s=-0.25 used to be read as a slice from the end
    (the first 0.75 s, silently)."""
    path = tmp_path / "short_clip.wav"
    sf.write(path, _tone(1.0, 16000), 16000)
    with pytest.raises(AudioDecodeError, match=re.escape(f"{path}: segment {start_s}-{end_s} s lies outside the file")):
        read_audio(path, start_s=start_s, end_s=end_s)


@pytest.mark.parametrize("rate", [0, -16000, 16000.0, True, None], ids=["zero", "negative", "float", "bool", "none"])
def test_in_memory_bad_sample_rate(rate):
    """sample_rate must be a positive int (0, negative, float, bool and None are refused)."""
    with pytest.raises(
        AudioDecodeError, match=r"clip-7: sample_rate must be a positive integer in Hz; got " + re.escape(repr(rate))
    ):
        prepare_waveform(np.zeros(2000, dtype=np.float32), rate, source="clip-7")


@pytest.mark.parametrize("shape", [(2, 2000), (2000, 1), (), (1, 1, 2000)])
def test_in_memory_wrong_dims(shape):
    """Only 1-D waveforms are accepted by prepare_waveform."""
    with pytest.raises(AudioDecodeError, match=r"clip-7: expected a 1-D waveform; got shape " + re.escape(str(shape))):
        prepare_waveform(np.zeros(shape, dtype=np.float32), 16000, source="clip-7")


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, bool])
def test_in_memory_integer_dtype(dtype):
    """Integer PCM is refused with the fix (divide by full scale), never silently rescaled."""
    with pytest.raises(AudioDecodeError, match=r"clip-7: expected floating-point samples.*dividing by its full scale"):
        prepare_waveform(np.zeros(2000, dtype=dtype), 16000, source="clip-7")


def test_in_memory_empty_and_non_finite():
    """An empty array and an array with NaN are refused, naming the source."""
    with pytest.raises(AudioDecodeError, match=r"clip-7: the audio is empty"):
        prepare_waveform(np.zeros(0, dtype=np.float32), 16000, source="clip-7")
    wave = np.zeros(2000, dtype=np.float32)
    wave[5] = np.nan
    with pytest.raises(AudioDecodeError, match=r"clip-7: the audio holds 1 NaN"):
        prepare_waveform(wave, 16000, source="clip-7")


# --- what is accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "rate", "resampled"), [(100, 32000, 100), (500, 16000, 1000), (1, 8000, 4)])
def test_short_clips_are_zero_padded_to_1025(n, rate, resampled):
    """Clips shorter than 1025 samples at 32 kHz are zero-padded at the end; the count is returned."""
    wave = _tone(n / rate, rate) if n > 1 else np.full(1, 0.5, dtype=np.float32)
    out, padded = prepare_waveform(wave, rate)
    assert out.shape == (MIN_SAMPLES,) and out.dtype == np.float32
    assert padded == MIN_SAMPLES - resampled
    assert np.all(out[resampled:] == 0)
    assert np.array_equal(out[:resampled], resample(wave, rate))


def test_short_file_records_padding(tmp_path):
    """read_audio of a 500-sample 16 kHz file: 1000 samples at 32 kHz plus 25 zeros, padded_samples == 25."""
    path = tmp_path / "blip.wav"
    sf.write(path, _tone(500 / 16000, 16000), 16000, subtype="FLOAT")
    clip = read_audio(path)
    assert clip.padded_samples == 25 and len(clip.waveform) == MIN_SAMPLES
    assert clip.original_frames == 500


def test_exactly_1025_samples_is_not_padded():
    """The minimal length passes through unchanged."""
    wave = _tone(MIN_SAMPLES / SAMPLE_RATE, SAMPLE_RATE)
    out, padded = prepare_waveform(wave, SAMPLE_RATE)
    assert padded == 0 and np.array_equal(out, wave)


def test_32k_float32_passes_through_unchanged():
    """At 32 kHz no resampling happens: the samples are returned as they are (float64 becomes float32)."""
    wave = _tone(0.3, SAMPLE_RATE)
    assert np.array_equal(prepare_waveform(wave, SAMPLE_RATE)[0], wave)
    assert np.array_equal(prepare_waveform(wave.astype(np.float64), np.int64(SAMPLE_RATE))[0], wave)


def test_six_channels_are_averaged(tmp_path):
    """A 6-channel 48 kHz file decodes to the soxr-resampled channel mean."""
    frames = _tone(0.5, 48000, channels=6)
    path = tmp_path / "surround.wav"
    sf.write(path, frames, 48000, subtype="FLOAT")
    clip = read_audio(path)
    assert clip.channels == 6 and len(clip.waveform) == 16000
    expected = soxr.resample(frames.mean(axis=1, dtype=np.float32), 48000, SAMPLE_RATE, quality="HQ")
    assert np.array_equal(clip.waveform, expected)
    assert np.array_equal(to_mono(frames), frames.mean(axis=1, dtype=np.float32))


@pytest.mark.parametrize(
    ("rate", "fmt", "subtype", "suffix"),
    [
        (8000, "WAV", "PCM_16", ".wav"),
        (96000, "WAV", "PCM_24", ".wav"),
        (22050, "FLAC", "PCM_16", ".flac"),
        (44100, "OGG", "VORBIS", ".ogg"),
        (16000, "AIFF", "PCM_16", ".aiff"),
    ],
)
def test_other_rates_and_formats_decode(rate, fmt, subtype, suffix, tmp_path):
    """8 and 96 kHz WAV, FLAC, OGG/Vorbis and AIFF written with soundfile decode to 32 kHz of the right length."""
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}")
    wave = _tone(1.0, rate)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, wave, rate, format=fmt, subtype=subtype)
    clip = read_audio(path)
    assert clip.original_sample_rate == rate
    assert abs(len(clip.waveform) - SAMPLE_RATE) <= 1
    lossy_tol = 0.05 if subtype == "VORBIS" else 1e-3
    ref = resample(wave, rate)
    n = min(len(ref), len(clip.waveform))
    assert np.sqrt(np.mean((clip.waveform[:n] - ref[:n]) ** 2)) < lossy_tol


def test_segment_is_cut_before_resampling(tmp_path):
    """start_s/end_s select the file's frames [round(start·sr), round(end·sr)) before resampling."""
    wave = _tone(2.0, 16000)
    path = tmp_path / "long.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    clip = read_audio(path, start_s=0.5, end_s=1.25)
    assert clip.original_frames == 12000
    assert np.array_equal(clip.waveform, resample(wave[8000:20000], 16000))


# --- blocked decoding: bounded memory, the same bits --------------------------------------------------


def _full_read_reference(path: Path, start: int | None = None, stop: int | None = None) -> np.ndarray:
    """What read_audio computed before blocked decoding: the whole (frames, channels) read, then to_mono."""
    frames, rate = sf.read(str(path), start=start or 0, stop=stop, dtype="float32", always_2d=True)
    return resample(to_mono(frames), rate)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_blocked_decode_is_bit_identical_to_a_full_read(subtype, tmp_path, monkeypatch):
    """A stereo 44.1 kHz file decoded in 4096-frame blocks (uneven: the file is 10.3 blocks long) equals
    the full read + to_mono + soxr, bit for bit, whole and as a segment that starts and ends mid-block."""
    monkeypatch.setattr(audio_io, "BLOCK_FRAMES", 4096)
    frames = _tone(42_000 / 44_100, 44_100, channels=2, seed=3)
    path = tmp_path / "stereo.wav"
    sf.write(path, frames, 44_100, subtype=subtype)
    clip = read_audio(path)
    assert clip.channels == 2 and clip.original_frames == 42_000
    assert np.array_equal(clip.waveform, _full_read_reference(path))
    part = read_audio(path, start_s=5000 / 44_100, end_s=30_001 / 44_100)
    assert part.original_frames == 25_001
    assert np.array_equal(part.waveform, _full_read_reference(path, 5000, 30_001))


def test_blocked_decode_of_ogg_is_bit_identical(tmp_path, monkeypatch):
    """A compressed stream (Ogg Vorbis, stereo) decodes to the same bits in small blocks as in one read."""
    monkeypatch.setattr(audio_io, "BLOCK_FRAMES", 1000)
    path = tmp_path / "stereo.ogg"
    sf.write(path, _tone(0.7, 48_000, channels=2), 48_000, format="OGG", subtype="VORBIS")
    assert np.array_equal(read_audio(path).waveform, _full_read_reference(path))


def test_non_finite_count_spans_blocks(tmp_path, monkeypatch):
    """NaN/Inf in several blocks are counted in total, and the first one is located, naming the file."""
    monkeypatch.setattr(audio_io, "BLOCK_FRAMES", 1000)
    wave = _tone(0.5, 16000)
    wave[[1500, 2500, 7999]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "nan_in_blocks.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    message = (
        re.escape(str(path)) + r": the audio holds 3 NaN or infinite sample\(s\) \(the first at 0\.094 s, sample 1500\)"
    )
    with pytest.raises(AudioDecodeError, match=message):
        read_audio(path)


def test_nan_in_one_channel_is_found(tmp_path):
    """A NaN in one channel of a stereo file makes its frame's mean NaN: refused."""
    frames = _tone(0.2, 16000, channels=2)
    frames[100, 1] = np.nan
    path = tmp_path / "nan_right.wav"
    sf.write(path, frames, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": the audio holds 1 NaN"):
        read_audio(path)


def test_resampling_overflow_is_refused(tmp_path):
    """Finite float samples near float32's limit can ring past it when resampled: refused with the cause,
    for files and arrays alike (never an Inf handed to the model)."""
    wave = np.full(4000, 3e38, np.float32)
    wave[::2] *= -1
    with pytest.raises(AudioDecodeError, match=r"clip-7: resampling to 32000 Hz overflowed float32.*\[-1, 1\]"):
        prepare_waveform(wave, 16000, source="clip-7")
    path = tmp_path / "loud.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": resampling to 32000 Hz overflowed"):
        read_audio(path)


def test_float64_beyond_float32_is_refused():
    """A finite float64 sample beyond float32's range would reach the model as Inf: refused."""
    wave = np.zeros(2000, np.float64)
    wave[3] = 1e300
    with pytest.raises(AudioDecodeError, match=r"clip-7: the audio holds 1 NaN or infinite sample\(s\) .*sample 3\)"):
        prepare_waveform(wave, 16000, source="clip-7")


def test_in_memory_max_seconds():
    """prepare_waveform bounds its output like read_audio: 100 samples at 1 Hz would be 3.2 M samples."""
    with pytest.raises(AudioDecodeError, match=r"clip-7: 100 s of audio exceeds the 60 s limit"):
        prepare_waveform(np.zeros(100, np.float32), 1, source="clip-7", max_seconds=60)
    assert prepare_waveform(np.zeros(60, np.float32), 1, max_seconds=60)[0].shape == (60 * SAMPLE_RATE,)


def test_in_memory_frames_channels_hint():
    """A (frames, channels) array gets the fix, not just the shape."""
    with pytest.raises(
        AudioDecodeError, match=r"got shape \(32000, 2\); it looks like \(frames, channels\): pass `x\.mean\(axis=1\)`"
    ):
        prepare_waveform(np.zeros((32000, 2), np.float32), SAMPLE_RATE)
