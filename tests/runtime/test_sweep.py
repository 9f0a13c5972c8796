"""SweepExtractor: several taps from one eager pass, equal to the single configurations to the bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from audiosep_kit.errors import AudioDecodeError, ConfigError
from audiosep_kit.features import cache_key
from audiosep_kit.model import LAYERS, EncoderConfig
from audiosep_kit.runtime import SWEEP_POOLINGS, FeatureExtractor, SweepExtractor, Tiling, make_backend

ALL_TAPS = [(layer, pooling) for layer in LAYERS for pooling in SWEEP_POOLINGS]
#: A shallow, a middle and the deepest tap, one pooling each: the everyday tier.
SOME_TAPS = [("block1", "mean"), ("block4", "max"), ("center", "meanstd")]


def _waves(lengths, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.fixture(scope="module")
def sweep(random_weights) -> SweepExtractor:
    return SweepExtractor.from_weights(random_weights)


def _single(sweep, tap, window_seconds: float | None = None, **options) -> FeatureExtractor:
    """The single configuration as ``FeatureExtractor.from_checkpoint`` builds it, on the sweep's weights
    (the same random:0 weights, not generated again for each of the 21 configurations)."""
    config = EncoderConfig(layer=tap[0], pooling=tap[1], **options)
    tiling = Tiling() if window_seconds is None else Tiling.from_seconds(window_seconds)
    maps = replace(config, pooling="none")
    return FeatureExtractor(
        make_backend("eager", sweep.weights, config), sweep.weights, config, tiling=tiling,
        map_backend=lambda: make_backend("eager", sweep.weights, maps),
    )  # fmt: skip


def _assert_equal_to_single_runs(sweep, waves, taps, make_single) -> dict:
    got = sweep.embed_sweep(waves, taps)
    assert list(got) == list(taps)
    for tap in taps:
        ref = np.stack(make_single(tap).embed_waves(waves))
        assert got[tap].dtype == np.float32 and got[tap].shape == ref.shape, tap
        assert np.array_equal(got[tap], ref), f"{tap}: max |diff| {np.abs(got[tap] - ref).max():.3e}"
    return got


def test_some_taps_equal_their_single_configurations(sweep):
    # two equal-length clips share a batch; the lone shorter one runs doubled, as in a single run
    waves = _waves([16_000, 16_000, 8_000])
    _assert_equal_to_single_runs(sweep, waves, SOME_TAPS, lambda tap: _single(sweep, tap))


@pytest.mark.slow  # 21 single-configuration extractions of 1 s clips beside the sweep (~1 min on 2 cores)
def test_every_tap_equals_its_single_configuration(sweep):
    waves = _waves([32_000, 32_000, 16_000])
    got = _assert_equal_to_single_runs(sweep, waves, ALL_TAPS, lambda tap: _single(sweep, tap))
    as_a_user_builds_it = FeatureExtractor.from_checkpoint("random:0", layer="center", pooling="meanstd")
    assert np.array_equal(got[("center", "meanstd")], np.stack(as_a_user_builds_it.embed_waves(waves)))


@pytest.mark.slow  # an 8.1 s clip in two 8 s windows, by the sweep and by three single runs (~35 s on 2 cores)
def test_a_long_clip_is_tiled_per_layer_like_a_single_run(sweep):
    tiled = SweepExtractor.from_weights(sweep.weights, window_seconds=8.0)
    wave = _waves([int(8.1 * 32_000)], seed=3)
    assert len(tiled.tiling.windows(wave[0].shape[0], "center")) == 2
    taps = [("block1", "mean"), ("block3", "max"), ("center", "meanstd")]  # time strides 2, 8 and 32 frames
    _assert_equal_to_single_runs(tiled, wave, taps, lambda tap: _single(sweep, tap, window_seconds=8.0))


def test_film_and_pad_to_32_are_the_extractors(sweep):
    zero_nopad = SweepExtractor.from_weights(sweep.weights, film="zero", pad_to_32=False)
    waves = _waves([16_000, 16_000], seed=1)
    got = zero_nopad.embed_sweep(waves, [("block3", "max")])[("block3", "max")]
    ref = np.stack(_single(sweep, ("block3", "max"), film="zero", pad_to_32=False).embed_waves(waves))
    assert np.array_equal(got, ref)
    assert not np.array_equal(got, sweep.embed_sweep(waves, [("block3", "max")])[("block3", "max")])


def test_each_tap_describes_itself_as_its_single_configuration(sweep):
    for tap in SOME_TAPS:
        mine, theirs = sweep.describe_tap(tap), _single(sweep, tap).describe()
        assert mine["encoder"] == theirs["encoder"] and mine["backend"] == theirs["backend"] == "eager"
        assert cache_key(mine, []) == cache_key(theirs, [])
        assert sweep.view(tap).config == _single(sweep, tap).config


@pytest.mark.parametrize("backend", ["compile", "onnx", "aoti", "fast"])
def test_other_backends_are_refused(backend):
    with pytest.raises(ConfigError, match=rf"eager backend only.*backend='{backend}' runs a graph with a single tap"):
        SweepExtractor.from_checkpoint("random:0", backend=backend)


@pytest.mark.parametrize("pooling", ["frames", "none"])
def test_poolings_without_a_fixed_width_are_refused(sweep, pooling):
    with pytest.raises(ConfigError, match=rf"fixed-width features.*got '{pooling}'"):
        sweep.embed_sweep(_waves([4000]), [("block1", pooling)])


def test_a_clip_too_short_for_the_deepest_tap_is_refused(sweep):
    nopad = SweepExtractor.from_weights(sweep.weights, pad_to_32=False)
    with pytest.raises(AudioDecodeError, match=r"clip 0 has 3000 samples .* layer='block4' .* needs >= 4800"):
        nopad.embed_sweep(_waves([3000]), [("block1", "mean"), ("block4", "mean")])


def test_no_taps_and_no_waves(sweep):
    with pytest.raises(ConfigError, match="at least one .layer, pooling. tap; got none"):
        sweep.embed_sweep(_waves([4000]), [])
    empty = sweep.embed_sweep([], [("block2", "meanstd")])
    assert empty[("block2", "meanstd")].shape == (0, 128)
