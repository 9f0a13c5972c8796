"""How close two backends' features of the same clips are, read back from their feature stores.

A suite with several backends scores each on the task; a difference of a few points on a small test
set can be one clip whose prediction flipped because a head sits near a decision boundary, not a
backend that computes worse features. Beside each backend's difference to eager, the suite therefore
reports the feature-level agreement of the two stores the runs used (``numerics.compare`` on the rows
both extracted: minimum per-row cosine and maximum error relative to eager's largest value), so the
reader can tell a numeric cost from a head's instability.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiosep_kit.errors import StoreError
from audiosep_kit.features import FeatureStore
from audiosep_kit.numerics import compare


def _cache_path(report: dict) -> Path | None:
    path = ((report.get("provenance") or {}).get("cache") or {}).get("path")
    return Path(path) / "store" if path else None


def _rows(store: FeatureStore) -> dict[tuple, int]:
    """Row number of every extracted clip, keyed by (path, start_s, end_s)."""
    index = store.index
    ok = index["status"] == "ok"
    keys = zip(index["path"][ok], index["start_s"][ok].astype(str), index["end_s"][ok].astype(str), strict=True)
    return {key: int(row) for key, row in zip(keys, np.flatnonzero(ok.to_numpy()), strict=True)}


def feature_agreement(report: dict, reference: dict) -> dict | None:
    """Agreement of ``report``'s features with ``reference``'s (eager fp32), over the clips both stores
    extracted: ``{"n_rows", "min_cosine", "max_rel_err"}``; None when either run kept no store."""
    paths = _cache_path(report), _cache_path(reference)
    if paths[0] is None or paths[1] is None:
        return None
    try:
        got_store, ref_store = FeatureStore.open(paths[0]), FeatureStore.open(paths[1])
    except StoreError:
        return None
    got_rows, ref_rows = _rows(got_store), _rows(ref_store)
    shared = [key for key in ref_rows if key in got_rows]
    if not shared:
        return None
    got = np.asarray(got_store.features)[[got_rows[k] for k in shared]]
    ref = np.asarray(ref_store.features)[[ref_rows[k] for k in shared]]
    comparison = compare(got, ref)
    return {"n_rows": len(shared), "min_cosine": comparison.min_cosine, "max_rel_err": comparison.max_rel}
