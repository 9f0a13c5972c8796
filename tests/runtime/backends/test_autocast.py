"""The torch backends' reduced-precision policy (``_autocast``), checked on CPU: which parts run in
which dtype, why the front end must stay float32 (fp16 power-spectrum overflow), and the refusal on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.model import EncoderConfig, build_encoder
from audiosep_kit.runtime import make_backend, needs_cuda
from audiosep_kit.runtime.backends._autocast import AutocastEncoder, Float32, autocast_dtype, autocast_policy

#: A full-scale 1 kHz sine: its power spectrum peaks near (1024 / 2)^2, past float16's 65 504.
FULL_SCALE = np.sin(2 * np.pi * 1000 * np.arange(4096) / 32000).astype(np.float32)[None]


def _output_dtypes(module: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.dtype]:
    """Output dtype of every convolution and BatchNorm during one call of ``module``."""
    seen: dict[str, torch.dtype] = {}

    def record(name):
        def hook(_module, _inputs, output):
            seen.setdefault(name, output.dtype)

        return hook

    for name, sub in module.named_modules():
        if isinstance(sub, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.BatchNorm2d)):
            sub.register_forward_hook(record(name))
    with torch.inference_mode():
        module(x)
    return seen


def test_front_end_runs_float32_and_the_blocks_bf16(random_weights):
    """STFT and bn0 float32, pre_conv and the blocks in bfloat16, the pooled output float32 and close.

    The block1 tap without time padding keeps CPU bfloat16 (emulated on AVX2) to a second or so."""
    config = EncoderConfig(layer="block1", pad_to_32=False)
    wrapped = AutocastEncoder(build_encoder(random_weights, config), torch.bfloat16, "cpu")
    x = torch.from_numpy(0.5 * FULL_SCALE[:, :2048])
    dtypes = _output_dtypes(wrapped, x)
    front = {name: dtype for name, dtype in dtypes.items() if ".stft." in name or ".bn0." in name}
    blocks = {name: dtype for name, dtype in dtypes.items() if name not in front}
    assert set(front.values()) == {torch.float32} and len(front) == 3  # conv_real, conv_imag, bn0
    assert set(blocks.values()) == {torch.bfloat16} and "encoder.base.pre_conv" in blocks
    with torch.inference_mode():
        got, ref = wrapped(x), build_encoder(random_weights, config)(x)
    assert got.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(got, ref).min().item() >= 0.999


def test_float16_stft_overflows_and_the_float32_front_end_does_not(random_weights):
    """Why the policy exists: under fp16 autocast the STFT power of a full-scale sine is inf."""
    stft = build_encoder(random_weights, EncoderConfig()).base.stft
    x = torch.from_numpy(FULL_SCALE)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        real, imag = stft(x)
        assert torch.isinf(real**2 + imag**2).any()
        real, imag = Float32(stft, "cpu")(x)
        power = real**2 + imag**2
    assert power.dtype == torch.float32 and torch.isfinite(power).all() and power.max() > 65504


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", ["eager", "compile"])
def test_reduced_precision_on_cpu_is_refused_naming_the_cpu_path(name, precision, random_weights):
    assert needs_cuda(name, precision) and not needs_cuda(name, "fp32") and not needs_cuda("fast", "bf16")
    with pytest.raises(BackendUnavailableError, match=rf"precision '{precision}' .* CUDA autocast.*fast:bf16"):
        make_backend(name, random_weights, EncoderConfig(), "cpu", precision=precision)


def test_policy_names_what_stays_float32(random_weights):
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("fp16", torch.device("cuda")) is torch.float16
    assert autocast_policy("bf16") == {"autocast": "bf16", "float32_parts": ["stft", "magnitude", "bn0", "pooling"]}
    engine = make_backend("eager", random_weights, EncoderConfig(), "cpu")
    assert (engine.precision, engine.executed()["autocast"]) == ("fp32", None)
    with pytest.raises(ConfigError, match=r"`precision` must be one of \{'fp32', 'bf16', 'fp16'\}; got 'int8'"):
        autocast_dtype("int8", torch.device("cuda"))
