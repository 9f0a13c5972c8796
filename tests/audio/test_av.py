"""AAC (.m4a, .aac) and ALAC through PyAV: decoded by the one front door, aligned, or refused with the hint."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from audiosep_kit.audio import read_audio, resample
from audiosep_kit.errors import AudioDecodeError
from audiosep_kit.model._config import SAMPLE_RATE

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'audiosep-kit[av]')")

RATE = 44_100


def _sweep(seconds: float, rate: int = RATE) -> np.ndarray:
    """(2, n) float32: a 300 -> 3000 Hz sweep on the left, its octave-down twin on the right (lossy codecs
    keep both, and a misalignment of even a few samples shows in the correlation)."""
    t = np.arange(int(round(seconds * rate))) / rate
    phase = 2 * np.pi * (300 * t + 1350 * t**2 / seconds)
    return (0.3 * np.stack([np.sin(phase), np.sin(phase / 2)])).astype(np.float32)


def _encode(path: Path, planar: np.ndarray, rate: int = RATE, *, container: str, codec: str = "aac") -> None:
    """Write ``planar`` (channels, n) with PyAV's encoder, fed in uneven 1000-sample frames."""
    layout = "stereo" if planar.shape[0] == 2 else "mono"
    sample_format = "fltp" if codec == "aac" else "s16p"
    data = planar if codec == "aac" else np.round(planar * 32767).astype(np.int16)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.format = sample_format
        for i in range(0, data.shape[1], 1000):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, i : i + 1000]), sample_format, layout)
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@pytest.fixture(scope="module")
def m4a(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """1.5 s of stereo sweep as AAC in MP4, and the planar original."""
    path = tmp_path_factory.mktemp("av") / "sweep.m4a"
    planar = _sweep(1.5)
    _encode(path, planar, container="mp4")
    return path, planar


def test_m4a_decodes_aligned_to_the_original(m4a):
    """The .m4a gives exactly the encoded frames (priming dropped by the edit list, padding cut at the
    track's duration), 44.1 kHz stereo recorded, 32 kHz float32 out, and the waveform correlates with the
    resampled channel mean of the original at lag 0 (> 0.99: lossy, but aligned)."""
    path, planar = m4a
    clip = read_audio(path)
    assert (clip.original_sample_rate, clip.channels, clip.original_frames) == (RATE, 2, planar.shape[1])
    assert clip.waveform.dtype == np.float32 and clip.waveform.ndim == 1
    assert abs(len(clip.waveform) - 1.5 * SAMPLE_RATE) <= 1 and clip.padded_samples == 0
    reference = resample(planar.mean(axis=0, dtype=np.float32), RATE)
    assert _correlation(clip.waveform, reference) > 0.99
    assert _correlation(clip.waveform[2:], reference) < 0.9  # 2 samples off is visibly worse: lag 0 is the match


def test_m4a_segment_and_max_seconds(m4a):
    """start_s/end_s select original frames [round(start·sr), round(end·sr)); max_seconds refuses by name."""
    path, planar = m4a
    part = read_audio(path, start_s=0.25, end_s=1.0)
    assert part.original_frames == round(0.75 * RATE)
    start = round(0.25 * RATE)
    reference = resample(planar[:, start : start + part.original_frames].mean(axis=0, dtype=np.float32), RATE)
    assert _correlation(part.waveform, reference) > 0.99
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": 1.5 s of audio exceeds the 1 s limit"):
        read_audio(path, max_seconds=1.0)
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": segment 2.0-None s lies outside the file"):
        read_audio(path, start_s=2.0)


def test_adts_aac_keeps_the_encoder_priming(tmp_path):
    """Raw ADTS records no encoder delay: the decode keeps FFmpeg's 1024 priming samples and the padding to a
    whole frame (documented in audio._av), so it is longer than the input and correlates once shifted."""
    path = tmp_path / "sweep.aac"
    planar = _sweep(1.0)
    _encode(path, planar, container="adts")
    clip = read_audio(path)
    assert clip.channels == 2 and clip.original_sample_rate == RATE
    assert planar.shape[1] + 1024 <= clip.original_frames < planar.shape[1] + 1024 + 1024 + 1
    mono = planar.mean(axis=0, dtype=np.float32)
    priming = round(1024 * SAMPLE_RATE / RATE)
    assert _correlation(clip.waveform[priming:], resample(mono, RATE)) > 0.99


def test_adts_max_seconds_while_decoding(tmp_path):
    """With no declared length, max_seconds stops the decode itself once passed."""
    path = tmp_path / "sweep.aac"
    _encode(path, _sweep(1.0), container="adts")
    with pytest.raises(
        AudioDecodeError, match=re.escape(str(path)) + r": more than 0.4 s of audio exceeds the 0.4 s limit"
    ):
        read_audio(path, max_seconds=0.4)
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": segment 3.0-None s lies outside the file"):
        read_audio(path, start_s=3.0)


def test_alac_in_m4a_is_lossless(tmp_path):
    """An .m4a may hold ALAC (16-bit planar integers): converted to float and decoded bit-exactly."""
    path = tmp_path / "lossless.m4a"
    planar = _sweep(0.5, 48_000)
    _encode(path, planar, 48_000, container="mp4", codec="alac")
    clip = read_audio(path)
    assert (clip.original_sample_rate, clip.channels, clip.original_frames) == (48_000, 2, planar.shape[1])
    pcm = np.round(planar * 32767).astype(np.int16).astype(np.float32) / 32768
    assert np.array_equal(clip.waveform, resample(pcm.mean(axis=0, dtype=np.float32), 48_000))


def test_corrupt_m4a_is_refused_by_name(tmp_path):
    path = tmp_path / "junk.m4a"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError, match=re.escape(str(path)) + r": cannot decode audio"):
        read_audio(path)


def test_without_pyav_the_file_is_refused_with_the_hint(m4a, monkeypatch):
    """No PyAV (its import fails): read_audio names the file, the format and how to install the decoder."""
    monkeypatch.setitem(sys.modules, "av", None)
    path, _ = m4a
    message = re.escape(f"{path}: unsupported format .m4a: needs PyAV (pip install 'audiosep-kit[av]'")
    with pytest.raises(AudioDecodeError, match=message):
        read_audio(path)
