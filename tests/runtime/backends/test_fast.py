"""The fast backend: fp32 within the fp32 parity tolerance of eager, bf16 by cosine, over the options.

Short inputs keep this quick (two cores): the arithmetic path is the same for every length, and the
lengths chosen exercise the minimum clip (1025), an odd length and the no-pad floor pooling.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.bench._parity import compare, tolerance_for
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.model._config import EncoderConfig
from audiosep_kit.runtime.backends import make_backend

#: (encoder options, input shapes): the minimum clip, an odd length, the no-pad floor pooling.
CONFIGS = [
    ({}, ((1, 1025), (2, 5_001))),
    ({"film": "zero", "pooling": "none"}, ((2, 5_001),)),
    ({"film": "query", "pooling": "meanstd", "layer": "block2"}, ((2, 5_001),)),
    ({"layer": "block6", "pooling": "frames", "pad_to_32": False}, ((2, 10_241),)),
]


@pytest.fixture(scope="module")
def weights():
    from audiosep_kit.model._checkpoint import load_weights

    return load_weights("random:0")


def _config(options: dict) -> EncoderConfig:
    condition = None
    if options.get("film") == "query":
        condition = np.random.default_rng(3).standard_normal(512).astype(np.float32)
    return EncoderConfig(**options, condition=condition)


def _inputs(shapes=((2, 5_001),)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(shape)).astype(np.float32) for shape in shapes]


@pytest.mark.parametrize(("options", "shapes"), CONFIGS, ids=["default", "film-zero", "query-block2", "block6-nopad"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fast_agrees_with_eager_within_its_precision(weights, options, shapes, precision, request):
    if precision == "bf16":
        request.getfixturevalue("native_bf16")
    config = _config(options)
    eager = make_backend("eager", weights, config)
    fast = make_backend("fast", weights, config, precision=precision)
    for x in _inputs(shapes):
        ref, got = eager.run(x), fast.run(x)
        assert got.shape == ref.shape and got.dtype == np.float32
        assert compare(got, ref).within(tolerance_for(precision)), compare(got, ref)


@pytest.mark.parametrize("stft", ["fft", "conv"])
def test_stft_modes_agree(weights, stft):
    config = EncoderConfig(pooling="none")
    x = _inputs()[0]
    backend = make_backend("fast", weights, config, precision="fp32", stft=stft)
    assert backend.executed()["stft"] == stft
    assert compare(backend.run(x), make_backend("eager", weights, config).run(x)).within(tolerance_for("fp32"))


def test_results_are_not_views_of_reused_buffers(weights):
    backend = make_backend("fast", weights, EncoderConfig(pooling="none"), precision="fp32")
    a, b = _inputs()[0], _inputs()[0][:, ::-1].copy()
    first = backend.run(a)
    kept = first.copy()
    backend.run(b)
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(backend.run(a), kept)  # deterministic run to run


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", "float32"), ("bf16", "bfloat16")])
def test_executed_says_what_ran(weights, precision, dtype, request):
    if precision == "bf16":
        request.getfixturevalue("native_bf16")
    info = make_backend("fast", weights, EncoderConfig(), precision=precision).executed()
    assert info["blocks_dtype"] == dtype and info["front_end_dtype"] == "float32"
    assert info["stft"] == "fft" and info["layout"] == "channels_last" and info["device"] == "cpu"


def test_feature_extractor_selects_it():
    from audiosep_kit.runtime._extractor import FeatureExtractor

    extractor = FeatureExtractor.from_checkpoint("random:0", backend="fast", precision="fp32")
    assert extractor.describe()["backend"] == "fast" and extractor.describe()["precision"] == "fp32"
    assert extractor.embed(np.zeros(16_000, np.float32), 16_000).shape == (384,)


def test_options_are_checked(weights):
    config = EncoderConfig()
    with pytest.raises(ConfigError, match=r"`precision \(of backend .fast.\)` must be one of"):
        make_backend("fast", weights, config, precision="fp16")
    with pytest.raises(ConfigError, match="`stft` must be one of"):
        make_backend("fast", weights, config, stft="librosa")
    with pytest.raises(BackendUnavailableError, match="CPU only"):
        make_backend("fast", weights, config, "cuda")


def test_fft_refused_for_non_dft_kernels(weights):
    from audiosep_kit.model._checkpoint import LoadedWeights

    state = dict(weights.state_dict)
    state["base.stft.conv_real.weight"] = state["base.stft.conv_real.weight"] * 1.01
    odd = LoadedWeights(state, "test", "0" * 64, "")
    with pytest.raises(ConfigError, match="not"):
        make_backend("fast", odd, EncoderConfig(), precision="fp32", stft="fft")
    assert make_backend("fast", odd, EncoderConfig(), precision="fp32").executed()["stft"] == "conv"


def test_bf16_without_native_support_is_refused(weights, monkeypatch):
    from audiosep_kit.runtime.backends import _fast

    monkeypatch.setattr(_fast, "bf16_is_native", lambda: False)
    with pytest.raises(BackendUnavailableError, match="native bfloat16"):
        make_backend("fast", weights, EncoderConfig(), precision="bf16")


def test_fp32_matches_golden(golden_weights, golden_inputs, golden_outputs, golden_check):
    backend = make_backend("fast", golden_weights, EncoderConfig(), precision="fp32")
    for clip in ("a", "c", "d"):
        golden_check(
            backend.run(golden_inputs[clip][None]), golden_outputs[f"{clip}__none__mean"], f"fast:{clip}", "fast"
        )
