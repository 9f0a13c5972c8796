"""Package the encoder with ``torch.export`` + AOTInductor into a ``.pt2`` that runs without its Python code.

The exported program is the same one the ONNX export uses (``onnx_export.trace_encoder``: dynamic
batch >= 1 and length >= 1025, traced size-oblivious so short inputs are not excluded). AOTInductor
generates and compiles C++ with the system compiler: on two CPU cores that takes about 1.5 minutes
for the full encoder (measured: 77 s compile + 5 s tracing). The metadata record (weights sha256,
encoder options, versions; see export.metadata) is stored inside the package as
``aot_inductor.metadata`` and read back by the ``aoti`` backend with ``get_metadata()``.

A package is tied to the torch version that built it (generated C++ against that libtorch) and to
the device kind it was compiled for; the backend refuses others.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from audiosep_kit.errors import ConfigError
from audiosep_kit.export.metadata import build_metadata
from audiosep_kit.export.onnx_export import EXAMPLE_SHAPE, trace_encoder
from audiosep_kit.export.parity import tolerance_for
from audiosep_kit.export.verify import (
    BATCH_SIZES,
    ExportResult,
    publish,
    report_path_for,
    skipped_report,
    sweep_lengths,
    temporary_path,
    verify_runner,
)
from audiosep_kit.model.checkpoint import LoadedWeights, build_encoder
from audiosep_kit.model.config import EncoderConfig
from audiosep_kit.runtime.devices import torch_device

__all__ = ["export_aoti", "compile_package"]

_EXPORTER = "torch.export+AOTInductor"


def compile_package(weights: LoadedWeights, config: EncoderConfig, target: Path, device: str = "cpu") -> dict[str, str]:
    """Trace and AOT-compile the float32 encoder into ``target`` (.pt2); returns the stored metadata."""
    import torch._inductor

    dev = torch_device(device)
    program = trace_encoder(build_encoder(weights, config), device=str(dev))
    meta = build_metadata(
        weights, config, precision="fp32", exporter=_EXPORTER, device=dev.type, example_shape=EXAMPLE_SHAPE
    )
    torch._inductor.aoti_compile_and_package(
        program, package_path=str(target), inductor_configs={"aot_inductor.metadata": meta}
    )
    return meta


def _verify_package(tmp: Path, weights, config, device: str, sweep: str, batch_sizes) -> dict:
    from audiosep_kit.runtime.backends.aoti import make_aoti
    from audiosep_kit.runtime.backends.eager import make_eager

    engine = make_aoti(weights, config, device, model_path=tmp)
    reference = make_eager(weights, config, device)
    report = verify_runner(
        engine.run, reference.run, tolerance_for("fp32"), lengths=sweep_lengths(sweep), batch_sizes=batch_sizes
    )
    report["executed"] = engine.executed()
    return report


def export_aoti(
    weights: LoadedWeights,
    config: EncoderConfig,
    output: str | Path,
    *,
    device: str = "cpu",
    verify: bool = True,
    sweep: str = "full",
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
) -> ExportResult:
    """Compile, verify against eager and publish ``output`` (.pt2) with ``<stem>.verify.json``.

    Raises VerificationError (leaving ``<stem>.failed.pt2``) if the sweep refuses the package.
    """
    output = Path(output)
    if output.suffix != ".pt2":
        raise ConfigError(f"the AOTInductor package must end in .pt2; got {output} (set --output).")
    output.parent.mkdir(parents=True, exist_ok=True)
    lengths = sweep_lengths(sweep)
    tmp = temporary_path(output)
    start = time.perf_counter()
    try:
        meta = compile_package(weights, config, tmp, device)
        timings = {"compile_s": time.perf_counter() - start}
        if verify:
            report = _verify_package(tmp, weights, config, device, sweep, batch_sizes)
            report["lengths"] = list(lengths)
        else:
            report = skipped_report("exported with --no-verify")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    timings["verify_s"] = time.perf_counter() - start - timings["compile_s"]
    report.update(metadata=meta, timings=dict(timings))
    path = publish(tmp, output, report)
    timings["total_s"] = time.perf_counter() - start
    return ExportResult(path, report_path_for(path), meta, report, timings)
