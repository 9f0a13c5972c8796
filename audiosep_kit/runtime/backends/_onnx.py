"""ONNX Runtime backend: an exported encoder run by ORT on CPU or CUDA (optionally TensorRT).

Explicit, never silent: the provider list is built from ``device`` (cpu -> CPU EP; cuda[:N] -> CUDA
EP then CPU; ``tensorrt=True`` -> TensorRT EP first), threads are set in SessionOptions, and after the
session is created its active providers are checked. ORT itself falls back to CPU when the CUDA EP
fails to load (missing CUDA/cuDNN libraries), printing a log line; here that raises
BackendUnavailableError instead. CUDA runs with TF32 off (``use_tf32=0``) unless ``tf32=True``.

The model comes from ``model_path`` (an ``audiosep-export onnx`` file) or, without one, from the
export layer's cache (``audiosep_kit.export.cached_artifact``: keyed by weights sha256 + encoder
options + precision + opset, under ``$AUDIOSEP_CACHE/onnx/``). Either way its metadata must match the
requested weights and options (ArtifactMismatchError otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from audiosep_kit._devices import parse_device
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.export import (
    cached_artifact,
    check_metadata,
    import_onnxruntime,
    probe_artifact,
    read_onnx_metadata,
    session_options,
)
from audiosep_kit.model import MIN_SAMPLES, EncoderConfig, LoadedWeights
from audiosep_kit.runtime.backends._ort_providers import CUDA_EP, TENSORRT_EP, providers_for

__all__ = ["OnnxBackend", "make_onnx", "providers_for"]


class OnnxBackend:
    """One ORT InferenceSession over an exported encoder; (B, L) float32 -> features float32."""

    name = "onnx"

    def __init__(self, session, model_path: Path, precision: str, device: str, info: dict, io_binding: bool):
        self.session = session
        self.model_path = model_path
        self.precision = precision
        self.device = device
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.io_binding = io_binding
        self._info = info

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] < MIN_SAMPLES:
            raise ConfigError(
                f"the onnx backend takes (batch, samples >= {MIN_SAMPLES}) float32; got shape {batch.shape}."
            )
        if self.io_binding:
            return self._run_bound(batch)
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def _run_bound(self, batch: np.ndarray) -> np.ndarray:
        # Output allocated on the GPU by ORT and copied back once: saves a synchronising copy per run.
        device_id = parse_device(self.device)[1] or 0
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, batch)
        binding.bind_output(self.output_name, "cuda", device_id)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def executed(self) -> dict:
        return {
            "device": self.device,
            "providers": self.session.get_providers(),
            "provider_options": {k: dict(v) for k, v in self.session.get_provider_options().items()},
            "model_path": str(self.model_path),
            "io_binding": self.io_binding,
            **self._info,
        }


def _check_active(session, requested: list, device: str) -> None:
    """Refuse a session whose first active provider is not the one asked for (ORT's silent fallback)."""
    ort = import_onnxruntime()
    active = session.get_providers()
    wanted = requested[0][0]
    if not active or active[0] != wanted:
        raise BackendUnavailableError(
            f"device {device!r} needs {wanted}, but ONNX Runtime {ort.__version__} activated {active} "
            f"(the provider failed to load; ONNX Runtime logged the reason above, typically CUDA/cuDNN "
            f"libraries that do not match its build). Install the CUDA and cuDNN versions your onnxruntime-gpu "
            f"requires, or use --device cpu."
        )


def make_onnx(
    weights: LoadedWeights,
    config: EncoderConfig,
    device: str = "cpu",
    *,
    model_path: str | Path | None = None,
    precision: str = "fp32",
    providers: list | None = None,
    tensorrt: bool = False,
    tf32: bool = False,
    conv_algo_search: str = "EXHAUSTIVE",
    prefer_nhwc: bool = False,
    trt_buckets_s: Sequence[float] | None = None,
    trt_max_batch: int = 128,
    trt_cache_dir: str | Path | None = None,
    intra_op_threads: int | None = None,
    inter_op_threads: int = 1,
    graph_optimization: str = "all",
    io_binding: bool | None = None,
    cache_dir: str | Path | None = None,
    opset: int | None = None,
) -> OnnxBackend:
    """Build the ORT backend; see the module docstring. ``intra_op_threads`` defaults to torch's
    thread count so eager and ORT timings use the same cores. The CUDA and TensorRT options
    (``conv_algo_search``, ``prefer_nhwc``, ``trt_*``) are described in ``_ort_providers``."""
    ort = import_onnxruntime()
    requested = providers or providers_for(
        device,
        tensorrt=tensorrt,
        tf32=tf32,
        precision=precision,
        conv_algo_search=conv_algo_search,
        prefer_nhwc=prefer_nhwc,
        trt_buckets_s=trt_buckets_s,
        trt_max_batch=trt_max_batch,
        trt_cache_dir=trt_cache_dir,
    )
    requested = [p if isinstance(p, tuple) else (p, {}) for p in requested]
    missing = [name for name, _ in requested if name not in ort.get_available_providers()]
    if missing:
        raise BackendUnavailableError(
            f"this onnxruntime build ({ort.__version__}) has no {missing}; it offers "
            f"{ort.get_available_providers()}. For CUDA install onnxruntime-gpu ('audiosep-kit[gpu]'), "
            "or use --device cpu."
        )
    path = (
        Path(model_path)
        if model_path is not None
        else cached_artifact("onnx", weights, config, precision=precision, opset=opset, cache_dir=cache_dir).path
    )
    check_metadata(read_onnx_metadata(path), weights.sha256, config, artifact=str(path), precision=precision)
    intra = intra_op_threads or torch.get_num_threads()
    options = session_options(intra, inter_op_threads, graph_optimization)
    session = ort.InferenceSession(str(path), options, providers=requested)
    _check_active(session, requested, device)
    on_gpu = session.get_providers()[0] in (CUDA_EP, TENSORRT_EP)
    if io_binding and not on_gpu:
        raise ConfigError(f"io_binding=True binds outputs on the GPU; this session runs on {session.get_providers()}.")
    info = {
        "intra_op_threads": intra,
        "inter_op_threads": inter_op_threads,
        "graph_optimization": graph_optimization,
        "precision": precision,
        "onnxruntime": ort.__version__,
    }
    backend = OnnxBackend(
        session, path, precision, device, info, io_binding=on_gpu if io_binding is None else io_binding
    )
    # Probed through backend.run, the path every feature takes; ``info`` is what executed() reports.
    info["load_check"] = probe_artifact(backend.run, weights, config, precision=precision, artifact=path, kind="onnx")
    return backend
