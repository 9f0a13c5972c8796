"""The HEAR 2021 API: every check hear-validator makes, plus timestamp geometry, batching and the refusals.

hear-validator itself needs TensorFlow (not installed here), so its checks are restated: the module's three
functions; a torch Module with an int ``sample_rate`` among HEAR's rates and int embedding sizes; scene
embeddings (n, scene_embedding_size) float32; timestamp embeddings (n, T, timestamp_embedding_size) with
(n, T) timestamps in ms, regularly spaced (within 1 ms), starting within one hop and ending within the
clip, no earlier than two hops before its end. Random weights throughout (the geometry does not depend on
them), short clips so the file runs in about a minute on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import soxr
import torch
from torch import nn

from audiosep_kit import hear
from audiosep_kit.errors import AudioDecodeError, CheckpointError, ConfigError
from audiosep_kit.hear import AudioSepHear, get_scene_embeddings, get_timestamp_embeddings, load_model
from audiosep_kit.model import CHECKPOINT_ENV, SAMPLE_RATE, EncoderConfig
from audiosep_kit.runtime import FeatureExtractor

#: Float32 rounding between batch sizes (oneDNN may pick another kernel for sub-second clips).
BATCH_RTOL, BATCH_ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def model() -> AudioSepHear:
    return load_model("random:0")


def _noise(n_sounds: int, n_samples: int, seed: int = 0) -> torch.Tensor:
    """White noise in [-1, 1), as hear-validator feeds."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n_sounds, n_samples), generator=gen) * 2 - 1


def _variant(model: AudioSepHear, **kwargs) -> AudioSepHear:
    """Another HEAR model on the same (already generated) weights."""
    return AudioSepHear(model.weights, model.scene_config, **kwargs)


def test_module_exposes_the_hear_api():
    for name in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert callable(getattr(hear, name))


def test_model_is_a_module_with_hear_attributes(model):
    assert isinstance(model, nn.Module)
    assert type(model.sample_rate) is int and model.sample_rate == SAMPLE_RATE
    assert model.sample_rate in hear.HEAR_SAMPLE_RATES
    assert type(model.scene_embedding_size) is int and model.scene_embedding_size == 384
    assert type(model.timestamp_embedding_size) is int and model.timestamp_embedding_size == 64 * hear.TIMESTAMP_BANDS
    assert model.timestamp_hop_ms == 40.0
    assert model.random_weights and "RANDOM" in repr(model)
    assert model.describe()["weights"]["random_weights"] is True


def _check_timestamps(stamps: np.ndarray, n_samples: int, hop: float) -> None:
    """hear-validator's timestamp checks, and ours: exact spacing, centres of the first cell."""
    duration = 1000 * n_samples / SAMPLE_RATE
    assert stamps.dtype == np.float32
    assert (stamps == stamps[:1]).all(), "every sound of a batch has the same timestamps"
    row = stamps[0]
    assert 0 <= row.min() and row.max() <= duration
    if row.shape[0] > 1:
        np.testing.assert_array_equal(np.diff(row), hop)
        assert row[0] == (hop - 10) / 2  # the first cell's centre: 15 ms for a 40 ms hop
        assert row[-1] >= duration - 2 * hop  # validator: an error below this
        assert row[-1] + hop > duration  # and no further cell would still fit in the clip


@pytest.mark.parametrize("seconds", [0.01, 0.1, 1.07])
def test_timestamp_embeddings_follow_the_hear_contract(model, seconds):
    n_samples = int(seconds * SAMPLE_RATE)
    embeddings, stamps = get_timestamp_embeddings(_noise(2, n_samples), model)
    assert embeddings.dtype == torch.float32 and embeddings.device.type == "cpu"
    assert embeddings.ndim == 3 and embeddings.shape[0] == 2
    assert embeddings.shape[2] == model.timestamp_embedding_size
    assert stamps.shape == embeddings.shape[:2]
    assert torch.isfinite(embeddings).all()
    _check_timestamps(stamps.numpy(), n_samples, model.timestamp_hop_ms)


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [1.98, 4.0])
def test_timestamp_embeddings_at_the_validators_lengths(model, seconds):
    n_samples = int(seconds * SAMPLE_RATE)
    embeddings, stamps = get_timestamp_embeddings(_noise(2, n_samples), model)
    assert embeddings.shape == (2, stamps.shape[1], model.timestamp_embedding_size)
    _check_timestamps(stamps.numpy(), n_samples, model.timestamp_hop_ms)


def test_scene_embeddings_follow_the_hear_contract(model):
    audio = _noise(3, 8000)
    out = get_scene_embeddings(audio, model)
    assert out.shape == (3, model.scene_embedding_size) and out.dtype == torch.float32
    assert out.device == audio.device and torch.isfinite(out).all()
    # the toolkit's own features, through the HEAR door unchanged
    reference = FeatureExtractor.from_weights(model.weights, EncoderConfig()).embed(audio.numpy(), SAMPLE_RATE)
    np.testing.assert_array_equal(out.numpy(), reference)


