"""``compile`` backend: the encoder through ``torch.compile`` (Inductor), with bounded recompiles.

Shape policy, and why: the batch and the length vary from call to call. Padding inputs to a few
bucket lengths would bound compiles but change the features (the pooled mean over time would include
the pad), so inputs are never padded. Instead the module is compiled with ``dynamic=True``: one graph
with symbolic batch and length. Dynamo still specialises sizes equal to 1 (batch 1; and T' = 1 after
pooling, i.e. inputs under 10 240 samples, 0.32 s), so up to four graphs arise ({B = 1, B > 1} x {T' = 1, T' > 1}),
each compiled once. ``recompile_limit`` (default 8) bounds the graphs of one backend: a call that
pushes past it raises BackendUnavailableError. Dynamo's own ``recompile_limit`` counts per *code
object*, and every encoder instance shares ``AudioSepEncoder.forward``, so several compile backends in
one process (other FiLM modes, layers) would exhaust it together; it is therefore raised to
``_DYNAMO_LIMIT`` and set to fail hard (``fail_on_recompile_limit_hit``) rather than fall back to
eager, so a run never silently leaves the compiled path. Compile mode, graphs compiled, recompiles
and compile time are reported by ``executed()``.

``fullgraph=True``: a graph break would also mean running part of the model eagerly, unannounced.
On CUDA, TF32 is off unless ``tf32=True`` (runtime.devices), and ``precision='bf16'|'fp16'`` compiles the
autocast policy of ``_autocast`` (blocks reduced, STFT and bn0 float32).

CUDA graphs (``mode='reduce-overhead'`` or ``'max-autotune'`` on CUDA): Inductor records one graph per
concrete input shape, i.e. per (batch, length) bucket; the inputs are never padded (see above), so
equal-length batches are what makes a bucket. A graph's output buffer is overwritten by its next
replay, so every call marks a new step (``torch.compiler.cudagraph_mark_step_begin``) and clones the
output before it leaves the backend.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from audiosep_kit._devices import set_tf32, torch_device
from audiosep_kit._validation import check_choice
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.model import EncoderConfig, LoadedWeights, build_encoder
from audiosep_kit.runtime.backends._autocast import autocast_policy, with_precision
from audiosep_kit.runtime.backends._eager import TorchBackend

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The modes in which Inductor captures CUDA graphs (on a CUDA device).
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")
#: Dynamo's per-code-object ceiling, shared by all compile backends of a process (see above).
_DYNAMO_LIMIT = 64
_log = logging.getLogger(__name__)


def _graph_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class CompiledBackend(TorchBackend):
    """TorchBackend over a compiled module that counts the graphs its calls compiled."""

    def __init__(self, fn, device: torch.device, *, mode: str, recompile_limit: int, precision: str = "fp32"):
        self.cudagraphs = device.type == "cuda" and mode in CUDAGRAPH_MODES
        fn = _cudagraph_steps(fn) if self.cudagraphs else fn
        super().__init__(fn, device, "compile", precision, autocast_policy(precision))
        self.mode = mode
        self.recompile_limit = recompile_limit
        self.graphs = 0
        self.compile_s = 0.0
        self.shapes_seen: set[tuple[int, int]] = set()

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch._dynamo

        before = _graph_count()
        if tuple(batch.shape) not in self.shapes_seen:
            _log.info("compile: new shape %s; torch.compile may build a graph (tens of seconds)", batch.shape)
        start = time.perf_counter()
        with torch._dynamo.config.patch(recompile_limit=_DYNAMO_LIMIT, fail_on_recompile_limit_hit=True):
            out = super().run(batch)
        new = _graph_count() - before
        self.shapes_seen.add(tuple(batch.shape))
        if new:  # the call compiled: attribute its time to compilation
            self.graphs += new
            self.compile_s += time.perf_counter() - start
            _log.info("compile: built %d graph(s) in %.1f s (%d so far)", new, time.perf_counter() - start, self.graphs)
            if self.graphs > self.recompile_limit:
                raise BackendUnavailableError(
                    f"the compile backend built {self.graphs} graphs for {len(self.shapes_seen)} input shapes, "
                    f"over its recompile_limit={self.recompile_limit}; raise recompile_limit, or group inputs "
                    "by length (equal-length batches) so fewer shapes reach it."
                )
        return out

    def executed(self) -> dict:
        return {
            **super().executed(),
            "compiler": "inductor",
            "compile_mode": self.mode,
            "cudagraphs": self.cudagraphs,
            "dynamic": True,
            "graphs_compiled": self.graphs,
            "recompiles": max(self.graphs - 1, 0),
            "recompile_limit": self.recompile_limit,
            "compile_s": round(self.compile_s, 3),
            "distinct_input_shapes": len(self.shapes_seen),
        }


def _cudagraph_steps(compiled):
    """Each call a new CUDA-graph step, its output cloned (the next replay overwrites the graph's buffer)."""

    def call(x: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(x).clone()

    return call


def make_compiled(
    weights: LoadedWeights,
    config: EncoderConfig,
    device: str = "cpu",
    *,
    mode: str = "default",
    recompile_limit: int = 8,
    precision: str = "fp32",
    tf32: bool = False,
) -> CompiledBackend:
    """Compile lazily: the first call of each new graph pays the Inductor compile (about a minute
    on two CPU cores for the full encoder)."""
    check_choice("mode", mode, COMPILE_MODES)
    if not isinstance(recompile_limit, int) or recompile_limit < 1:
        raise ConfigError(f"`recompile_limit` must be a positive integer; got {recompile_limit!r}.")
    dev = torch_device(device)
    if dev.type == "cuda":
        set_tf32(tf32)
    model = with_precision(build_encoder(weights, config).to(dev), precision, dev)
    compiled = torch.compile(model, mode=mode, dynamic=True, fullgraph=True)
    return CompiledBackend(compiled, dev, mode=mode, recompile_limit=recompile_limit, precision=precision)
