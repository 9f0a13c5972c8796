"""Export the encoder to ONNX with dynamic batch and sample axes, verified against eager before use.

Exporter choice: ``torch.export`` then the dynamo ONNX exporter (opset 18). The graph is traced
once, at a (2, 50 001) example: batch 2 so that batch is not specialised to 1, and an odd length
whose frame count (157) is not a multiple of 32, so the pad-to-32 is non-zero in the trace. The pad is
written on the symbolic size in the encoder (ENCODER_SPEC §6.1), which keeps every length correct.

One hazard specific to torch 2.13: tracing adds guards "this size is not 1" from contiguity checks
of intermediate maps, and with the default 0/1 specialisation the exported range then excludes short
inputs (T' = 1 for L < 10 240 samples). Tracing under ``backed_size_oblivious`` treats sizes 0/1 like
any other size, so the export covers batch >= 1 and length >= 1025. Named ``Dim``s trip a bug in
torch's constraint pretty-printer here, so the axes use ``Dim.DYNAMIC`` with bounds and are renamed
``batch`` / ``samples`` in the ONNX graph afterwards.

``fp16``: the front end (STFT, magnitude, bn0, pre_conv) stays float32, since the power spectrum
overflows float16 (a full-scale tone gives power ~2.6e5 > 65 504) and the 1e-10 clamp underflows;
the seven blocks and FiLM betas run in float16; pooling is done in float32 on the upcast map.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiosep_kit.errors import ConfigError
from audiosep_kit.export.metadata import INPUT_NAME, OUTPUT_NAME, build_metadata, write_onnx_metadata
from audiosep_kit.export.parity import tolerance_for
from audiosep_kit.export.verify import (
    BATCH_SIZES,
    ExportResult,
    failed_report,
    publish,
    report_path_for,
    skipped_report,
    sweep_lengths,
    temporary_path,
    verify_runner,
)
from audiosep_kit.model.checkpoint import LoadedWeights, build_encoder
from audiosep_kit.model.config import LAYERS, MIN_SAMPLES, EncoderConfig
from audiosep_kit.model.encoder import BLOCKS, AudioSepEncoder, pool_features

__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "EXAMPLE_SHAPE",
    "PRECISIONS",
    "HalfBlocksEncoder",
    "encoder_module",
    "trace_encoder",
    "to_onnx_model",
    "export_onnx",
    "save_optimized_model",
]

DEFAULT_OPSET = 18
MIN_OPSET = 17
EXAMPLE_SHAPE = (2, 50_001)
PRECISIONS = ("fp32", "fp16")
_EXPORTER = "torch.export+dynamo"


class HalfBlocksEncoder(nn.Module):
    """The fp16 variant: front end in float32, blocks in float16, pooling in float32.

    Takes a float32 AudioSepEncoder and converts only its blocks, so the STFT kernels and bn0
    statistics keep full precision. (B, L) float32 -> same shapes as the encoder, float32.
    """

    def __init__(self, encoder: AudioSepEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.names = [name for name, *_ in BLOCKS[: LAYERS.index(self.config.layer) + 1]]
        for name in self.names:
            getattr(encoder.base, name).half()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        x = enc.base.stem(wave, self.config.pad_to_32).half()
        for name in self.names:
            betas = (None, None)
            if self.config.film != "none":
                betas = tuple(b.half() for b in enc.film.betas(name, enc.condition))
            x = getattr(enc.base, name)(x, *betas)
        return pool_features(x.float(), self.config.pooling)


def encoder_module(weights: LoadedWeights, config: EncoderConfig, precision: str = "fp32") -> nn.Module:
    """The eval-mode module to export for ``precision`` ('fp32' or 'fp16')."""
    if precision not in PRECISIONS:
        raise ConfigError(f"`precision` must be one of {set(PRECISIONS)}; got {precision!r}.")
    model = build_encoder(weights, config)
    return HalfBlocksEncoder(model).eval() if precision == "fp16" else model


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


def _rename_dims(model) -> None:
    """Give the symbolic axes readable names (``batch``, ``samples``) wherever they appear."""
    names = {}
    for dim, label in zip(model.graph.input[0].type.tensor_type.shape.dim, ("batch", "samples")):
        if dim.dim_param:
            names[dim.dim_param] = label
    if not names:
        return
    token = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = token.sub(lambda m: names[m.group(1)], dim.dim_param)


def to_onnx_model(program, opset: int = DEFAULT_OPSET):
    """ExportedProgram -> onnx.ModelProto (inputs ``waveform``, output ``features``)."""
    if opset < MIN_OPSET:
        raise ConfigError(f"`opset` must be >= {MIN_OPSET} (reflect Pad and the exporter's STFT need it); got {opset}.")
    onnx_program = torch.onnx.export(
        program,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamo=True,
        optimize=True,
        verbose=False,
    )
    model = onnx_program.model_proto
    _rename_dims(model)
    return model


def _verify_onnx(tmp: Path, weights, config, precision: str, sweep: str, batch_sizes) -> dict:
    import onnx

    from audiosep_kit.runtime.backends.eager import make_eager
    from audiosep_kit.runtime.backends.onnx_runtime import make_onnx

    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and InferenceError subclasses
        return failed_report(f"onnx.checker refused the model: {exc}")
    engine = make_onnx(weights, config, "cpu", model_path=tmp, precision=precision)
    reference = make_eager(weights, config, "cpu")
    report = verify_runner(
        engine.run, reference.run, tolerance_for(precision), lengths=sweep_lengths(sweep), batch_sizes=batch_sizes
    )
    report["executed"] = engine.executed()
    return report


def export_onnx(
    weights: LoadedWeights,
    config: EncoderConfig,
    output: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    precision: str = "fp32",
    verify: bool = True,
    sweep: str = "full",
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    save_optimized: str | Path | None = None,
    example_shape: tuple[int, int] = EXAMPLE_SHAPE,
) -> ExportResult:
    """Export, check, verify and publish ``output`` (``.onnx``); see the module docstring.

    ``example_shape`` is the (batch, samples) the graph is traced at; any other shape must give the
    same results (the sweep checks that), so it only matters for testing that property.

    Writes ``<stem>.verify.json`` next to the model. Raises VerificationError (leaving
    ``<stem>.failed.onnx``) if the checker or the sweep refuses the export.
    """
    import onnx

    output = Path(output)
    if output.suffix != ".onnx":
        raise ConfigError(f"the ONNX output must end in .onnx; got {output} (set --output).")
    output.parent.mkdir(parents=True, exist_ok=True)
    lengths = sweep_lengths(sweep)  # validate everything before spending minutes
    if opset < MIN_OPSET:
        raise ConfigError(f"`opset` must be >= {MIN_OPSET} (reflect Pad and the exporter's STFT need it); got {opset}.")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    program = trace_encoder(encoder_module(weights, config, precision), example_shape)
    timings["trace_s"] = time.perf_counter() - start
    model = to_onnx_model(program, opset)
    meta = build_metadata(
        weights, config, precision=precision, exporter=_EXPORTER, opset=opset, example_shape=example_shape
    )
    write_onnx_metadata(model, meta)
    tmp = temporary_path(output)
    onnx.save(model, str(tmp))
    timings["onnx_s"] = time.perf_counter() - start - timings["trace_s"]
    del model, program
    try:
        if verify:
            report = _verify_onnx(tmp, weights, config, precision, sweep, batch_sizes)
            report["lengths"] = list(lengths)
        else:
            report = skipped_report("exported with --no-verify")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    timings["verify_s"] = time.perf_counter() - start - timings["trace_s"] - timings["onnx_s"]
    report.update(metadata=meta, timings=dict(timings))
    path = publish(tmp, output, report)
    if save_optimized is not None:
        timings["optimize_s"] = save_optimized_model(path, save_optimized)
    timings["total_s"] = time.perf_counter() - start
    return ExportResult(path, report_path_for(path), meta, report, timings)


def save_optimized_model(model_path: str | Path, target: str | Path, level: str = "extended") -> float:
    """Save ONNX Runtime's optimised graph of ``model_path`` to ``target``; returns seconds taken.

    'extended' by default: 'all' adds layout transforms (NCHWc) tied to this CPU's instruction set,
    so such a file is only valid on the machine that wrote it. Metadata props are carried over.
    """
    import onnxruntime as ort

    from audiosep_kit.runtime.backends.onnx_runtime import optimization_level

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = optimization_level(level)
    options.optimized_model_filepath = str(target)
    start = time.perf_counter()
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return time.perf_counter() - start
