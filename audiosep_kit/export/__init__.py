"""The export layer: ONNX and AOTInductor artifacts that carry their identity, verified before they are kept.

Every export goes through one pipeline (temporary file -> build -> verify against eager over a sweep of
lengths and batch sizes -> publish by rename, or keep as ``.failed`` and raise VerificationError).
Runtime backends load what this layer builds; :func:`cached_artifact` finds or builds one by identity,
and :func:`probe_artifact` checks at load time that a file computes what the requested weights compute
(its metadata alone is a claim that can be edited).
"""

from audiosep_kit.export._aoti import check_package_runtime, export_aoti, load_package, read_package_metadata
from audiosep_kit.export._artifacts import (
    ARTIFACT_KINDS,
    CachedArtifact,
    artifact_cache_path,
    cached_artifact,
    read_metadata,
)
from audiosep_kit.export._metadata import IDENTITY_KEYS, INPUT_NAME, build_metadata, check_metadata, read_onnx_metadata
from audiosep_kit.export._onnx import (
    DEFAULT_OPSET,
    GRAPH_OPTIMIZATIONS,
    ONNX_PRECISIONS,
    export_onnx,
    import_onnxruntime,
    optimization_level,
    save_optimized_model,
    session_options,
)
from audiosep_kit.export._pipeline import SWEEPS, ExportResult, sweep_input
from audiosep_kit.export._probe import PROBE_LENGTH, probe_artifact

__all__ = [
    "ARTIFACT_KINDS",
    "CachedArtifact",
    "DEFAULT_OPSET",
    "ExportResult",
    "GRAPH_OPTIMIZATIONS",
    "IDENTITY_KEYS",
    "INPUT_NAME",
    "ONNX_PRECISIONS",
    "PROBE_LENGTH",
    "SWEEPS",
    "artifact_cache_path",
    "build_metadata",
    "cached_artifact",
    "check_metadata",
    "check_package_runtime",
    "export_aoti",
    "export_onnx",
    "import_onnxruntime",
    "load_package",
    "optimization_level",
    "probe_artifact",
    "read_metadata",
    "read_onnx_metadata",
    "read_package_metadata",
    "save_optimized_model",
    "session_options",
    "sweep_input",
]
