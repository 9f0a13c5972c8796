"""Package the encoder with ``torch.export`` + AOTInductor into a ``.pt2`` that runs without its Python code.

The exported program is the same one the ONNX export uses (``_trace.trace_encoder``: dynamic
batch >= 1 and length >= 1025, traced size-oblivious so short inputs are not excluded). AOTInductor
generates and compiles C++ with the system compiler: on two CPU cores that takes about 1.5 minutes
for the full encoder (measured: 77 s compile + 5 s tracing). The metadata record (weights sha256,
encoder options, versions; see export.metadata) is stored inside the package as
``aot_inductor.metadata`` and read back with ``get_metadata()`` (:func:`read_package_metadata`).

A package is tied to the torch version that built it (generated C++ against that libtorch) and to
the device kind it was compiled for; the backend refuses others.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from audiosep_kit._devices import torch_device
from audiosep_kit.errors import ArtifactMismatchError, BackendUnavailableError, ConfigError
from audiosep_kit.export._metadata import build_metadata, check_metadata
from audiosep_kit.export._pipeline import BATCH_SIZES, ExportResult, sweep_lengths, verified_export, verify_runner
from audiosep_kit.export._trace import EXAMPLE_SHAPE, trace_encoder
from audiosep_kit.model import EncoderConfig, LoadedWeights, build_encoder, run_encoder
from audiosep_kit.numerics import tolerance_for

_EXPORTER = "torch.export+AOTInductor"
_log = logging.getLogger(__name__)


def load_package(path: str | Path, device: str | torch.device = "cpu"):
    """The runner of a ``.pt2`` package on ``device`` (``aoti_load_package``); callable on (B, L) tensors."""
    import torch._inductor

    path, dev = Path(path), torch.device(device)
    if not path.is_file():
        raise ArtifactMismatchError(f"AOTInductor package not found: {path} (check --aoti-package / --model-path).")
    index = -1 if dev.type == "cpu" else (dev.index or 0)
    try:
        return torch._inductor.aoti_load_package(str(path), device_index=index)
    except Exception as exc:  # the loader raises RuntimeError from C++ for any unreadable package
        raise BackendUnavailableError(f"cannot load AOTInductor package {path} on {dev}: {exc}") from exc


def read_package_metadata(path: str | Path) -> dict[str, str]:
    """The metadata stored in a ``.pt2`` (loads the package on CPU; about 0.1 s)."""
    return dict(load_package(path, "cpu").get_metadata())


def check_package_runtime(meta: dict, dev: torch.device, path: Path) -> None:
    """Refuse a package compiled for another device kind or built by another torch (generated C++)."""
    built_for, built_with = meta.get("device"), meta.get("torch_version")
    if built_for != dev.type:
        raise ArtifactMismatchError(
            f"{path} was compiled for device {built_for!r}, requested {dev.type!r}; "
            f"re-export with `audiosep-export aoti --device {dev.type}`."
        )
    if built_with != torch.__version__:
        raise ArtifactMismatchError(
            f"{path} was built with torch {built_with}, this is torch {torch.__version__}; AOTInductor "
            "packages are not portable across torch versions: re-export it with this torch."
        )


def compile_package(weights: LoadedWeights, config: EncoderConfig, target: Path, device: str = "cpu") -> dict[str, str]:
    """Trace and AOT-compile the float32 encoder into ``target`` (.pt2); returns the stored metadata."""
    import torch._inductor

    dev = torch_device(device)
    _log.info("aoti: tracing the encoder with torch.export (%s)", dev)
    program = trace_encoder(build_encoder(weights, config), device=str(dev))
    meta = build_metadata(
        weights, config, precision="fp32", exporter=_EXPORTER, device=dev.type, example_shape=EXAMPLE_SHAPE
    )
    _log.info("aoti: compiling C++ with AOTInductor into %s (about 1.5 min on 2 CPU cores)", target)
    torch._inductor.aoti_compile_and_package(
        program, package_path=str(target), inductor_configs={"aot_inductor.metadata": meta}
    )
    return meta


def _verify_package(tmp: Path, weights, config, device: str, sweep: str, batch_sizes) -> dict:
    dev = torch_device(device)
    _log.info("aoti: loading the package on %s", dev)
    runner = load_package(tmp, dev)
    check_metadata(dict(runner.get_metadata()), weights.sha256, config, artifact=str(tmp), precision="fp32")
    reference = build_encoder(weights, config).to(dev)
    report = verify_runner(
        lambda x: run_encoder(runner, x, dev),
        lambda x: run_encoder(reference, x, dev),
        tolerance_for("fp32"),
        lengths=sweep_lengths(sweep),
        batch_sizes=batch_sizes,
        label="aoti",
    )
    report["executed"] = {"device": str(dev), "torch_threads": torch.get_num_threads(), "model_path": str(tmp)}
    report["lengths"] = list(sweep_lengths(sweep))
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
    sweep_lengths(sweep)

    def build(tmp: Path) -> tuple[dict[str, str], dict[str, float]]:
        start = time.perf_counter()
        meta = compile_package(weights, config, tmp, device)
        return meta, {"compile_s": time.perf_counter() - start}

    check = (lambda tmp: _verify_package(tmp, weights, config, device, sweep, batch_sizes)) if verify else None
    return verified_export(output, build, check)
