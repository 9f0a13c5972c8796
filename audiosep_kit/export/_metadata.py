"""What an exported artifact was built from, stored inside it, and the check that refuses a wrong one.

An ``.onnx`` or ``.pt2`` holds baked-in weights and encoder options (FiLM betas are constants, the
pooling and tap are fixed in the graph). Loading one for a run that asked for other weights or other
options would give plausible-looking but wrong features, so every artifact carries this record
(ONNX ``metadata_props``; AOTInductor ``aot_inductor.metadata``) and backends compare it with what the
caller asked for before running anything. Values are strings, because both containers store strings.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path

from audiosep_kit._validation import check_format_version
from audiosep_kit._versions import package_versions
from audiosep_kit.errors import ArtifactMismatchError
from audiosep_kit.model._config import HOP, MIN_SAMPLES, N_FFT, SAMPLE_RATE, EncoderConfig

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
ARTIFACT_KIND = "audiosep-kit encoder"
INPUT_NAME = "waveform"  # (batch, samples) float32 at 32 kHz
OUTPUT_NAME = "features"
#: Keys that decide the numbers: an artifact differing in any of them is refused.
IDENTITY_KEYS = (
    "weights_sha256",
    "film",
    "condition_sha256",
    "layer",
    "pooling",
    "pad_to_32",
    "sample_rate",
    "n_fft",
    "hop",
)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def identity(weights_sha256: str, config: EncoderConfig) -> dict[str, str]:
    """The IDENTITY_KEYS of weights + options, as the strings an artifact stores."""
    return {
        "weights_sha256": weights_sha256,
        "film": config.film,
        "condition_sha256": _text(config.condition_sha256),
        "layer": config.layer,
        "pooling": config.pooling,
        "pad_to_32": _text(config.pad_to_32),
        "sample_rate": str(SAMPLE_RATE),
        "n_fft": str(N_FFT),
        "hop": str(HOP),
    }


def build_metadata(weights, config: EncoderConfig, *, precision: str, exporter: str, **extra: object) -> dict[str, str]:
    """Full record: identity, output shape, provenance (random weights flagged), versions, date."""
    versions = package_versions()
    meta = {
        "format_version": str(FORMAT_VERSION),
        "artifact": ARTIFACT_KIND,
        **identity(weights.sha256, config),
        "output_dim": _text(config.output_dim),
        "min_samples": str(MIN_SAMPLES),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "precision": precision,
        "weights_random": _text(weights.is_random),
        "weights_source": weights.source,
        "exporter": exporter,
        "package_version": versions.get("audiosep-kit", ""),
        "torch_version": versions.get("torch", ""),
        "onnx_version": versions.get("onnx", ""),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    meta.update({key: _text(value) for key, value in extra.items()})
    return meta


def write_onnx_metadata(model, meta: Mapping[str, str]) -> None:
    """Set ``meta`` as the ModelProto's metadata_props (replacing keys already there)."""
    kept = {p.key: p.value for p in model.metadata_props if p.key not in meta}
    del model.metadata_props[:]
    for key, value in {**kept, **meta}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, _text(value)


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an ``.onnx`` file (parsed with onnx, so any IR version ORT may not run)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ArtifactMismatchError(f"ONNX model not found: {path} (check --onnx-model / model_path).")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ArtifactMismatchError(f"{path} is not a readable ONNX model: {exc}") from exc
    return {p.key: p.value for p in model.metadata_props}


def _check_format(meta: Mapping[str, str], artifact: str) -> None:
    if meta.get("format_version") is None or meta.get("artifact") != ARTIFACT_KIND:
        raise ArtifactMismatchError(
            f"{artifact} carries no audiosep-kit metadata (no format_version/artifact keys); "
            "re-export it with `audiosep-export onnx` or `audiosep-export aoti`."
        )
    check_format_version(
        meta["format_version"],
        SUPPORTED_FORMAT_VERSIONS,
        what=artifact,
        error=ArtifactMismatchError,
        fix="Re-export it with this version or upgrade audiosep-kit.",
    )


def check_metadata(
    meta: Mapping[str, str],
    weights_sha256: str,
    config: EncoderConfig,
    *,
    artifact: str,
    precision: str | None = None,
) -> None:
    """Raise ArtifactMismatchError naming every key where the artifact differs from the request."""
    _check_format(meta, artifact)
    wanted = identity(weights_sha256, config)
    if precision is not None:
        wanted["precision"] = precision
    diffs = [
        f"{key}: artifact has {meta.get(key, '<missing>')!r}, requested {value!r}"
        for key, value in wanted.items()
        if meta.get(key) != value
    ]
    if diffs:
        raise ArtifactMismatchError(
            f"{artifact} was exported from other weights or encoder options than requested ("
            + "; ".join(diffs)
            + "). Re-export it with the requested options, or pass the checkpoint and options it was built with."
        )
