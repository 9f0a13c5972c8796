"""calibrate: a timing of decoding and the model on the first inputs, and the estimate it gives."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.audio import AudioSegment
from audiosep_kit.bench import Calibration, _calibrate, calibrate
from audiosep_kit.errors import AudioDecodeError, ConfigError
from audiosep_kit.model import EncoderConfig
from audiosep_kit.runtime import FeatureExtractor


@pytest.fixture(scope="module")
def extractor(random_weights):
    return FeatureExtractor.from_weights(random_weights, EncoderConfig(layer="block1"), batch_size=4)


def _wav(path, seconds: float, rate: int = 16000):
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return AudioSegment(path)


def test_it_skips_what_does_not_decode_and_stops_at_its_audio_budget(extractor, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00junk" * 10)
    sources = [AudioSegment(corrupt)] + [_wav(tmp_path / f"c{i}.wav", 0.2) for i in range(6)]
    result = calibrate(extractor, sources, audio_seconds=0.3)
    assert (result.files, result.failed) == (2, 1)  # 0.2 + 0.2 s reach the 0.3 s budget; the rest is not read
    assert result.decoded_audio_s == pytest.approx(0.4)
    assert result.model_audio_s == pytest.approx(0.3)  # the second clip cut to what the budget has left
    assert result.model_rate > 0 and result.decode_rate > 0
    assert calibrate(extractor, sources[1:], max_files=3).files == 3  # short clips: at most max_files are read


@pytest.mark.parametrize(("wall_s", "calls", "warm"), [(1e9, 2, True), (0.0, 1, False)])
def test_a_slow_first_call_is_not_repeated_and_says_it_was_cold(extractor, tmp_path, monkeypatch, wall_s, calls, warm):
    seen = []
    embed = extractor.embed_waves
    monkeypatch.setattr(extractor, "embed_waves", lambda waves: seen.append(len(waves)) or embed(waves))
    monkeypatch.setattr(_calibrate, "CALIBRATION_WALL_S", wall_s)
    result = calibrate(extractor, [_wav(tmp_path / "c.wav", 0.1)])
    assert len(seen) == calls and result.warm is warm
    if not warm:
        assert result.model_s == result.first_call_s  # the cold call's time stands


def test_nothing_that_decodes_is_an_error_with_the_fix(extractor, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00junk" * 10)
    with pytest.raises(AudioDecodeError, match=r"got 1 that failed \(the first: .*corrupt\.wav.*--no-calibrate"):
        calibrate(extractor, [AudioSegment(corrupt)])
    with pytest.raises(ConfigError, match="`audio_seconds` must be > 0"):
        calibrate(extractor, [], audio_seconds=0)


def test_the_estimate_divides_by_the_slower_of_model_and_decoders():
    # model 2 audio s/s; one decoder 3 audio s/s
    timing = Calibration(
        1, 0, decoded_audio_s=3.0, decode_s=1.0, model_audio_s=4.0, model_s=2.0, first_call_s=2.0, warm=True
    )
    one = timing.estimate(60.0, decoders=1)
    assert one["estimated_bound"] == "model" and one["estimated_seconds"] == 30.0
    slow_decoding = Calibration(
        1, 0, decoded_audio_s=1.0, decode_s=1.0, model_audio_s=4.0, model_s=1.0, first_call_s=1.0, warm=True
    )
    two = slow_decoding.estimate(60.0, decoders=2)
    assert two["estimated_bound"] == "decoding" and two["estimated_seconds"] == 30.0
    assert two["decoding_audio_seconds_per_second"] == 2.0
    with pytest.raises(ConfigError, match="`decoders` must be >= 1"):
        timing.estimate(1.0, decoders=0)
