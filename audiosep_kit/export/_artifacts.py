"""Exported artifacts by identity: the one place that finds a cached ``.onnx`` / ``.pt2`` or exports it.

Runtime backends never build anything themselves: given no ``model_path`` they ask
:func:`cached_artifact`, which returns the path of an export keyed by everything baked into it
(weights SHA-256, encoder options, precision, opset or device kind, format version, torch version)
under ``$AUDIOSEP_CACHE/<kind>/``, exporting it (quick-verified) on a miss. The benchmark harness uses
the same function so that export time is reported apart from session creation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from audiosep_kit._identity import record_sha256
from audiosep_kit._paths import cache_root
from audiosep_kit._validation import check_choice
from audiosep_kit.export._aoti import export_aoti, read_package_metadata
from audiosep_kit.export._metadata import FORMAT_VERSION, read_onnx_metadata
from audiosep_kit.export._onnx import DEFAULT_OPSET, export_onnx
from audiosep_kit.model import EncoderConfig, LoadedWeights

ARTIFACT_KINDS = ("onnx", "aoti")
_SUFFIX = {"onnx": ".onnx", "aoti": ".pt2"}
#: Rough seconds of a quick-verified export on two CPU cores (measured), for the progress line.
_TYPICAL_S = {"onnx": 90, "aoti": 120}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedArtifact:
    """Where the artifact is, and how long exporting it took now (None: it was already cached)."""

    path: Path
    export_s: float | None


def artifact_cache_path(
    kind: str, weights_sha256: str, config: EncoderConfig, *, cache_dir: str | Path | None = None, **extra: object
) -> Path:
    """``<cache root>/<kind>/<key><suffix>``; the key covers everything baked into the artifact."""
    check_choice("kind", kind, ARTIFACT_KINDS)
    spec = {
        "weights": weights_sha256,
        "encoder": config.to_dict(),
        "format_version": FORMAT_VERSION,
        "torch": torch.__version__,
        **extra,
    }
    return cache_root(cache_dir) / kind / f"{record_sha256(spec)[:24]}{_SUFFIX[kind]}"


def cached_artifact(
    kind: str,
    weights: LoadedWeights,
    config: EncoderConfig,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    opset: int | None = None,
    cache_dir: str | Path | None = None,
) -> CachedArtifact:
    """The cached export of ``kind`` for these weights and options, exporting it on first use.

    ONNX exports are device-independent (keyed by precision and opset); AOTInductor packages are
    compiled for one device kind (keyed by it) and are float32 only.
    """
    if kind == "onnx":
        opset = opset or DEFAULT_OPSET
        path = artifact_cache_path(kind, weights.sha256, config, cache_dir=cache_dir, precision=precision, opset=opset)
    else:
        check_choice("precision", precision, ("fp32",))
        device_kind = torch.device(device).type
        path = artifact_cache_path(kind, weights.sha256, config, cache_dir=cache_dir, device=device_kind)
    if path.is_file():
        _log.info("%s: using cached export %s", kind, path)
        return CachedArtifact(path, None)
    _log.info(
        "%s: no --model-path; exporting into the cache %s (about %d s on 2 CPU cores)", kind, path, _TYPICAL_S[kind]
    )
    start = time.perf_counter()
    if kind == "onnx":
        export_onnx(weights, config, path, opset=opset or DEFAULT_OPSET, precision=precision, sweep="quick")
    else:
        export_aoti(weights, config, path, device=device, sweep="quick")
    return CachedArtifact(path, time.perf_counter() - start)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata stored in an exported ``.onnx`` or ``.pt2``."""
    path = Path(path)
    return read_package_metadata(path) if path.suffix == ".pt2" else read_onnx_metadata(path)
