"""``aoti`` backend: a ``.pt2`` AOTInductor package, loaded and run; no Python model code runs.

The package holds the compiled kernels and the weights. Its stored metadata (``aot_inductor.metadata``,
written by ``audiosep-export aoti``) must match the requested weights sha256 and encoder options, the
device kind it was compiled for, and this torch version (the generated C++ is built against one
libtorch), and the loaded package must reproduce eager on the requested weights on one probe clip
(``export.probe_artifact``: the metadata is a claim, the probe checks the numbers); anything else
raises ArtifactMismatchError. The probe's result is reported by ``executed()['load_check']``.

The package is ``model_path`` (the option name the ONNX backend uses too). Without one the export layer
provides it from the cache (``$AUDIOSEP_CACHE/aoti/``), compiling it on first use, which takes minutes:
pass an exported package for anything interactive.
"""

from __future__ import annotations

from pathlib import Path

from audiosep_kit._devices import torch_device
from audiosep_kit.export import cached_artifact, check_metadata, check_package_runtime, load_package, probe_artifact
from audiosep_kit.model import EncoderConfig, LoadedWeights
from audiosep_kit.runtime.backends._eager import TorchBackend


def make_aoti(
    weights: LoadedWeights,
    config: EncoderConfig,
    device: str = "cpu",
    *,
    model_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> TorchBackend:
    """Load the package (given, or from the export cache) and check it was made for this request."""
    dev = torch_device(device)
    path = (
        Path(model_path)
        if model_path is not None
        else cached_artifact("aoti", weights, config, device=device, cache_dir=cache_dir).path
    )
    runner = load_package(path, dev)
    meta = dict(runner.get_metadata())
    check_metadata(meta, weights.sha256, config, artifact=str(path), precision="fp32")
    check_package_runtime(meta, dev, path)
    extra = {"model_path": str(path), "compiled_for": meta.get("device"), "exporter": meta.get("exporter")}
    backend = TorchBackend(runner, dev, "aoti", extra=extra)
    # Probed through backend.run, the path every feature takes; ``extra`` is what executed() reports.
    extra["load_check"] = probe_artifact(backend.run, weights, config, precision="fp32", artifact=path, kind="aoti")
    return backend
