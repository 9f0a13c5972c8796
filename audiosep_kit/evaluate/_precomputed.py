"""Precomputed features (``{'features', 'labels'}`` .pt files) lined up with a task's metadata.

The seed project saved features without clip names, only in metadata order (ESC-50: rows of
``meta/esc50.csv``, labels = ``target``). The only evidence that the rows really follow that order is
the labels, so alignment checks every row's label against the metadata and refuses on any
disagreement instead of evaluating features against the wrong clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from audiosep_kit._identity import file_sha256
from audiosep_kit.errors import ArtifactMismatchError, DatasetError
from audiosep_kit.evaluate.tasks import Example

_SHOW_MISMATCHES = 5


@dataclass(frozen=True)
class PrecomputedFeatures:
    """Features (N, D) float32 and labels (N,) int64 read from a file, with the file's identity."""

    features: np.ndarray
    labels: np.ndarray
    path: Path
    sha256: str

    def describe(self) -> dict:
        """Provenance for reports: which file, its checksum and shape (no weights are known)."""
        return {"path": str(self.path), "sha256": self.sha256, "shape": list(self.features.shape)}


def load_precomputed(path: str | Path) -> PrecomputedFeatures:
    """Read ``torch.save({'features': FloatTensor[N, D], 'labels': LongTensor[N]})`` safely.

    ``weights_only=True``: a features file is data and must not be able to run code when opened.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"features file not found: {path} (check --features).")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for unreadable files
        raise ArtifactMismatchError(f"cannot read features file {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(obj, dict) or not {"features", "labels"} <= set(obj):
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ArtifactMismatchError(
            f"{path} must hold a dict with 'features' (N, D) and 'labels' (N,); got {got}. "
            "Fix: torch.save({'features': X, 'labels': y}, path)."
        )
    features = np.asarray(obj["features"], dtype=np.float32)
    labels = np.asarray(obj["labels"])
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        raise ArtifactMismatchError(
            f"{path}: expected features (N, D) and labels (N,); got {features.shape} and {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ArtifactMismatchError(f"{path}: labels must be integers; got dtype {labels.dtype}.")
    if not np.all(np.isfinite(features)):
        raise ArtifactMismatchError(f"{path}: features hold {int((~np.isfinite(features)).sum())} non-finite values.")
    return PrecomputedFeatures(features, labels.astype(np.int64), path, file_sha256(path))


def align_to_examples(
    precomputed: PrecomputedFeatures, examples: Sequence[Example], *, metadata: str = "the task's metadata"
) -> np.ndarray:
    """The feature rows for ``examples`` (all metadata rows, in metadata order), after checking labels.

    Refuses when the row count differs or any row's label disagrees with its example's label: the
    file was then saved in another order, for another task, or with another label mapping.
    """
    n = len(examples)
    if precomputed.features.shape[0] != n:
        raise ArtifactMismatchError(
            f"{precomputed.path} has {precomputed.features.shape[0]} rows but {metadata} lists {n} examples; "
            "expected one row per metadata row, in metadata order."
        )
    expected = np.array([e.label for e in examples], dtype=np.int64)
    wrong = np.flatnonzero(expected != precomputed.labels)
    if wrong.size:
        shown = ", ".join(
            f"row {i} ({examples[i].path.name}): file {precomputed.labels[i]}, metadata {expected[i]}"
            for i in wrong[:_SHOW_MISMATCHES]
        )
        raise ArtifactMismatchError(
            f"{precomputed.path}: labels disagree with {metadata} in {wrong.size} of {n} rows ({shown}). "
            "Fix: save the features in metadata order with the task's label ids, or pick the right --task."
        )
    return precomputed.features


def labels_as_ids(precomputed: PrecomputedFeatures, label_names: Sequence[str]) -> PrecomputedFeatures:
    """The file with its labels as the task's label ids, where the file stored the class names instead.

    The seed project's LibriSpeech file labels each row with the speaker id itself (84 ... 8842), not
    an index. When every label name is an integer, the names are not simply ``0..K-1`` (where names and
    ids coincide), and every file label is one of those names, the labels are read as names and
    mapped to ids; otherwise the file is returned unchanged (its labels are taken as ids).
    """
    if not all(name.lstrip("-").isdigit() for name in label_names):
        return precomputed
    as_int = [int(name) for name in label_names]
    if as_int == list(range(len(label_names))) or not np.isin(precomputed.labels, as_int).all():
        return precomputed
    index = {value: i for i, value in enumerate(as_int)}
    ids = np.array([index[int(v)] for v in precomputed.labels], dtype=np.int64)
    return replace(precomputed, labels=ids)
