"""A feature store written by ``audiosep-extract`` as the features of a task, matched by path, never by order.

A store knows which file (and segment) each row came from, so the rows are looked up by the audio's
resolved absolute path and segment bounds rather than trusted to follow the task's order. Labels come
from the task; the provenance (weights SHA-256, random-weights flag, backend, precision, what executed,
encoder options) comes from the store's manifest, so features from random weights stay labelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiosep_kit.errors import ArtifactMismatchError
from audiosep_kit.evaluate.tasks import Example
from audiosep_kit.evaluate.tasks._common import shown
from audiosep_kit.features import FeatureStore

_Key = tuple[str, float | None, float | None]


@dataclass(frozen=True)
class StoredFeatures:
    """The rows of a store for a task's examples (in the examples' order) and what to report about them."""

    features: np.ndarray
    examples: list[Example]
    provenance: dict
    notes: tuple[str, ...]


def is_store(path: str | Path) -> bool:
    """A folder is read as a feature store; a file as a ``{'features', 'labels'}`` .pt."""
    return Path(path).is_dir()


def _bound(value: object) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _key(path: str | Path, start: object, end: object) -> _Key:
    return (str(Path(path).expanduser().resolve()), _bound(start), _bound(end))


def _label(key: _Key) -> str:
    path, start, end = key
    return path if start is None and end is None else f"{path}#{start}-{end}"


def match_store(
    store: FeatureStore, examples: Sequence[Example], *, task: str, allow_missing: bool = False
) -> StoredFeatures:
    """The store rows of ``examples``; refuses (naming them) examples absent from it or failed there.

    With ``allow_missing`` the examples the store lacks are dropped (and noted) instead; failed or
    pending rows are always refused, since dropping them would quietly change the test set.
    """
    rows: dict[_Key, int] = {}
    for i, record in enumerate(store.index[["path", "start_s", "end_s"]].itertuples(index=False)):
        rows.setdefault(_key(record.path, record.start_s, record.end_s), i)
    keys = [_key(e.path, e.start_s, e.end_s) for e in examples]
    absent = [k for k in keys if k not in rows]
    status = store.index["status"].to_numpy()
    bad = [(k, rows[k]) for k in keys if k in rows and status[rows[k]] != "ok"]
    problems = []
    if absent and not allow_missing:
        problems.append(
            f"{len(absent)} of the task's {len(keys)} examples are not in the store, e.g. "
            f"{shown([_label(k) for k in absent])}"
        )
    if bad:
        errors = store.index["error"].to_numpy()
        listed = [f"{_label(k)} ({status[r]}{': ' + str(errors[r]) if errors[r] else ''})" for k, r in bad]
        problems.append(f"{len(bad)} store rows did not extract: {shown(listed)}")
    if problems:
        raise ArtifactMismatchError(
            f"the store {store.root} does not hold features for every example of {task}: {'; '.join(problems)}. "
            "Fix: run audiosep-extract on the task's audio files into this store (it resumes; --retry-failed "
            "redoes failures), or pass --allow-missing to evaluate only the examples the store has."
        )
    kept = [(e, rows[k]) for e, k in zip(examples, keys, strict=True) if k in rows]
    notes = (
        (f"{len(absent)} of {len(keys)} examples are not in the store and were left out (--allow-missing)",)
        if absent
        else ()
    )
    features = np.asarray(store.features[[r for _, r in kept]], dtype=np.float32)
    return StoredFeatures(features, [e for e, _ in kept], store_provenance(store), notes)


def store_provenance(store: FeatureStore) -> dict:
    """The report's provenance, from the manifest of the extraction that wrote the store."""
    manifest = store.manifest
    return {
        "source": f"feature store {store.root}",
        "weights": manifest.get("weights") or {"sha256": manifest.get("weights_sha256")},
        "backend": manifest.get("backend"),
        "executed": manifest.get("executed"),
        "precision": manifest.get("precision"),
        "encoder": manifest.get("encoder"),
        "resampler": manifest.get("resampler"),
        "extractor_versions": manifest.get("versions"),
        "store": {"path": str(store.root), "created": manifest.get("created"), "num_sources": len(store.index)},
    }
