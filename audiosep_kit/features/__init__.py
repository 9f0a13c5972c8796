"""The features layer: resumable, crash-safe feature stores, and the content-keyed cache of them.

:func:`extract_to_store` runs a FeatureExtractor over many files into a store folder that a kill
never corrupts and a rerun resumes; :func:`cached_features` keys such stores by the extractor's
identity and the audio's, so a repeated evaluation never re-extracts; :func:`cached_sweep` fills the
entries of many (layer, pooling) configurations from one encoder pass. :func:`plan_rows` says which rows
a run would process (a dry run), by the store's own rules.
"""

from audiosep_kit.features._cache import (
    CACHE_FORMAT_VERSION,
    KEY_FIELDS,
    CachedFeatures,
    cache_entry,
    cache_key,
    cache_result,
    cached_features,
    default_cache_dir,
    extractor_identity,
    source_identity,
)
from audiosep_kit.features._decoding import Decoded, decode_row, default_workers, usable_cores
from audiosep_kit.features._plan import RowPlan, plan_rows
from audiosep_kit.features._ray import RayEngine
from audiosep_kit.features._store import FORMAT_VERSION, ChunkEngine, FeatureStore, extract_to_store
from audiosep_kit.features._sweep import cached_sweep, extract_sweep_to_stores

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CachedFeatures",
    "ChunkEngine",
    "Decoded",
    "cache_entry",
    "cache_result",
    "FORMAT_VERSION",
    "FeatureStore",
    "KEY_FIELDS",
    "RayEngine",
    "RowPlan",
    "cache_key",
    "cached_features",
    "cached_sweep",
    "decode_row",
    "default_workers",
    "default_cache_dir",
    "extract_sweep_to_stores",
    "extract_to_store",
    "extractor_identity",
    "plan_rows",
    "source_identity",
    "usable_cores",
]
