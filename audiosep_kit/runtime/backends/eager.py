"""The reference backend: the PyTorch module itself, in eval mode, float32 (CPU or CUDA)."""

from __future__ import annotations

import numpy as np
import torch

from audiosep_kit.model.checkpoint import LoadedWeights, build_encoder
from audiosep_kit.model.config import EncoderConfig
from audiosep_kit.runtime.backends import register_backend
from audiosep_kit.runtime.devices import set_tf32, torch_device

__all__ = ["TorchBackend", "make_eager"]


class TorchBackend:
    """Runs a torch callable (the module, or a compiled/loaded form of it) on numpy batches."""

    def __init__(self, fn, device: torch.device, name: str, precision: str = "fp32", extra: dict | None = None):
        self.fn = fn
        self.device = device
        self.name = name
        self.precision = precision
        self._extra = extra or {}

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            y = self.fn(x)
        return y.float().cpu().numpy()

    def executed(self) -> dict:
        info = {"device": str(self.device), "torch_threads": torch.get_num_threads()}
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
            info["tf32"] = bool(torch.backends.cudnn.allow_tf32)
        return {**info, **self._extra}


@register_backend("eager")
def make_eager(
    weights: LoadedWeights, config: EncoderConfig, device: str = "cpu", *, tf32: bool = False
) -> TorchBackend:
    dev = torch_device(device)
    if dev.type == "cuda":
        set_tf32(tf32)
    model = build_encoder(weights, config).to(dev)
    return TorchBackend(model, dev, "eager")
