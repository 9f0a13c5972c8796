"""Decode-and-resample throughput of one core: how many cores keep one model fed.

What is timed is exactly what a decoding worker of ``audiosep-extract`` does per file
(``features._decoding.decode_row``): the input's fingerprint (size, mtime, SHA-256), the libsndfile
decode to the channel mean, soxr HQ resampling to 32 kHz. One thread, one process: the rate is per
core, and N worker processes give about N times it while cores are free. Sources are generated
noise at the datasets' rates (Speech Commands, NSynth and LibriSpeech 16 kHz, LibriSpeech as FLAC;
ESC-50 44.1 kHz; UrbanSound8K and much field audio 44.1 or 48 kHz, often stereo). The decoded clips
are checked (32 kHz length, finite); no time is asserted.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

#: (id, sample rate, channels, container) of the measured sources.
SOURCES = [
    ("16k-mono-wav", 16_000, 1, "WAV"),
    ("16k-mono-flac", 16_000, 1, "FLAC"),
    ("44k1-mono-wav", 44_100, 1, "WAV"),
    ("48k-mono-wav", 48_000, 1, "WAV"),
    ("48k-stereo-wav", 48_000, 2, "WAV"),
]


def _files(folder, rate: int, channels: int, container: str, count: int, seconds: float) -> list:
    rng = np.random.default_rng(rate + channels)
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
        path = folder / f"s{i}.{container.lower()}"
        sf.write(path, (0.1 * rng.standard_normal(shape)).astype(np.float32), rate, format=container, subtype="PCM_16")
        paths.append(path)
    return paths


@pytest.mark.parametrize(("name", "rate", "channels", "container"), SOURCES, ids=[s[0] for s in SOURCES])
def test_decode_throughput_per_core(benchmark, bench_mode, tmp_path, name, rate, channels, container):
    from audiosep_kit.audio import AudioClip, AudioSegment
    from audiosep_kit.features._decoding import decode_row
    from audiosep_kit.model import SAMPLE_RATE, EncoderConfig

    count, seconds = (40, 5.0) if not bench_mode.quick else (3, 0.5)
    paths = _files(tmp_path / name, rate, channels, container, count, seconds)
    segments, config = [AudioSegment(p) for p in paths], EncoderConfig()
    timed: list[float] = []

    def run() -> list:
        start = time.perf_counter()
        out = [decode_row(s, 3600.0, config, {}) for s in segments]
        timed.append(time.perf_counter() - start)
        return out

    benchmark.group = "decode + resample to 32 kHz, one core"
    decoded = benchmark.pedantic(run, rounds=bench_mode.rounds, warmup_rounds=bench_mode.warmup_rounds, iterations=1)
    clips = [outcome for outcome, _ in decoded]
    assert all(isinstance(c, AudioClip) for c in clips), clips
    assert all(abs(c.waveform.shape[0] - seconds * SAMPLE_RATE) <= 1 for c in clips)
    assert all(np.isfinite(c.waveform).all() for c in clips)
    median = float(np.median(timed[bench_mode.warmup_rounds :] or timed))
    benchmark.extra_info.update(
        mode=bench_mode.name,
        source_rate=rate,
        channels=channels,
        container=container,
        files=count,
        file_seconds=seconds,
        audio_seconds_per_second=count * seconds / median,
        files_per_second=count / median,
    )
