"""Conformance of the eager encoder with the official AudioSep code on golden-lite (tests/golden_lite).

Unlike the full golden tier this runs on a fresh clone: the data is committed and the weights are
rebuilt from the README §1 recipe, so the recipe is checked first, tensor by tensor, against the
sha256 values of ``provenance.json``; an output mismatch then means the encoder, not the weights.
Every one of the 41 reference arrays is compared with ``np.allclose(rtol=1e-4, atol=1e-5)``
(README §6: legitimate float32 variants use at most 0.38 of that, every known bug exceeds it by
orders of magnitude). Each encoder is built once per module; the inputs are short (at most 2.3 s).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosep_kit.model import EncoderConfig, build_encoder

#: our film mode -> the mode spelled in golden-lite keys
MODES = {"none": "none", "zero": "zero_condition", "query": "query"}
MEAN_INPUTS = ("a", "b", "c", "d", "e", "batch2")
CENTER_INPUTS = ("a", "c", "d")
BLOCK_INPUTS = ("a", "b")

#: reference key -> (input, EncoderConfig options, array kind); d__mag is checked on its own.
CASES: dict[str, tuple[str, dict, str]] = {
    **{
        f"{x}__{MODES[film]}__mean": (x, {"film": film, "pooling": "mean"}, "mean")
        for x in MEAN_INPUTS
        for film in MODES
    },
    **{
        f"{x}__{MODES[film]}__center": (x, {"film": film, "pooling": "none"}, "center")
        for x in CENTER_INPUTS
        for film in MODES
    },
    **{
        f"{x}__none__block{k}_mean": (x, {"layer": f"block{k}", "pooling": "mean"}, "block_mean")
        for x in BLOCK_INPUTS
        for k in range(1, 7)
    },
    "b__none_nopad__mean": ("b", {"pooling": "mean", "pad_to_32": False}, "nopad"),
}


@pytest.fixture(scope="module")
def encoder_for(lite_weights, lite_condition):
    """``encoder_for(**options)``: an eval encoder over the recipe weights, built once per options."""
    cache: dict[tuple, torch.nn.Module] = {}

    def get(film: str = "none", layer: str = "center", pooling: str = "mean", pad_to_32: bool = True):
        key = (film, layer, pooling, pad_to_32)
        if key not in cache:
            condition = lite_condition if film == "query" else None
            config = EncoderConfig(film=film, layer=layer, pooling=pooling, pad_to_32=pad_to_32, condition=condition)
            cache[key] = build_encoder(lite_weights, config)
        return cache[key]

    return get


def _run(encoder, wave: np.ndarray) -> torch.Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    with torch.inference_mode():
        return encoder(batch if batch.dim() == 2 else batch[None])


def test_recipe_tensors_match_provenance_sha256(lite_recipe, lite_recipe_arrays, lite_provenance):
    """All 129 recipe tensors, in provenance order, with its shape, dtype and sha256_le (bit for bit)."""
    tensors, _ = lite_recipe_arrays
    keys = lite_provenance["weights"]["keys"]
    assert list(tensors) == list(keys) and len(tensors) == 129
    for key, (shape, dtype) in lite_recipe.key_specs(lite_provenance).items():
        assert tensors[key].shape == shape and tensors[key].dtype == dtype, key
    wrong = [key for key, value in tensors.items() if lite_recipe.sha256_le(value) != keys[key]["sha256_le"]]
    assert not wrong, f"{len(wrong)} recipe tensors differ from provenance.json, first: {wrong[:3]}"
    assert int(tensors["ss_model.base.bn0.num_batches_tracked"]) == 1000


def test_recipe_condition_matches_condition_npy(lite_recipe_arrays, lite_condition, lite_provenance, lite_recipe):
    """The 512 draws after the last key give condition.npy bit for bit (and its recorded sha256)."""
    _, condition = lite_recipe_arrays
    assert condition.dtype == lite_condition.dtype == np.float32 and condition.shape == lite_condition.shape == (512,)
    assert np.array_equal(condition, lite_condition)
    assert lite_recipe.sha256_le(condition) == lite_provenance["condition"]["sha256_float32_le"]


def test_package_dft_kernels_equal_the_recipe_kernels(lite_recipe_arrays, lite_recipe):
    """``stft_kernels.dft_kernels`` (used for random weights) is torchlibrosa's construction, bit for bit."""
    from audiosep_kit.model import dft_kernels

    tensors, _ = lite_recipe_arrays
    for ours, key in zip(dft_kernels(), lite_recipe.STFT_KEYS, strict=False):
        assert ours.dtype == torch.float32 and np.array_equal(ours.numpy(), tensors[key]), key


def test_checkpoint_loads_the_recipe_tensors(lite_weights, lite_recipe_arrays):
    """The Lightning-style .ckpt round trip: the loader strips ``ss_model.`` and keeps every tensor."""
    tensors, _ = lite_recipe_arrays
    assert lite_weights.prefix == "ss_model."
    assert set(lite_weights.state_dict) == {key.removeprefix("ss_model.") for key in tensors}
    for key, value in tensors.items():
        assert torch.equal(lite_weights.state_dict[key.removeprefix("ss_model.")], torch.from_numpy(value)), key


def test_every_reference_array_is_checked(lite_outputs):
    """The parametrised cases below plus d__mag cover exactly the 41 arrays of outputs.npz."""
    assert set(CASES) | {"d__mag"} == set(lite_outputs) and len(lite_outputs) == 41


@pytest.mark.parametrize("key", list(CASES))
def test_encoder_matches_golden_lite(key, encoder_for, lite_inputs, lite_outputs, lite_check):
    """One reference array: the encoder with that array's (film, layer, pooling, pad_to_32) on its input."""
    clip, options, kind = CASES[key]
    lite_check(_run(encoder_for(**options), lite_inputs[clip]), lite_outputs[key], key, kind)


def test_magnitude_matches_golden_lite(encoder_for, lite_inputs, lite_outputs, lite_check):
    """``base.magnitude`` of the minimal input d (4 frames) vs ``d__mag`` (1, 1, 4, 1025)."""
    with torch.inference_mode():
        mag = encoder_for().base.magnitude(torch.from_numpy(lite_inputs["d"])[None])
    lite_check(mag, lite_outputs["d__mag"], "d__mag", "mag")


def test_silence_gives_the_clamp_floor_in_every_bin(encoder_for, lite_inputs):
    """Input e (1 s of zeros): |STFT| is exactly float32(1e-5) = sqrt(1e-10) in every bin.

    Dropping the 1e-10 power clamp moves the outputs by only ~1.6e-5 (README §6), inside the
    allclose tolerance, so the clamp is tested here directly.
    """
    assert not np.any(lite_inputs["e"])
    with torch.inference_mode():
        mag = encoder_for().base.magnitude(torch.from_numpy(lite_inputs["e"])[None])
    assert tuple(mag.shape) == (1, 1, 101, 1025) and mag.dtype == torch.float32
    assert torch.all(mag == torch.tensor(1e-5, dtype=torch.float32))
