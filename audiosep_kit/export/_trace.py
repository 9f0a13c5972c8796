"""``torch.export`` of the encoder with dynamic batch and length: the one program ONNX and AOTInductor share.

One hazard specific to torch 2.13: tracing adds guards "this size is not 1" from contiguity checks of
intermediate maps, and with the default 0/1 specialisation the exported range then excludes short
inputs (T' = 1 for L < 10 240 samples). Tracing under ``backed_size_oblivious`` treats sizes 0/1 like
any other size, so the export covers batch >= 1 and length >= 1025. Named ``Dim``s trip a bug in
torch's constraint pretty-printer here, so the axes use ``Dim.DYNAMIC`` with bounds.

The example is (2, 50 001): batch 2 so that batch is not specialised to 1, and an odd length whose
frame count (157) is not a multiple of 32, so the pad-to-32 is non-zero in the trace.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audiosep_kit.errors import ConfigError
from audiosep_kit.model import MIN_SAMPLES

EXAMPLE_SHAPE = (2, 50_001)


def _size_oblivious():
    """torch.export tracing context that does not specialise sizes 0/1 (see the module docstring)."""
    from torch.fx.experimental import _config as fx_config

    return fx_config.patch(backed_size_oblivious=True)


def trace_encoder(module: nn.Module, example_shape: tuple[int, int] = EXAMPLE_SHAPE, device: str = "cpu"):
    """``torch.export`` the module with batch >= 1 and samples >= 1025 dynamic."""
    if example_shape[1] < MIN_SAMPLES or example_shape[0] < 1:
        raise ConfigError(f"the example shape must be (batch >= 1, samples >= {MIN_SAMPLES}); got {example_shape}.")
    example = torch.from_numpy(np.random.default_rng(0).standard_normal(example_shape).astype(np.float32) * 0.1)
    dims = {0: torch.export.Dim.DYNAMIC(min=1), 1: torch.export.Dim.DYNAMIC(min=MIN_SAMPLES)}
    with _size_oblivious(), torch.no_grad():
        return torch.export.export(module.to(device), (example.to(device),), dynamic_shapes=(dims,))