def test_the_same_input_gives_the_same_output(model):
    audio = _noise(2, 3200, seed=3)
    first = get_scene_embeddings(audio, model)
    assert torch.equal(model(audio), first)  # forward is the scene embedding, run a second time
    stamped = [get_timestamp_embeddings(audio, model)[0] for _ in range(2)]
    assert torch.equal(stamped[0], stamped[1])


def _scene(audio: torch.Tensor, model: AudioSepHear) -> np.ndarray:
    return get_scene_embeddings(audio, model).numpy()


def _stamped(audio: torch.Tensor, model: AudioSepHear) -> np.ndarray:
    return get_timestamp_embeddings(audio, model)[0].numpy()


@pytest.mark.parametrize("embed", [_scene, _stamped], ids=["scene", "timestamp"])
def test_a_clip_does_not_depend_on_its_batch(model, embed):
    """One batch of 3, batches of 2 + 1 (batch_size=2: the third runs alone) and solo runs agree per clip."""
    audio = _noise(3, 4800, seed=5)
    together = embed(audio, model)
    in_pairs = embed(audio, _variant(model, batch_size=2))
    alone = [embed(audio[i : i + 1], model)[0] for i in range(2)] + [in_pairs[2]]
    for i in range(3):
        np.testing.assert_allclose(together[i], alone[i], rtol=BATCH_RTOL, atol=BATCH_ATOL)
        np.testing.assert_allclose(in_pairs[i], alone[i], rtol=BATCH_RTOL, atol=BATCH_ATOL)
    assert not np.allclose(together[0], together[1]), "distinct clips must give distinct embeddings"


