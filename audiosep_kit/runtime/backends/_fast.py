"""``fast`` backend: the encoder rewritten for CPU inference with oneDNN fused convolutions.

Why it is faster than eager (5 s x 8 on two Zen 4 cores: see benchmarks/README.md for numbers):

* **bf16 blocks** (``precision='bf16'``, asked for explicitly): the seven blocks run in bfloat16, which oneDNN executes
  with AVX512-BF16 dot products (about 2.5x the fp32 matmul rate on Zen 4). The front end (STFT,
  magnitude, bn0) stays float32, as ENCODER_SPEC §6.7 asks; pooling is done in float32.
  ``precision='fp32'`` (the default, as for every backend: reduced precision is never implied) keeps
  everything float32 (within the fp32 parity tolerance of eager).
* **channels-last layout and folded BatchNorm**: ``bn2`` (+ FiLM ``beta2``) is folded into ``conv1``
  (ENCODER_SPEC §6.4), ``bn1`` (+ ``beta1``) becomes one multiply-add, and the residual sum is fused
  into ``conv2`` as a oneDNN post-op (``mkldnn::_convolution_pointwise_``).
* **no page faults per call**: every large intermediate lives in a buffer arena that is kept between
  calls (grown to the largest shape seen), because a fresh 268 MB tensor costs ~0.1 s of page faults.
  The price is memory held by the backend: about 3 x B x 32 x Tp x 1024 elements.
* **FFT STFT** (``stft='auto'``): when the checkpoint's STFT kernels are the Hann-windowed DFT (every
  AudioSep checkpoint), the magnitude is computed with ``torch.stft``; otherwise the conv kernels run.

What it is not: bit-exact. fp32 stays within the fp32 tolerance of ``audiosep_kit.numerics`` (rel ~2e-7 measured);
bf16 is a reduced-precision variant judged by cosine (>= 0.9999 measured on ESC-50 clips).
CPU only: oneDNN's fused kernels are the point, so ``device='cuda'`` is refused.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.model import (
    BLOCKS,
    HOP,
    LAYERS,
    N_FFT,
    AudioSepEncoder,
    EncoderConfig,
    LoadedWeights,
    build_encoder,
    dft_kernels,
    pool_features,
)
from audiosep_kit.runtime.backends._eager import TorchBackend

#: The precisions the fast backend offers (names from audiosep_kit.numerics), default first.
FAST_PRECISIONS = ("fp32", "bf16")
_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
STFT_MODES = ("auto", "fft", "conv")
_SLOPE = 0.01
_EPS_POWER = 1e-10
_TIME_MULTIPLE = 32
_ONE = [1, 1]


def _mkldnn():
    return torch.ops.mkldnn


def _bn_affine(bn: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as y = scale * x + shift (per channel), in float32."""
    mean, var = bn.running_mean, bn.running_var
    assert mean is not None and var is not None  # eval-mode BN with tracked statistics
    scale = bn.weight / torch.sqrt(var + bn.eps)
    return scale, bn.bias - mean * scale


@dataclass(frozen=True)
class FoldedBlock:
    """One ConvBlockRes (+ pool) with BN and FiLM folded; weights channels-last in the run dtype."""

    scale1: torch.Tensor  # (1, Cin, 1, 1): bn1 scale
    shift1: torch.Tensor  # (1, Cin, 1, 1): bn1 shift + beta1
    weight1: torch.Tensor  # conv1 * bn2 scale
    bias1: torch.Tensor  # bn2 shift + beta2
    weight2: torch.Tensor
    shortcut: tuple[torch.Tensor, torch.Tensor] | None
    pool: tuple[int, int]


def _fold_block(model: AudioSepEncoder, name: str, pool: tuple[int, int], dtype: torch.dtype) -> FoldedBlock:
    block = getattr(model.base, name).conv_block1
    scale1, shift1 = _bn_affine(block.bn1)
    scale2, shift2 = _bn_affine(block.bn2)
    if model.config.film != "none":
        beta1, beta2 = model.film.betas(name, model.film_condition)
        shift1, shift2 = shift1 + beta1.reshape(-1), shift2 + beta2.reshape(-1)

    def cl(w: torch.Tensor) -> torch.Tensor:
        return w.to(dtype).contiguous(memory_format=torch.channels_last)

    shortcut = None
    if block.is_shortcut:
        shortcut = (cl(block.shortcut.weight), block.shortcut.bias.to(dtype))
    return FoldedBlock(
        scale1=scale1.to(dtype).reshape(1, -1, 1, 1),
        shift1=shift1.to(dtype).reshape(1, -1, 1, 1),
        weight1=cl(block.conv1.weight * scale2[:, None, None, None]),
        bias1=shift2.to(dtype),
        weight2=cl(block.conv2.weight),
        shortcut=shortcut,
        pool=pool,
    )


