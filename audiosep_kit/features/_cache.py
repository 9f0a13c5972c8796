"""A content-keyed cache of feature stores, so a repeated evaluation never re-extracts.

The key is the SHA-256 of everything that decides the numbers: the weights' checksum, backend,
precision, FiLM mode (and condition checksum), layer, pooling, pad_to_32, resampler, and every audio
source's identity (absolute path, size, modification time, segment), in order. Change any of them
and the key changes, so a stale store can never be read for a new configuration; the device is not
part of the key (the backends are held to numerical parity elsewhere).

Layout: ``<cache_dir>/<key>/store/`` is a feature store; ``<cache_dir>/<key>/cache.json`` is
written only after the store is complete and marks the entry usable. An interrupted extraction
leaves no marker, and the next run resumes the store. ``extract`` and ``open_store`` are injectable
so the caching logic can be tested without running an encoder. ``cache_dir`` defaults to
``$AUDIOSEP_CACHE/features``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiosep_kit._identity import file_stat, record_sha256
from audiosep_kit._paths import cache_root
from audiosep_kit._validation import atomic_write_text, check_format_version
from audiosep_kit.audio import AudioSegment
from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features._store import FeatureStore, extract_to_store

CACHE_FORMAT_VERSION = 2  # 2: stores of format 2 (rows carry their inputs' content identity)
_MARKER = "cache.json"
_log = logging.getLogger(__name__)
#: Extractor options that enter the key, and where ``describe()`` holds each (path of dict keys).
_KEY_PATHS: dict[str, tuple[str, ...]] = {
    "weights_sha256": ("weights", "sha256"),
    "backend": ("backend",),
    "precision": ("precision",),
    "film": ("encoder", "film"),
    "condition_sha256": ("encoder", "condition_sha256"),
    "layer": ("encoder", "layer"),
    "pooling": ("encoder", "pooling"),
    "pad_to_32": ("encoder", "pad_to_32"),
    "resampler": ("resampler",),
}
KEY_FIELDS = tuple(_KEY_PATHS)
_OPTIONAL = {"condition_sha256"}


def default_cache_dir() -> Path:
    """``<cache root>/features``: ``$AUDIOSEP_CACHE/features`` (default ``~/.cache/audiosep-kit/features``)."""
    return cache_root() / "features"


def extractor_identity(description: dict) -> dict:
    """The key fields of an extractor's ``describe()``; a missing one is an error, never a guess."""
    out = {}
    for name, path in _KEY_PATHS.items():
        value: Any = description
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None and name not in _OPTIONAL:
            raise ConfigError(
                f"extractor.describe() lacks {'.'.join(path)!r}, which the feature cache key needs; "
                f"expected the keys {sorted(_KEY_PATHS)}."
            )
        out[name] = value
    return out


def source_identity(source: AudioSegment) -> dict:
    """Absolute path, size, mtime (ns) and segment of an audio source.

    A missing file gets size and mtime None: the store records its error, and the key changes once
    the file appears.
    """
    path = Path(source.path).resolve()
    size, mtime = file_stat(path) or (None, None)
    return {"path": str(path), "size": size, "mtime_ns": mtime, "start_s": source.start_s, "end_s": source.end_s}


def cache_key(description: dict, sources: Sequence[AudioSegment]) -> str:
    """SHA-256 (hex) of the extractor identity and every source identity, in source order."""
    payload = {
        "format_version": CACHE_FORMAT_VERSION,
        "extractor": extractor_identity(description),
        "sources": [source_identity(s) for s in sources],
    }
    return record_sha256(payload)


@dataclass(frozen=True)
class CachedFeatures:
    """Features of the sources, in source order; ``ok`` is False where extraction failed (see ``index``)."""

    features: np.ndarray
    index: pd.DataFrame
    manifest: dict
    key: str
    path: Path
    extracted: bool  # False: served from the cache without running the extractor

    @property
    def ok(self) -> np.ndarray:
        return (self.index["status"] == "ok").to_numpy()


def _default_extract(extractor: Any, sources: Sequence[AudioSegment], out_dir: Path) -> Any:
    return extract_to_store(extractor, list(sources), out_dir)


def _default_open(path: Path) -> Any:
    return FeatureStore.open(path)


def _read_marker(entry: Path) -> dict | None:
    marker = entry / _MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    check_format_version(
        data.get("format_version"),
        (CACHE_FORMAT_VERSION,),
        what=f"the cache entry {marker}",
        error=StoreError,
        fix=f"Fix: delete {entry} or use another --cache-dir.",
    )
    return data


def _write_marker(entry: Path, key: str, identity: dict, n: int) -> None:
    data = {
        "format_version": CACHE_FORMAT_VERSION,
        "key": key,
        "extractor": identity,
        "num_sources": n,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(entry / _MARKER, json.dumps(data, indent=2))


def cache_entry(description: dict, sources: Sequence[AudioSegment], cache_dir: str | Path) -> tuple[str, Path, bool]:
    """(key, entry folder, hit) of the configuration ``description`` (an extractor's ``describe()``) on
    ``sources``: hit is True when the entry's store is complete and marked usable."""
    if not sources:
        raise ConfigError("no audio sources to extract; got an empty list.")
    key = cache_key(description, sources)
    entry = Path(cache_dir) / key
    return key, entry, _read_marker(entry) is not None


def cached_features(
    extractor: Any,
    sources: Sequence[AudioSegment],
    cache_dir: str | Path,
    *,
    extract: Callable[[Any, Sequence[AudioSegment], Path], Any] | None = None,
    open_store: Callable[[Path], Any] | None = None,
) -> CachedFeatures:
    """Features of ``sources`` from the cache entry of this configuration, extracting only on a miss.

    ``extract(extractor, sources, out_dir)`` and ``open_store(out_dir)`` return objects with
    ``features`` (N, D), ``index`` (with 'status') and ``manifest``; they default to the runtime store.
    """
    description = extractor.describe()
    key, entry, hit = cache_entry(description, sources, cache_dir)
    if hit:
        _log.info("features: cache hit %s (%d clips), no extraction", key[:16], len(sources))
        store = (open_store or _default_open)(entry / "store")
    else:
        _log.info("features: extracting %d clips into the cache %s", len(sources), entry)
        store = (extract or _default_extract)(extractor, sources, entry / "store")
    return cache_result(description, len(sources), entry, store, extracted=not hit)


def cache_result(description: dict, num_sources: int, entry: Path, store: Any, *, extracted: bool) -> CachedFeatures:
    """The features of ``store`` (the store of cache ``entry``); a just ``extracted`` store that is
    complete is marked usable first, so the next lookup of ``description`` is a hit."""
    key = entry.name
    if extracted and bool((store.index["status"] != "pending").all()):
        _write_marker(entry, key, extractor_identity(description), num_sources)
    features = np.array(store.features, dtype=np.float32)
    if features.shape[0] != num_sources:
        raise StoreError(f"{entry}: the store holds {features.shape[0]} rows for {num_sources} sources.")
    return CachedFeatures(features, store.index, dict(store.manifest), key, entry, extracted=extracted)
