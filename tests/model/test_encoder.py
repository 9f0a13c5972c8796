"""The encoder network: module names, state-dict layout, front end, FiLM and pooling semantics.

Numerical parity with the official code is in test_conformance.py; these tests pin down the
structure and the semantics with deterministic random weights and need no shared data (except the
layout test, which reads shared/audiosep/state_dict_keys.tsv).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from audiosep_kit.errors import ConfigError
from audiosep_kit.model._checkpoint import build_encoder
from audiosep_kit.model._config import LAYER_CHANNELS, EncoderConfig
from audiosep_kit.model._encoder import BLOCKS, AudioSepEncoder, pool_features
from audiosep_kit.model._stft_kernels import dft_kernels

L_SHORT = 4000  # T = 13 frames, padded to 32


@pytest.fixture(scope="module")
def condition() -> np.ndarray:
    c = np.random.default_rng(7).standard_normal(512)
    return (c / np.linalg.norm(c)).astype(np.float32)


def _wave(n: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((0.1 * rng.standard_normal((batch, n))).astype(np.float32))


def _run(model, wave: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(wave)


def _shape(text: str) -> tuple[int, ...]:
    return () if text == "scalar" else tuple(int(d) for d in text.split("x"))


def test_state_dict_layout_equals_the_official_tsv(shared_dir):
    """Keys (in order, after removing ``ss_model.``), shapes and dtypes equal shared/audiosep/state_dict_keys.tsv."""
    with open(shared_dir / "audiosep" / "state_dict_keys.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    expected = [(r["key"].removeprefix("ss_model."), _shape(r["shape"]), r["dtype"]) for r in rows]
    got = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in AudioSepEncoder().state_dict().items()]
    assert got == expected


def test_state_dict_size():
    """129 keys and 14,550,131 elements (ENCODER_SPEC §1.5, golden README §1); the condition buffer is not saved."""
    state = AudioSepEncoder(EncoderConfig(film="zero")).state_dict()
    assert len(state) == 129
    assert sum(v.numel() for v in state.values()) == 14_550_131
    assert sum(k.endswith("num_batches_tracked") for k in state) == 15
    assert "condition" not in state


def test_film_layers_are_direct_children_with_official_names():
    """The 14 FiLM Linears sit directly on ``film`` under '->'-joined names, with (n, 512) weights."""
    film = AudioSepEncoder().film
    names = [name for name, _ in film.named_children()]
    assert names == [f"{b}->conv_block1->{beta}" for b, *_ in BLOCKS for beta in ("beta1", "beta2")]
    for name, cin, cout, _ in BLOCKS:
        assert getattr(film, f"{name}->conv_block1->beta1").weight.shape == (cin, 512)
        assert getattr(film, f"{name}->conv_block1->beta2").weight.shape == (cout, 512)


def test_stft_kernels_are_frozen():
    """The DFT kernels are parameters (so they load from the checkpoint) that never take gradients."""
    stft = AudioSepEncoder().base.stft
    assert [p.requires_grad for p in stft.parameters()] == [False, False]
    assert stft.conv_real.weight.shape == (1025, 1, 2048)


def test_stft_matches_a_numpy_reference():
    """ConvSTFT with the true DFT kernels equals numpy: reflect pad 1024, periodic Hann, hop 320, rfft."""
    stft = AudioSepEncoder().base.stft
    real_k, imag_k = dft_kernels()
    stft.conv_real.weight.data.copy_(real_k)
    stft.conv_imag.weight.data.copy_(imag_k)
    x = _wave(5000)[0].numpy().astype(np.float64)
    with torch.inference_mode():
        real, imag = stft(torch.from_numpy(x.astype(np.float32))[None])
    padded = np.pad(x, 1024, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2048) / 2048)
    frames = np.stack([padded[t * 320 : t * 320 + 2048] for t in range(5000 // 320 + 1)])
    ref = np.fft.rfft(frames * window, axis=1)
    assert real.shape == imag.shape == (1, 1, 16, 1025)
    scale = np.abs(ref).max()
    assert np.abs(real[0, 0].numpy() - ref.real).max() < 1e-5 * scale
    assert np.abs(imag[0, 0].numpy() - ref.imag).max() < 1e-5 * scale


def test_silence_gives_the_clamp_floor():
    """The power (not the magnitude) is clamped at 1e-10: silence gives mag == float32(1e-5) exactly."""
    with torch.inference_mode():
        mag = AudioSepEncoder().base.magnitude(torch.zeros(1, 3000))
    assert mag.shape == (1, 1, 10, 1025)
    assert torch.all(mag == torch.tensor(1e-5, dtype=torch.float32))


def test_stem_pads_time_after_bn0_and_drops_the_nyquist_bin():
    """With an identity pre_conv and bn0 = x + 0.5, the stem is mag[..., :1024] + 0.5 then exact zero frames."""
    model = AudioSepEncoder().eval()
    base = model.base
    with torch.no_grad():
        base.bn0.running_mean.zero_()
        base.bn0.running_var.fill_(1.0 - base.bn0.eps)
        base.bn0.weight.fill_(1.0)
        base.bn0.bias.fill_(0.5)
        base.pre_conv.weight.fill_(1.0)
        base.pre_conv.bias.zero_()
    wave = _wave(L_SHORT)
    with torch.inference_mode():
        mag = base.magnitude(wave)
        stem = base.stem(wave, pad_to_32=True)
        unpadded = base.stem(wave, pad_to_32=False)
    assert stem.shape == (1, 32, 32, 1024) and unpadded.shape == (1, 32, 13, 1024)
    torch.testing.assert_close(stem[:, :, :13], (mag[..., :1024] + 0.5).expand(1, 32, 13, 1024), rtol=1e-6, atol=1e-6)
    assert torch.all(stem[:, :, 13:] == 0)  # padded after bn0: zeros, not bn0(0) = 0.5
    assert torch.equal(unpadded, stem[:, :, :13])


@pytest.mark.parametrize(
    ("pooling", "shape"),
    [("mean", (2, 384)), ("max", (2, 384)), ("meanstd", (2, 768)), ("frames", (2, 1, 384)), ("none", (2, 384, 1, 16))],
)
def test_output_shape_per_pooling(pooling, shape, random_weights):
    """(B, L) -> mean/max (B, C); meanstd (B, 2C); frames (B, T', C); none (B, C, T', 16)."""
    out = _run(build_encoder(random_weights, EncoderConfig(pooling=pooling)), _wave(L_SHORT, batch=2))
    assert tuple(out.shape) == shape and out.dtype == torch.float32


@pytest.mark.parametrize(
    ("layer", "tp", "freq"),
    [
        ("block1", 16, 512),
        ("block2", 8, 256),
        ("block3", 4, 128),
        ("block4", 2, 64),
        ("block5", 1, 32),
        ("block6", 1, 16),
    ],
)
def test_block_tap_shapes(layer, tp, freq, random_weights):
    """layer='block<k>' returns the pooled output of encoder block k: (B, C_k, 32 / 2^k, 1024 / 2^k)."""
    out = _run(build_encoder(random_weights, EncoderConfig(layer=layer, pooling="none")), _wave(L_SHORT))
    assert tuple(out.shape) == (1, LAYER_CHANNELS[layer], tp, freq)


def test_no_pad_uses_floor_pooling():
    """pad_to_32=False: T = 157 frames pool by floor to 78, 39, 19, 9, 4 time steps."""
    model = AudioSepEncoder(EncoderConfig(pooling="none", pad_to_32=False)).eval()
    assert tuple(_run(model, _wave(50001)).shape) == (1, 384, 4, 16)


def test_pooling_is_applied_to_the_feature_map(random_weights):
    """forward == pool_features(feature_map): mean, meanstd (population std), max, frames (mean over freq)."""
    wave = _wave(L_SHORT, batch=2)
    with torch.inference_mode():
        fmap = build_encoder(random_weights, EncoderConfig(pooling="none"))(wave)
        pooled = {
            p: build_encoder(random_weights, EncoderConfig(pooling=p))(wave)
            for p in ("mean", "meanstd", "max", "frames")
        }
    assert torch.equal(pooled["mean"], fmap.mean(dim=(2, 3)))
    assert torch.equal(pooled["meanstd"], torch.cat([fmap.mean(dim=(2, 3)), fmap.std(dim=(2, 3), correction=0)], 1))
    assert torch.equal(pooled["max"], fmap.amax(dim=(2, 3)))
    assert torch.equal(pooled["frames"], fmap.mean(dim=3).transpose(1, 2))
    assert torch.equal(pool_features(fmap, "none"), fmap)


@pytest.mark.parametrize("film", ["none", "zero"])
def test_feature_maps_are_each_layers_feature_map_from_one_pass(film, random_weights):
    """feature_maps(wave, layers) == feature_map of an encoder tapping each layer, bit for bit; the pass
    stops at the deepest requested layer, so only the requested maps come back."""
    wave = _wave(L_SHORT, batch=2)
    model = build_encoder(random_weights, EncoderConfig(film=film))
    with torch.inference_mode():
        maps = model.feature_maps(wave, ["block3", "block1"])
        assert list(maps) == ["block1", "block3"]
        for layer, got in maps.items():
            single = build_encoder(random_weights, EncoderConfig(film=film, layer=layer))
            assert torch.equal(got, single.feature_map(wave)), layer


def test_feature_maps_refuse_unknown_or_no_layers(random_weights):
    model = build_encoder(random_weights, EncoderConfig())
    with pytest.raises(ConfigError, match=r"`layer` must be one of .*got 'block7'"):
        model.feature_maps(_wave(L_SHORT), ["block7"])
    with pytest.raises(ConfigError, match="needs at least one layer"):
        model.feature_maps(_wave(L_SHORT), [])


def test_center_is_conv_block7a_of_block6(random_weights):
    """The center tap is conv_block7a applied to the block6 tap (the taps are consecutive stages)."""
    wave = _wave(L_SHORT)
    block6 = _run(build_encoder(random_weights, EncoderConfig(layer="block6", pooling="none")), wave)
    model = build_encoder(random_weights, EncoderConfig(pooling="none"))
    with torch.inference_mode():
        assert torch.equal(model.base.conv_block7a(block6), model(wave))


def test_film_zero_is_the_bias_shift(random_weights):
    """film='zero' adds β = Linear bias: with all FiLM biases zeroed it equals film='none' bit for bit, else differs."""
    wave = _wave(L_SHORT)
    none = _run(build_encoder(random_weights, EncoderConfig(film="none")), wave)
    zero = build_encoder(random_weights, EncoderConfig(film="zero"))
    assert not torch.allclose(_run(zero, wave), none, atol=1e-3)
    with torch.no_grad():
        for linear in zero.film.children():
            linear.bias.zero_()
    assert torch.equal(_run(zero, wave), none)


def test_film_query_betas_are_w_c_plus_b(random_weights, condition):
    """film='query': β = W·c + b with shape (1, n, 1, 1), and the features differ from film='zero'."""
    model = build_encoder(random_weights, EncoderConfig(film="query", condition=condition))
    c = torch.from_numpy(condition)
    with torch.no_grad():
        for name, cin, cout, _ in BLOCKS:
            beta1, beta2 = model.film.betas(name, model.condition)
            assert beta1.shape == (1, cin, 1, 1) and beta2.shape == (1, cout, 1, 1)
            linear = getattr(model.film, f"{name}->conv_block1->beta2")
            torch.testing.assert_close(beta2[0, :, 0, 0], linear.weight @ c + linear.bias)
    wave = _wave(L_SHORT)
    zero = _run(build_encoder(random_weights, EncoderConfig(film="zero")), wave)
    assert not torch.allclose(_run(model, wave), zero, atol=1e-3)


def test_batch_rows_are_independent(random_weights):
    """Each row of a (3, L) batch equals its own single-item run (eval BN, no cross-row ops)."""
    model = build_encoder(random_weights, EncoderConfig(pooling="none"))
    batch = _wave(L_SHORT, batch=3, seed=3)
    together = _run(model, batch)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], _run(model, batch[i : i + 1]), rtol=1e-5, atol=1e-6)


def test_build_encoder_is_in_eval_mode_and_leaves_running_stats_alone(random_weights):
    """build_encoder returns an eval() module; inference does not touch BN running statistics."""
    model = build_encoder(random_weights)
    assert not any(m.training for m in model.modules())
    before = model.base.encoder_block1.conv_block1.bn1.running_mean.clone()
    _run(model, _wave(L_SHORT))
    assert torch.equal(model.base.encoder_block1.conv_block1.bn1.running_mean, before)
