"""Export the encoder to ONNX with dynamic batch and sample axes, verified against eager before use.

Exporter choice: ``torch.export`` (``_trace``) then the dynamo ONNX exporter (opset 18). The pad is
written on the symbolic size in the encoder (ENCODER_SPEC §6.1), which keeps every length correct; the
symbolic axes are renamed ``batch`` / ``samples`` in the ONNX graph afterwards.

``fp16``: the front end (STFT, magnitude, bn0, pre_conv) stays float32, since the power spectrum
overflows float16 (a full-scale tone gives power ~2.6e5 > 65 504) and the 1e-10 clamp underflows;
the seven blocks and FiLM betas run in float16; pooling is done in float32 on the upcast map.

This module also owns how an ONNX Runtime session is opened (import, graph optimisation level,
threads), because verification runs the artifact exactly as the ``onnx`` backend will.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.export._metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    build_metadata,
    check_metadata,
    read_onnx_metadata,
    write_onnx_metadata,
)
from audiosep_kit.export._pipeline import (
    BATCH_SIZES,
    ExportResult,
    failed_report,
    sweep_lengths,
    verified_export,
    verify_runner,
)
from audiosep_kit.export._trace import EXAMPLE_SHAPE, trace_encoder
from audiosep_kit.model import (
    BLOCKS,
    LAYERS,
    AudioSepEncoder,
    EncoderConfig,
    LoadedWeights,
    build_encoder,
    pool_features,
    run_encoder,
)
from audiosep_kit.numerics import tolerance_for

DEFAULT_OPSET = 18
MIN_OPSET = 17
#: The precisions an ONNX export offers (names from audiosep_kit.numerics).
ONNX_PRECISIONS = ("fp32", "fp16")
GRAPH_OPTIMIZATIONS = ("disabled", "basic", "extended", "all")
_EXPORTER = "torch.export+dynamo"
_log = logging.getLogger(__name__)


def import_onnxruntime():
    """The onnxruntime module, or BackendUnavailableError saying which extra installs it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "the 'onnx' backend needs onnxruntime: pip install 'audiosep-kit[cpu]' (or [gpu])."
        ) from exc
    return onnxruntime


def optimization_level(name: str):
    """'disabled' | 'basic' | 'extended' | 'all' -> ORT GraphOptimizationLevel."""
    check_choice("graph_optimization", name, GRAPH_OPTIMIZATIONS)
    level = import_onnxruntime().GraphOptimizationLevel
    return {
        "disabled": level.ORT_DISABLE_ALL,
        "basic": level.ORT_ENABLE_BASIC,
        "extended": level.ORT_ENABLE_EXTENDED,
        "all": level.ORT_ENABLE_ALL,
    }[name]