def test_timestamps_mark_the_centre_of_each_frame(model):
    """A click at a cell's centre changes exactly the cells whose receptive field holds it, and those lie
    symmetrically around the click: their timestamps' midpoint is the click's time."""
    click_ms = 15 + 40 * 12
    silence = torch.zeros(1, SAMPLE_RATE)
    clicked = silence.clone()
    clicked[0, click_ms * SAMPLE_RATE // 1000] = 1.0
    embeddings, stamps = get_timestamp_embeddings(torch.cat([silence, clicked]), model)
    changed = (embeddings[0] != embeddings[1]).any(dim=1).numpy()
    hit = stamps[0].numpy()[changed]
    assert hit.size >= 3 and np.all(np.diff(np.flatnonzero(changed)) == 1)
    assert (hit.min() + hit.max()) / 2 == click_ms


def test_timestamp_embeddings_are_the_tap_in_frequency_bands(model):
    """Averaging each frame's 16 bands per channel gives the toolkit's block2 'frames' features."""
    audio = _noise(1, 3200, seed=7)
    embeddings, stamps = get_timestamp_embeddings(audio, model)
    frames = FeatureExtractor.from_weights(model.weights, EncoderConfig(layer="block2", pooling="frames"))
    reference = frames.embed(audio.numpy(), SAMPLE_RATE)[0, : stamps.shape[1]]
    per_channel = embeddings[0].numpy().reshape(stamps.shape[1], 64, hear.TIMESTAMP_BANDS).mean(axis=2)
    np.testing.assert_allclose(per_channel, reference, rtol=1e-5, atol=1e-6)


def test_a_declared_rate_is_resampled_and_keeps_its_milliseconds(model):
    at_16k = _variant(model, sample_rate=16_000)
    audio = _noise(1, 1600, seed=9)  # 0.1 s at 16 kHz
    upsampled = torch.from_numpy(soxr.resample(audio[0].numpy(), 16_000, SAMPLE_RATE, quality="HQ"))[None]
    embeddings, stamps = get_timestamp_embeddings(audio, at_16k, sample_rate=16_000)
    assert torch.equal(embeddings, get_timestamp_embeddings(upsampled, model)[0])
    assert stamps[0].tolist() == [15.0, 55.0, 95.0]  # the 0.1 s clip's cells, as at 32 kHz


def test_no_sounds_give_empty_embeddings(model):
    audio = torch.zeros(0, SAMPLE_RATE)
    assert get_scene_embeddings(audio, model).shape == (0, 384)
    embeddings, stamps = get_timestamp_embeddings(audio, model)
    assert embeddings.shape == (0, 25, model.timestamp_embedding_size) and stamps.shape == (0, 25)


def test_moving_the_model_keeps_its_backends_on_the_same_device(model):
    moved = _variant(model)
    built = moved.extractor("scene")
    assert moved.to("cpu") is moved and moved.extractor("scene") is built
    moved.half()  # HEAR embeddings stay float32: the cast does not reach the backend
    assert moved.extractor("scene") is built and get_scene_embeddings(_noise(1, 2000), moved).dtype == torch.float32


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_rebuilds_the_backends_there(model):
    moved = _variant(model).to("cuda")
    audio = _noise(2, 8000)
    out = get_scene_embeddings(audio.cuda(), moved)
    assert out.device.type == "cuda" and moved.extractor("scene").describe()["executed"]["device"] == "cuda:0"
    np.testing.assert_allclose(out.cpu().numpy(), get_scene_embeddings(audio, model).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("audio", "match"),
    [
        (
            torch.zeros(SAMPLE_RATE),
            r"shape \(n_sounds, n_samples\); got shape \(32000,\)\. For one sound use audio\[None\]",
        ),
        (torch.zeros(1, 1, SAMPLE_RATE), r"got shape \(1, 1, 32000\)\.$"),
        (torch.zeros(1, SAMPLE_RATE, dtype=torch.int16), r"float32 samples .* got torch\.int16\. Use audio\.float\(\)"),
        (torch.zeros(1, SAMPLE_RATE, dtype=torch.float64), r"got torch\.float64"),
        (np.zeros((1, SAMPLE_RATE), np.float32), r"torch\.Tensor .* got ndarray .*torch\.from_numpy"),
        (torch.full((1, SAMPLE_RATE), float("nan")), r"<row 0>"),
    ],
    ids=["1-D", "3-D", "int16", "float64", "numpy", "nan"],
)
def test_unusable_audio_is_refused_with_the_fix(model, audio, match):
    for fn in (get_scene_embeddings, get_timestamp_embeddings):
        with pytest.raises(AudioDecodeError, match=match):
            fn(audio, model)


def test_a_declared_rate_other_than_the_models_is_refused(model):
    with pytest.raises(
        AudioDecodeError, match=r"sample_rate=16000 Hz, but this model takes 32000 Hz.*sample_rate=16000"
    ):
        get_scene_embeddings(_noise(1, 1600), model, sample_rate=16_000)
    with pytest.raises(AudioDecodeError, match=r"sample_rate=48000 Hz"):
        get_timestamp_embeddings(_noise(1, 4800), model, sample_rate=48_000)


class _NotHear(nn.Module):
    sample_rate = 32_000


@pytest.mark.parametrize(
    ("other", "match"),
    [
        (_NotHear(), r"got _NotHear \(it has no scene_embedding_size, timestamp_embedding_size\)"),
        (object(), r"got object \(it has no sample_rate, "),
    ],
)
def test_a_model_from_elsewhere_is_refused(other, match):
    for fn in (get_scene_embeddings, get_timestamp_embeddings):
        with pytest.raises(ConfigError, match=match):
            fn(_noise(1, 2000), other)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sample_rate": 8000}, r"`sample_rate` must be one of \{16000, 22050, 32000, 44100, 48000\}; got 8000"),
        ({"pooling": "frames"}, r"`pooling \(of scene embeddings\)` must be one of .*; got 'frames'"),
        ({"timestamp_layer": "block9"}, r"`timestamp_layer` must be one of .*; got 'block9'"),
        ({"film": "maybe"}, r"`film` must be one of"),
    ],
)
def test_bad_options_are_refused_before_any_weights_are_read(tmp_path, options, match):
    with pytest.raises(ConfigError, match=match):
        load_model(str(tmp_path / "absent.ckpt"), **options)  # refused before the missing file is noticed


def test_no_checkpoint_names_every_way_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        CheckpointError, match=rf"no checkpoint: pass model_file_path .*random:SEED.*\${CHECKPOINT_ENV}"
    ):
        load_model()


def test_an_unknown_backend_option_fails_at_load(model, monkeypatch):
    monkeypatch.setattr(hear, "load_weights", lambda *args, **kwargs: model.weights)  # skip regenerating them
    with pytest.raises(ConfigError, match=r"backend 'eager' takes no option 'model_path'"):
        load_model("random:0", model_path="encoder.onnx")


@pytest.mark.parametrize("rate", hear.HEAR_SAMPLE_RATES)
@pytest.mark.parametrize("stride", [2, 4, 8, 32])
def test_timestamp_count_keeps_every_centre_within_the_clip(rate, stride):
    hop = 10.0 * stride
    for n_samples in [1, 7, 320, 1024, 1025, rate // 10, rate, rate + 1, 3 * rate - 1, 10_000 * rate + 13]:
        count = hear.timestamp_count(n_samples, rate, stride)
        stamps = hear.timestamps_ms(count, n_samples, rate, stride)
        duration = 1000 * n_samples / rate
        assert count >= 1 and stamps.shape == (count,)
        assert 0 <= stamps.min() and stamps.max() <= np.float32(duration)
        first_centre = 5.0 * (stride - 1)
        assert stamps[0] == min(first_centre, np.float32(duration))
        if count > 1:
            np.testing.assert_array_equal(np.diff(stamps.astype(np.float64)), hop)
        if first_centre <= duration:
            assert first_centre + (count - 1) * hop <= duration < first_centre + count * hop
