"""Reduced precision for the torch backends on CUDA: the blocks under ``torch.autocast``, the front end float32.

Why the front end stays float32 (ENCODER_SPEC §6.7): the power spectrum of a full-scale sine is about
(1024 / 2)^2 ~ 2.6e5 per bin, past float16's largest finite value (65 504), so an autocast STFT would
turn loud clips into inf. The STFT and bn0 (the per-bin normalisation that brings the magnitude to
unit scale) therefore run with autocast disabled, on float32 inputs; the magnitude between them is
computed from their float32 outputs, so it is float32 too. From ``pre_conv`` on, autocast runs the
convolutions in the reduced dtype; the tap's map is cast back to float32 before pooling, so the mean
over time and frequency is a float32 sum.

The policy is for CUDA: on CPU, autocast emulates bfloat16 on machines without native support and
runs float16 convolutions slowly, and the ``fast`` backend (oneDNN bf16) is the CPU reduced-precision
path, so :func:`autocast_dtype` refuses ``device='cpu'`` for reduced precisions. The wrapper itself is
device-agnostic, which lets CPU tests check the policy (which modules run in which dtype).
"""

from __future__ import annotations

import torch
from torch import nn

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import BackendUnavailableError
from audiosep_kit.model import AudioSepEncoder, pool_features

#: The precisions of the eager and compile backends, default first (names of audiosep_kit.numerics).
TORCH_PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: float32, no autocast).

    Reduced precisions are CUDA precisions (see the module docstring): on CPU they raise
    BackendUnavailableError naming the CPU path instead.
    """
    check_choice("precision", precision, TORCH_PRECISIONS)
    if precision == "fp32":
        return None
    if device.type != "cuda":
        raise BackendUnavailableError(
            f"precision {precision!r} of the eager and compile backends is CUDA autocast; got device {str(device)!r}. "
            "On CPU use fast:bf16 (oneDNN bfloat16) or onnx:fp16, or --device cuda."
        )
    return _DTYPES[precision]


class Float32(nn.Module):
    """Runs ``inner`` with autocast disabled on float32 inputs: the front-end parts of the policy."""

    def __init__(self, inner: nn.Module, device_type: str) -> None:
        super().__init__()
        self.inner = inner
        self.device_type = device_type

    def forward(self, x: torch.Tensor):
        with torch.autocast(self.device_type, enabled=False):
            return self.inner(x.float())


class AutocastEncoder(nn.Module):
    """(B, L) float32 -> pooled float32 features; blocks under autocast(``dtype``), STFT and bn0 float32.

    Takes ownership of ``encoder``: its ``base.stft`` and ``base.bn0`` are wrapped in :class:`Float32`.
    """

    def __init__(self, encoder: AudioSepEncoder, dtype: torch.dtype, device_type: str) -> None:
        super().__init__()
        check_choice("autocast dtype", dtype, tuple(_DTYPES.values()))
        for part in ("stft", "bn0"):  # add_module replaces the submodule of that name
            encoder.base.add_module(part, Float32(getattr(encoder.base, part), device_type))
        self.encoder = encoder
        self.dtype = dtype
        self.device_type = device_type

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            feature_map = self.encoder.feature_map(wave)
        return pool_features(feature_map.float(), self.encoder.config.pooling)


def with_precision(encoder: AudioSepEncoder, precision: str, device: torch.device) -> nn.Module:
    """``encoder`` itself for fp32, else wrapped by :class:`AutocastEncoder` (CUDA only, see above)."""
    dtype = autocast_dtype(precision, device)
    return encoder if dtype is None else AutocastEncoder(encoder, dtype, device.type)


def autocast_policy(precision: str) -> dict:
    """What ``executed()`` reports of the precision policy (the same words for eager and compile)."""
    if precision == "fp32":
        return {"autocast": None}
    return {"autocast": precision, "float32_parts": ["stft", "magnitude", "bn0", "pooling"]}