def session_options(intra: int, inter: int = 1, graph_optimization: str = "all"):
    """SessionOptions with explicit threads, execution mode and graph optimisation level."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra
    options.inter_op_num_threads = inter
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL if inter == 1 else ort.ExecutionMode.ORT_PARALLEL
    options.graph_optimization_level = optimization_level(graph_optimization)
    return options


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
            betas: tuple[torch.Tensor | None, ...] = (None, None)
            if self.config.film != "none":
                betas = tuple(b.half() for b in enc.film.betas(name, enc.film_condition))
            x = getattr(enc.base, name)(x, *betas)
        return pool_features(x.float(), self.config.pooling)


def encoder_module(weights: LoadedWeights, config: EncoderConfig, precision: str = "fp32") -> nn.Module:
    """The eval-mode module to export for ``precision`` ('fp32' or 'fp16')."""
    check_choice("precision", precision, ONNX_PRECISIONS)
    model = build_encoder(weights, config)
    return HalfBlocksEncoder(model).eval() if precision == "fp16" else model


def _rename_dims(model) -> None:
    """Give the symbolic axes readable names (``batch``, ``samples``) wherever they appear."""
    names = {}
    for dim, label in zip(model.graph.input[0].type.tensor_type.shape.dim, ("batch", "samples"), strict=False):
        if dim.dim_param:
            names[dim.dim_param] = label
    if not names:
        return
    token = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = token.sub(lambda m: names[m.group(1)], dim.dim_param)


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise ConfigError(f"`opset` must be >= {MIN_OPSET} (reflect Pad and the exporter's STFT need it); got {opset}.")


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@contextlib.contextmanager
def _quiet_exporter():
    """Silence two harmless messages of torch's dynamo ONNX exporter, for this call only.

    1. Its op registry logs a WARNING per torchvision op ("torchvision is not installed. Skipping
       torchvision::nms", roi_align, ...): the encoder uses no torchvision op, so nothing is missing.
    2. Copying the exported program's pytree specs raises torch's own FutureWarning
       "`isinstance(treespec, LeafSpec)` is deprecated" inside torch (torch 2.13): not our code, and
       nothing we can change. Every other warning and log line still shows.
    """
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    drop = _DropMessage("torchvision is not installed")
    registry.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
            )
            yield
    finally:
        registry.removeFilter(drop)


def to_onnx_model(program, opset: int = DEFAULT_OPSET):
    """ExportedProgram -> onnx.ModelProto (inputs ``waveform``, output ``features``)."""
    _check_opset(opset)
    with _quiet_exporter():
        onnx_program = torch.onnx.export(
            program,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    if onnx_program is None:
        raise ConfigError("torch.onnx.export returned no program for the traced encoder; report this as a bug.")
    model = onnx_program.model_proto
    _rename_dims(model)
    return model


def _verify_onnx(tmp: Path, weights, config, precision: str, sweep: str, batch_sizes) -> dict:
    """onnx.checker, then the sweep: ORT (CPU, optimisation 'all', torch's thread count) vs eager."""
    import onnx

    _log.info("onnx: onnx.checker (full check, shape inference)")
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and InferenceError subclasses
        return failed_report(f"onnx.checker refused the model: {exc}")
    check_metadata(read_onnx_metadata(tmp), weights.sha256, config, artifact=str(tmp), precision=precision)
    ort = import_onnxruntime()
    _log.info("onnx: opening an ONNX Runtime session (CPU, graph optimisation 'all')")
    session = ort.InferenceSession(
        str(tmp), session_options(torch.get_num_threads()), providers=["CPUExecutionProvider"]
    )
    reference = build_encoder(weights, config)
    report = verify_runner(
        lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0],
        lambda x: run_encoder(reference, x),
        tolerance_for(precision),
        lengths=sweep_lengths(sweep),
        batch_sizes=batch_sizes,
        label="onnx",
    )
    report["executed"] = {
        "providers": session.get_providers(),
        "graph_optimization": "all",
        "onnxruntime": ort.__version__,
    }
    report["lengths"] = list(sweep_lengths(sweep))
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
    sweep_lengths(sweep)  # validate everything before spending minutes
    _check_opset(opset)
    check_choice("precision", precision, ONNX_PRECISIONS)

    def build(tmp: Path) -> tuple[dict[str, str], dict[str, float]]:
        start = time.perf_counter()
        _log.info("onnx: tracing the %s encoder with torch.export (example %s)", precision, example_shape)
        program = trace_encoder(encoder_module(weights, config, precision), example_shape)
        traced = time.perf_counter()
        _log.info("onnx: converting to ONNX (opset %d, dynamo exporter)", opset)
        model = to_onnx_model(program, opset)
        meta = build_metadata(
            weights, config, precision=precision, exporter=_EXPORTER, opset=opset, example_shape=example_shape
        )
        write_onnx_metadata(model, meta)
        _log.info("onnx: writing %s", tmp)
        onnx.save(model, str(tmp))
        return meta, {"trace_s": traced - start, "onnx_s": time.perf_counter() - traced}

    check = (lambda tmp: _verify_onnx(tmp, weights, config, precision, sweep, batch_sizes)) if verify else None
    result = verified_export(output, build, check)
    if save_optimized is not None:
        result.timings["optimize_s"] = save_optimized_model(result.path, save_optimized)
    return result


def save_optimized_model(model_path: str | Path, target: str | Path, level: str = "extended") -> float:
    """Save ONNX Runtime's optimised graph of ``model_path`` to ``target``; returns seconds taken.

    'extended' by default: 'all' adds layout transforms (NCHWc) tied to this CPU's instruction set,
    so such a file is only valid on the machine that wrote it. Metadata props are carried over.
    """
    ort = import_onnxruntime()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = optimization_level(level)
    options.optimized_model_filepath = str(target)
    _log.info("onnx: saving ONNX Runtime's optimised graph (%s) to %s", level, target)
    start = time.perf_counter()
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return time.perf_counter() - start
