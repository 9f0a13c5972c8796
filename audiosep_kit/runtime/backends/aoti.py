"""``aoti`` backend: a ``.pt2`` AOTInductor package loaded with ``aoti_load_package``.

No Python model code runs: the package holds the compiled kernels and the weights. Its stored
metadata (``aot_inductor.metadata``, written by ``audiosep-export aoti``) must match the requested
weights sha256 and encoder options, the device kind it was compiled for, and this torch version
(the generated C++ is built against one libtorch); anything else raises ArtifactMismatchError.

The package is ``model_path`` (the option name the ONNX backend uses too). Without one it is built
into the cache (``$AUDIOSEP_CACHE/aoti/``, keyed like the ONNX cache) on first use, which takes
minutes: pass an exported package for anything interactive.
"""

from __future__ import annotations

from pathlib import Path

import torch

from audiosep_kit.errors import ArtifactMismatchError, BackendUnavailableError
from audiosep_kit.export.metadata import check_metadata
from audiosep_kit.model.checkpoint import LoadedWeights
from audiosep_kit.model.config import EncoderConfig
from audiosep_kit.runtime.backends import register_backend
from audiosep_kit.runtime.backends.eager import TorchBackend
from audiosep_kit.runtime.backends.onnx_runtime import cache_root, cached_artifact_path
from audiosep_kit.runtime.devices import torch_device

__all__ = ["make_aoti", "load_package_metadata"]


def _load(path: Path, dev: torch.device):
    import torch._inductor

    if not path.is_file():
        raise ArtifactMismatchError(f"AOTInductor package not found: {path} (check --aoti-package / --model-path).")
    index = -1 if dev.type == "cpu" else (dev.index or 0)
    try:
        return torch._inductor.aoti_load_package(str(path), device_index=index)
    except Exception as exc:  # the loader raises RuntimeError from C++ for any unreadable package
        raise BackendUnavailableError(f"cannot load AOTInductor package {path} on {dev}: {exc}") from exc


def load_package_metadata(path: str | Path) -> dict[str, str]:
    """The metadata stored in a ``.pt2`` (loads the package on CPU; about 0.1 s)."""
    meta = dict(_load(Path(path), torch.device("cpu")).get_metadata())
    return meta


def _check_runtime(meta: dict, dev: torch.device, path: Path) -> None:
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


def _resolve_package(weights, config, device: str, cache_dir) -> Path:
    from audiosep_kit.export.aoti_export import export_aoti

    kind = torch.device(device).type
    path = cache_root(cache_dir) / cached_artifact_path("aoti", weights.sha256, config, ".pt2", device=kind)
    if not path.is_file():
        export_aoti(weights, config, path, device=device, sweep="quick")
    return path


@register_backend("aoti")
def make_aoti(
    weights: LoadedWeights,
    config: EncoderConfig,
    device: str = "cpu",
    *,
    model_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> TorchBackend:
    """Load (or build into the cache) the package and check it was made for this request."""
    dev = torch_device(device)
    path = Path(model_path) if model_path is not None else _resolve_package(weights, config, device, cache_dir)
    runner = _load(path, dev)
    meta = dict(runner.get_metadata())
    check_metadata(meta, weights.sha256, config, artifact=str(path), precision="fp32")
    _check_runtime(meta, dev, path)
    extra = {"model_path": str(path), "compiled_for": meta.get("device"), "exporter": meta.get("exporter")}
    return TorchBackend(runner, dev, "aoti", extra=extra)
