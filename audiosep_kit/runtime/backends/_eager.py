"""The reference backend: the PyTorch module itself, in eval mode, float32 (CPU or CUDA).

On CUDA it also runs bf16/fp16 autocast with the front end float32 (``_autocast``); fp32 is the default.
"""

from __future__ import annotations

import numpy as np
import torch

from audiosep_kit._devices import set_tf32, torch_device
from audiosep_kit.model import EncoderConfig, LoadedWeights, build_encoder, run_encoder
from audiosep_kit.runtime.backends._autocast import autocast_policy, with_precision


class TorchBackend:
    """Runs a torch callable (the module, or a compiled/loaded form of it) on numpy batches."""

    def __init__(self, fn, device: torch.device, name: str, precision: str = "fp32", extra: dict | None = None):
        self.fn = fn
        self.device = device
        self.name = name
        self.precision = precision
        self._extra = extra or {}

    def run(self, batch: np.ndarray) -> np.ndarray:
        return run_encoder(self.fn, batch, self.device)

    def executed(self) -> dict:
        info = {"device": str(self.device), "torch_threads": torch.get_num_threads()}
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
            info["tf32"] = bool(torch.backends.cudnn.allow_tf32)
        return {**info, **self._extra}


def make_eager(
    weights: LoadedWeights, config: EncoderConfig, device: str = "cpu", *, precision: str = "fp32", tf32: bool = False
) -> TorchBackend:
    dev = torch_device(device)
    if dev.type == "cuda":
        set_tf32(tf32)
    model = with_precision(build_encoder(weights, config).to(dev), precision, dev)
    return TorchBackend(model, dev, "eager", precision, autocast_policy(precision))
