"""Exact tiling of long clips: the windows, the streaming pool, and tiled == whole-clip features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.model import HOP, LAYERS, POOLINGS, pool_features
from audiosep_kit.runtime._extractor import FeatureExtractor
from audiosep_kit.runtime._tiling import GRID_FRAMES, MARGIN_FRAMES, Tiling, _StreamingPool, run_tiled, tap_stride

#: Windows of 384 + 2 x 256 frames (8.96 s): the smallest that keeps the test fast while a 9.6 s
#: clip still needs two windows (and so a seam between them).
SMALL = Tiling(core_frames=384)
SECONDS = 9.6


def _map_length(num_samples: int, layer: str, pad_to_32: bool) -> int:
    """Time steps of the whole clip's tap map, as the encoder computes them."""
    frames = num_samples // HOP + 1
    if pad_to_32:
        frames += (-frames) % 32
    return frames // tap_stride(layer)


@settings(max_examples=200, deadline=None)
@given(
    num_samples=st.integers(min_value=1025, max_value=40 * 32000),
    core=st.sampled_from([32, 64, 384, 1024]),
    layer=st.sampled_from(LAYERS),
    pad_to_32=st.booleans(),
)
def test_windows_tile_the_map_once_on_the_pool_grid(num_samples, core, layer, pad_to_32):
    tiling = Tiling(core_frames=core)
    windows = tiling.windows(num_samples, layer)
    assert windows[0].start == 0 and windows[-1].stop == num_samples and windows[-1].keep_to is None
    stride = tap_stride(layer)
    kept, expected_from = 0, 0
    for window in windows:
        assert window.start % (HOP * GRID_FRAMES) == 0  # on the pools' grid
        assert window.stop - window.start <= max(tiling.window_samples, num_samples if len(windows) == 1 else 0)
        # the first kept step of each window is the step after the previous window's last one
        assert window.start // HOP // stride + window.keep_from == expected_from
        length = _map_length(window.stop - window.start, layer, pad_to_32)
        stop = length if window.keep_to is None else window.keep_to
        assert window.keep_to is None or window.keep_to <= length - MARGIN_FRAMES // stride + 1
        kept += stop - window.keep_from
        expected_from += stop - window.keep_from
    assert kept == _map_length(num_samples, layer, pad_to_32)


@settings(max_examples=100, deadline=None)
@given(
    pooling=st.sampled_from(POOLINGS),
    cuts=st.lists(st.integers(min_value=1, max_value=39), max_size=5, unique=True),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_streaming_pool_equals_pooling_the_whole_map(pooling, cuts, seed):
    tap_map = np.random.default_rng(seed).standard_normal((6, 40, 4)).astype(np.float32)
    pool = _StreamingPool(pooling)
    edges = [0, *sorted(cuts), 40]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        pool.add(tap_map[:, a:b])
    expected = pool_features(torch.from_numpy(tap_map)[None], pooling)[0].numpy()
    np.testing.assert_allclose(pool.result(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seconds, core", [(5.4, 32), (2.0, 1024)])
def test_from_seconds_refuses_windows_smaller_than_the_margins(seconds, core):
    assert Tiling(core_frames=core)  # the sizes themselves are fine
    with pytest.raises(ConfigError, match="margins of exact tiling"):
        Tiling.from_seconds(seconds)


@pytest.mark.parametrize("value", [0, 100, -32, 32.0])
def test_tiling_sizes_must_sit_on_the_pool_grid(value):
    with pytest.raises(ConfigError, match="multiple of 32 frames"):
        Tiling(core_frames=value)


@pytest.fixture(scope="module")
def long_clip() -> np.ndarray:
    rng = np.random.default_rng(5)
    return (0.1 * rng.standard_normal(int(SECONDS * 32000) + 77)).astype(np.float32)


def _maps(clip: np.ndarray, pad_to_32: bool, layer: str, margin: int = MARGIN_FRAMES) -> tuple:
    whole = FeatureExtractor.from_checkpoint("random:0", pooling="none", pad_to_32=pad_to_32, layer=layer)
    tiled = run_tiled(whole.backend.run, clip, Tiling(core_frames=384, margin_frames=margin), layer, "none")
    return whole.backend.run(clip[None])[0], tiled


@pytest.mark.slow
def test_tiled_map_equals_the_whole_clip_map(long_clip):
    whole, tiled = _maps(long_clip, True, "center")
    assert len(SMALL.windows(long_clip.shape[0], "center")) == 2
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("pad_to_32, layer", [(False, "center"), (True, "block3"), (False, "block1")])
def test_tiled_map_equals_the_whole_clip_map_for_other_options(long_clip, pad_to_32, layer):
    whole, tiled = _maps(long_clip, pad_to_32, layer)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_margin_below_the_receptive_field_is_not_exact(long_clip):
    """The check above can fail: with 96 frames of margin the seam shows."""
    whole, tiled = _maps(long_clip, True, "center", margin=96)
    assert not np.allclose(tiled, whole, rtol=1e-4, atol=1e-5)


def test_extractor_tiles_long_clips_and_matches_one_pass(long_clip):
    tiled = FeatureExtractor.from_checkpoint("random:0", pooling="meanstd", window_seconds=SMALL.window_seconds)
    whole = FeatureExtractor.from_checkpoint("random:0", pooling="meanstd", window_seconds=20.0)
    assert tiled.tiling == SMALL and tiled.tiling.needs_tiling(long_clip.shape[0])
    assert not whole.tiling.needs_tiling(long_clip.shape[0])
    got = tiled.embed_waves([long_clip, long_clip[:3000]])
    want = whole.embed_waves([long_clip, long_clip[:3000]])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert tiled.describe()["tiling"] == {**SMALL.describe(), "exact": True}


def test_batches_are_cut_to_the_window(monkeypatch):
    extractor = FeatureExtractor.from_checkpoint("random:0", batch_size=8, window_seconds=SMALL.window_seconds)
    sizes: list[int] = []

    def run(batch: np.ndarray) -> np.ndarray:  # records the calls; the numbers are not the point here
        sizes.append(batch.shape[0])
        return np.zeros((batch.shape[0], 384), np.float32)

    monkeypatch.setattr(extractor.backend, "run", run)
    extractor.embed_waves([np.zeros(3 * 32000, np.float32)] * 5)
    assert max(sizes) * 3 * 32000 <= SMALL.window_samples and sum(sizes) == 5


def test_an_artifact_without_a_map_engine_refuses_long_clips_with_an_estimate(long_clip):
    base = FeatureExtractor.from_checkpoint("random:0")
    extractor = FeatureExtractor(base.backend, base.weights, base.config, tiling=SMALL)
    with pytest.raises(BackendUnavailableError, match=r"9\.6 s clip .* about \d+\.\d GB"):
        extractor.embed_waves([long_clip])


@pytest.mark.slow
@pytest.mark.parametrize("backend, options", [("onnx", {}), ("fast", {"precision": "fp32"})], ids=["onnx", "fast-fp32"])
def test_other_backends_tile_through_their_own_map_engine(long_clip, backend, options, tmp_path, monkeypatch):
    """onnx exports (and caches) a pooling='none' artifact for its windows; fast builds a second encoder."""
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path))
    want = FeatureExtractor.from_checkpoint("random:0", window_seconds=20.0).embed_waves([long_clip])[0]
    tiled = FeatureExtractor.from_checkpoint(
        "random:0", backend=backend, window_seconds=SMALL.window_seconds, **options
    )
    got = tiled.embed_waves([long_clip])[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert tiled._map_backend is not None and tiled._map_backend.name == backend
