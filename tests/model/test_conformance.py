"""Numerical parity of the eager encoder with the official AudioSep code (shared/audiosep/golden).

Every comparison is ``np.allclose(out, ref, rtol=1e-4, atol=1e-5)`` (golden README §5): the golden
set was made on an Intel AVX-512 CPU, so other CPUs agree to ~1e-7, not bit for bit. The largest
error per array kind is printed in the terminal summary. Each encoder is built once per module and
each (weights, input, mode) map is computed once, so the 10 s input ``e`` runs three times in all.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosep_kit.model._checkpoint import build_encoder, load_weights
from audiosep_kit.model._config import EncoderConfig
from audiosep_kit.model._encoder import pool_features

INPUTS = ("a", "b", "c", "d", "e")
#: our film mode -> the golden key's mode
MODES = {"none": "none", "zero": "zero_condition", "query": "query"}
TAP_INPUTS = ("a", "c", "d")  # the only inputs whose block taps are shipped
#: Every input through ckpt; the file-format variants on the cheap inputs (their tensors are
#: also checked to be identical, so the expensive inputs would add nothing).
SOURCES = {"ckpt": INPUTS, "flat": ("a", "d"), "safetensors": ("a", "d")}
CASES = [(src, x, mode) for src, xs in SOURCES.items() for x in xs for mode in MODES]


def _ids(case):
    return "-".join(case)


@pytest.fixture(scope="module")
def weights_by_source(golden_weights, golden_flat_checkpoint, golden_safetensors_checkpoint):
    return {
        "ckpt": golden_weights,
        "flat": load_weights(golden_flat_checkpoint),
        "safetensors": load_weights(golden_safetensors_checkpoint),
    }


@pytest.fixture(scope="module")
def encoder_for(weights_by_source, golden_condition):
    """``encoder_for(source, film, layer='center', pad_to_32=True)``: a cached eval encoder, pooling='none'."""
    cache: dict[tuple, torch.nn.Module] = {}

    def get(source: str, film: str, layer: str = "center", pad_to_32: bool = True):
        key = (source, film, layer, pad_to_32)
        if key not in cache:
            config = EncoderConfig(
                film=film,
                layer=layer,
                pooling="none",
                pad_to_32=pad_to_32,
                condition=golden_condition if film == "query" else None,
            )
            cache[key] = build_encoder(weights_by_source[source], config)
        return cache[key]

    return get


def _run(encoder, wave: np.ndarray) -> torch.Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    with torch.inference_mode():
        return encoder(batch if batch.dim() == 2 else batch[None])


@pytest.fixture(scope="module")
def center_map(encoder_for, golden_inputs):
    """``center_map(source, x, film)``: the conv_block7a map (1, 384, Tp/32, 16), computed once."""
    cache: dict[tuple, torch.Tensor] = {}

    def get(source: str, x: str, film: str) -> torch.Tensor:
        if (source, x, film) not in cache:
            cache[(source, x, film)] = _run(encoder_for(source, film), golden_inputs[x])
        return cache[(source, x, film)]

    return get


def test_file_formats_hold_identical_tensors(weights_by_source):
    """The .ckpt, flat .bin and .safetensors give the same 129 tensors (torch.equal) and sha256."""
    ref = weights_by_source["ckpt"]
    for name in ("flat", "safetensors"):
        other = weights_by_source[name]
        assert set(other.state_dict) == set(ref.state_dict)  # safetensors stores keys sorted
        assert all(torch.equal(other.state_dict[k], ref.state_dict[k]) for k in ref.state_dict)
        assert other.sha256 == ref.sha256


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_center_map_matches_golden(case, center_map, golden_outputs, golden_check):
    """Compares the full conv_block7a map (pooling='none') with ``<x>__<mode>__center``."""
    source, x, film = case
    key = f"{x}__{MODES[film]}__center"
    golden_check(center_map(source, x, film), golden_outputs[key], f"{source}:{key}", "center")


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_pooled_mean_matches_golden(case, center_map, golden_outputs, golden_check):
    """Compares the mean over (time, freq) of the center map with ``<x>__<mode>__mean`` (1, 384)."""
    source, x, film = case
    key = f"{x}__{MODES[film]}__mean"
    got = pool_features(center_map(source, x, film), "mean")
    golden_check(got, golden_outputs[key], f"{source}:{key}", "mean")


@pytest.mark.parametrize("film", list(MODES))
def test_mean_pooling_encoder_matches_golden(
    film, golden_weights, golden_inputs, golden_outputs, golden_condition, golden_check
):
    """The public pooling='mean' encoder on input a, vs ``a__<mode>__mean``."""
    config = EncoderConfig(film=film, pooling="mean", condition=golden_condition if film == "query" else None)
    got = _run(build_encoder(golden_weights, config), golden_inputs["a"])
    golden_check(got, golden_outputs[f"a__{MODES[film]}__mean"], f"pooling=mean:a__{MODES[film]}__mean", "mean")


@pytest.mark.parametrize("layer", [f"block{k}" for k in range(1, 7)])
@pytest.mark.parametrize("x", TAP_INPUTS)
def test_block_taps_match_golden(x, layer, encoder_for, golden_inputs, golden_taps, golden_check):
    """layer='block1'..'block6', pooling='none', film none, vs ``<x>__none__block<k>`` (outputs_taps.npz)."""
    key = f"{x}__none__{layer}"
    golden_check(_run(encoder_for("ckpt", "none", layer), golden_inputs[x]), golden_taps[key], key, "block_taps")


def test_batch_of_two_matches_golden(encoder_for, golden_inputs, golden_outputs, golden_check):
    """Inputs a and b[:32000] stacked (2, 32000), film none: ``batch2__none__center`` and ``__mean``."""
    batch = np.stack([golden_inputs["a"], golden_inputs["b"][:32000]])
    assert np.array_equal(batch, golden_inputs["batch2"])
    center = _run(encoder_for("ckpt", "none"), batch)
    golden_check(center, golden_outputs["batch2__none__center"], "batch2__none__center", "batch2")
    golden_check(pool_features(center, "mean"), golden_outputs["batch2__none__mean"], "batch2__none__mean", "batch2")


def test_no_pad_variant_matches_golden(encoder_for, golden_inputs, golden_outputs, golden_check):
    """Input b with pad_to_32=False (floor pooling, 15 time steps): ``b__none_nopad__center`` / ``__mean``."""
    center = _run(encoder_for("ckpt", "none", pad_to_32=False), golden_inputs["b"])
    assert tuple(center.shape) == (1, 384, 15, 16)
    golden_check(center, golden_outputs["b__none_nopad__center"], "b__none_nopad__center", "nopad")
    golden_check(pool_features(center, "mean"), golden_outputs["b__none_nopad__mean"], "b__none_nopad__mean", "nopad")


@pytest.mark.parametrize("x", INPUTS)
def test_magnitude_matches_golden(x, encoder_for, golden_inputs, golden_outputs, golden_check):
    """``encoder.base.magnitude`` (power clamped at 1e-10, then ** 0.5) vs ``<x>__mag`` (1, 1, T, 1025)."""
    with torch.inference_mode():
        mag = encoder_for("ckpt", "none").base.magnitude(torch.from_numpy(golden_inputs[x])[None])
    golden_check(mag, golden_outputs[f"{x}__mag"], f"{x}__mag", "mag")


def test_silence_gives_the_clamp_floor_in_every_bin(encoder_for):
    """Digital silence: |STFT| is exactly float32(1e-5) = sqrt(1e-10) in every (frame, bin)."""
    with torch.inference_mode():
        mag = encoder_for("ckpt", "none").base.magnitude(torch.zeros(2, 32000))
    assert tuple(mag.shape) == (2, 1, 101, 1025)
    assert torch.all(mag == torch.tensor(1e-5, dtype=torch.float32))


def test_trailing_silence_of_input_c_hits_the_floor(encoder_for, golden_inputs, golden_outputs):
    """Input c ends in 31,791 exact zeros: 98 of its 157 frames are entirely at the floor, as in ``c__mag``."""
    floor = np.float32(1e-5)
    with torch.inference_mode():
        mag = encoder_for("ckpt", "none").base.magnitude(torch.from_numpy(golden_inputs["c"])[None]).numpy()
    ours = np.all(mag[0, 0] == floor, axis=1)
    ref = np.all(golden_outputs["c__mag"][0, 0] == floor, axis=1)
    assert ours.sum() == ref.sum() == 98
    assert np.array_equal(ours, ref)