@functools.lru_cache(maxsize=1)
def _dft_kernels() -> tuple[torch.Tensor, torch.Tensor]:
    return dft_kernels()  # 0.7 s of float64 complex powers: computed once per process


def kernels_are_dft(model: AudioSepEncoder, atol: float = 1e-5) -> bool:
    """True when the STFT conv kernels are the periodic-Hann DFT (so torch.stft computes the same)."""
    real, imag = _dft_kernels()
    stft = model.base.stft
    return bool(
        torch.allclose(stft.conv_real.weight, real, rtol=0, atol=atol)
        and torch.allclose(stft.conv_imag.weight, imag, rtol=0, atol=atol)
    )


class _Arena:
    """Named flat buffers, grown on demand and kept between calls (see module docstring)."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A channels-last (B, C, H, W) view on buffer ``name`` (contents undefined)."""
        batch, channels, height, width = shape
        size = batch * channels * height * width
        buffer = self.buffers.get(name)
        if buffer is None or buffer.numel() < size:
            buffer = self.buffers[name] = torch.empty(size, dtype=self.dtype)
        return buffer[:size].view(batch, height, width, channels).permute(0, 3, 1, 2)

    @property
    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.buffers.values())


class FastEncoder:
    """(B, L) float32 waveforms -> the configured features, float32 (see module docstring)."""

    def __init__(self, model: AudioSepEncoder, precision: str = "bf16", stft: str = "auto") -> None:
        self.config = model.config
        self.dtype = _DTYPES[precision]
        self.stft_mode = ("fft" if kernels_are_dft(model) else "conv") if stft == "auto" else stft
        self._stft_module = model.base.stft
        scale0, shift0 = _bn_affine(model.base.bn0)
        self.scale0, self.shift0 = scale0[:-1].clone(), shift0[:-1].clone()  # Nyquist bin is dropped
        self.pre_weight = model.base.pre_conv.weight.reshape(1, -1, 1, 1).to(self.dtype)
        pre_bias = model.base.pre_conv.bias
        assert pre_bias is not None  # pre_conv has a bias in every AudioSep checkpoint
        self.pre_bias = pre_bias.reshape(1, -1, 1, 1).to(self.dtype)
        self.window = torch.hann_window(N_FFT, periodic=True)
        last = LAYERS.index(self.config.layer)
        self.blocks = [_fold_block(model, name, pool, self.dtype) for name, _, _, pool in BLOCKS[: last + 1]]
        self.arena = _Arena(self.dtype)
        self._lock = threading.Lock()

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, L) -> |STFT| (B, T, 1025) float32, power clamped at 1e-10 as in the encoder."""
        if self.stft_mode == "conv":
            real, imag = self._stft_module(wave)
            power = real[:, 0] ** 2 + imag[:, 0] ** 2
            return power.clamp_(min=_EPS_POWER).sqrt_()
        spec = torch.stft(wave, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect", return_complex=True)
        parts = torch.view_as_real(spec)
        power = parts[..., 0] ** 2 + parts[..., 1] ** 2
        return power.clamp_(min=_EPS_POWER).sqrt_().transpose(1, 2)

    def stem(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, L) -> pre_conv output (B, 32, Tp, 1024), channels-last in the arena."""
        x = torch.addcmul(self.shift0, self.magnitude(wave)[..., :-1], self.scale0)
        if self.config.pad_to_32:
            x = F.pad(x, (0, 0, 0, (-x.shape[1]) % _TIME_MULTIPLE))
        x = x.to(self.dtype)[:, None]
        batch, _, frames, bins = x.shape
        wide = x.expand(batch, self.pre_weight.shape[1], frames, bins)
        return torch.addcmul(self.pre_bias, wide, self.pre_weight, out=self.arena.get("R", tuple(wide.shape)))

    def _conv(self, accumulate: torch.Tensor, x: torch.Tensor, weight, bias, padding: int) -> torch.Tensor:
        """accumulate += conv(x, weight) + bias, in place (oneDNN sum post-op)."""
        pad = [padding, padding]
        return _mkldnn()._convolution_pointwise_.binary(
            accumulate, x, weight, bias, pad, _ONE, _ONE, 1, "add", 1.0, None, [], None
        )

    def _block(self, index: int, x: torch.Tensor, block: FoldedBlock) -> torch.Tensor:
        batch, _, frames, bins = x.shape
        out_shape = (batch, block.weight1.shape[0], frames, bins)
        h = torch.addcmul(block.shift1, x, block.scale1, out=self.arena.get("H", tuple(x.shape)))
        F.leaky_relu_(h, _SLOPE)
        h2 = F.leaky_relu_(self._conv(self.arena.get("Z", out_shape).zero_(), h, block.weight1, block.bias1, 1), _SLOPE)
        residual = x  # no shortcut: x is not needed afterwards, so conv2 accumulates into it
        if block.shortcut is not None:  # "S" never holds x: blocks with a shortcut all pool
            residual = self._conv(self.arena.get("S", out_shape).zero_(), x, *block.shortcut, 0)
        out = self._conv(residual, h2, block.weight2, None, 1)
        if block.pool == (1, 1):
            return out
        kernel = list(block.pool)
        pooled = self.arena.get(f"P{index % 2}", (batch, out_shape[1], frames // kernel[0], bins // kernel[1]))
        return torch._C._nn.avg_pool2d(out, kernel, kernel, [0, 0], False, True, None, out=pooled)  # type: ignore[call-arg]

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        with self._lock:  # the arena is shared state: one call at a time
            x = self.stem(wave)
            for index, block in enumerate(self.blocks):
                x = self._block(index, x, block)
            features = x.to(torch.float32, copy=True)  # never hand out a view of the arena
        return pool_features(features, self.config.pooling)


class FastBackend(TorchBackend):
    """TorchBackend over a FastEncoder; ``executed()`` says precision, STFT mode and arena size."""

    def __init__(self, encoder: FastEncoder, precision: str) -> None:
        super().__init__(encoder, torch.device("cpu"), "fast", precision)
        self.encoder = encoder

    def executed(self) -> dict:
        return {
            **super().executed(),
            "engine": "oneDNN fused conv (mkldnn::_convolution_pointwise_)",
            "blocks_dtype": str(self.encoder.dtype).replace("torch.", ""),
            "front_end_dtype": "float32",
            "stft": self.encoder.stft_mode,
            "layout": "channels_last",
            "arena_bytes": self.encoder.arena.nbytes,
        }


def bf16_is_native() -> bool:
    """oneDNN runs bf16 natively here (AVX512-BF16 or AMX); otherwise it would emulate it, slowly."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _check_supported(precision: str, device: str, stft: str) -> None:
    check_choice("precision", precision, FAST_PRECISIONS)
    check_choice("stft", stft, STFT_MODES)
    if device != "cpu":
        raise BackendUnavailableError(
            f"the fast backend runs on CPU only (oneDNN fused kernels); got device={device!r}. "
            "Use backend 'eager', 'compile' or 'onnx' for CUDA."
        )
    if not torch.backends.mkldnn.is_available():
        raise BackendUnavailableError("the fast backend needs a torch build with oneDNN (mkldnn); this one has none.")
    if precision == "bf16" and not bf16_is_native():
        raise BackendUnavailableError(
            "precision='bf16' needs a CPU with native bfloat16 support (AVX512-BF16 or AMX); this one has "
            "none, and emulated bf16 would be slower than fp32. Use precision='fp32'."
        )


def make_fast(
    weights: LoadedWeights, config: EncoderConfig, device: str = "cpu", *, precision: str = "fp32", stft: str = "auto"
) -> FastBackend:
    """Build the fused CPU encoder; ``stft='fft'`` on non-DFT kernels raises instead of computing wrong."""
    _check_supported(precision, device, stft)
    model = build_encoder(weights, config)
    if stft == "fft" and not kernels_are_dft(model):
        raise ConfigError(
            "stft='fft' needs the checkpoint's STFT kernels to be the Hann DFT; these are not. Use 'conv'."
        )
    with torch.no_grad():
        encoder = FastEncoder(model, precision, stft)
    return FastBackend(encoder, precision)
