"""A sweep's taps into feature stores, each in the cache entry its single configuration would use.

Why: an ablation over layers and poolings should cost one encoder pass, yet each of its points must
be the very store a single-configuration run makes and reads, so that a later single run is a cache
hit and a rerun of the sweep extracts nothing. So :func:`cached_sweep` keys each tap by the
description a FeatureExtractor of its configuration gives (runtime.TapView), serves the taps already
cached, and extracts the missing ones together with :func:`extract_sweep_to_stores`.

That writer is the store's own machinery fed from one pass: each store is prepared, locked and
checked as ``extract_to_store`` does (a half-written store of the same configuration resumes),
decoding runs once for all stores, and each chunk's rows are committed store by store as usual
(rows fsynced before their journal lines), so a kill leaves every store resumable by a sweep or by
a single run. A clip too short for some taps (pad_to_32=False) fails in those stores only, with the
message a single run would record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, closing
from pathlib import Path

import numpy as np

from audiosep_kit.audio import DEFAULT_MAX_SECONDS, AudioSegment
from audiosep_kit.errors import AudioSepKitError, ConfigError
from audiosep_kit.features._cache import CachedFeatures, cache_entry, cache_result, cached_features
from audiosep_kit.features._decoding import decoded_chunks
from audiosep_kit.features._embed import embed_in_batches, failure_record, ok_record
from audiosep_kit.features._files import commit_rows, full_disk_names_store, store_lock
from audiosep_kit.features._progress import ExtractionBar
from audiosep_kit.features._store import (
    FeatureStore,
    as_segment,
    finish_manifest,
    prepare_store,
    row_files,
    rows_to_run,
)
from audiosep_kit.model import LAYERS
from audiosep_kit.runtime import SweepExtractor, Tap, check_clip_length

_log = logging.getLogger(__name__)


class _Joint:
    """``embed_in_batches``' extractor for a set of taps: per clip one row, the taps side by side."""

    def __init__(self, sweep: SweepExtractor, taps: Sequence[Tap]):
        self.sweep = sweep
        self.taps = list(taps)
        self.batch_size = sweep.batch_size
        self._cuts = np.cumsum([sweep.tap_config(tap).output_dim or 0 for tap in self.taps])[:-1]

    def embed_waves(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        features = self.sweep.embed_sweep(waves, self.taps)
        return list(np.concatenate([features[tap] for tap in self.taps], axis=1))

    def split(self, row: np.ndarray) -> dict[Tap, np.ndarray]:
        return dict(zip(self.taps, np.split(row, self._cuts), strict=True))


class _Chunk:
    """One chunk's outcome, per tap: journal records and feature rows (the rows that tap needs only)."""

    def __init__(self, taps: Sequence[Tap]):
        self.records: dict[Tap, dict[int, dict]] = {tap: {} for tap in taps}
        self.vectors: dict[Tap, dict[int, np.ndarray]] = {tap: {} for tap in taps}

    def fail(self, tap: Tap, row: int, source: AudioSegment, exc: BaseException, stage: str, identity: dict) -> None:
        self.records[tap][row] = {**failure_record(source, exc, stage), **identity}


def _runnable(sweep: SweepExtractor, wanted: list[Tap], clip, source, row, identity, chunk: _Chunk) -> tuple:
    """The taps of ``wanted`` this clip is long enough for; the others fail as a single run's would."""
    out = []
    for tap in wanted:
        try:
            check_clip_length(sweep.tap_config(tap), clip.waveform.shape[0], source.key)
            out.append(tap)
        except AudioSepKitError as exc:
            chunk.fail(tap, row, source, exc, "decoding", identity)
    return tuple(out)


def _process(sweep, needed: Mapping[Tap, set[int]], sources, rows, decoded, files, bar: ExtractionBar) -> None:
    """Embed one decoded chunk for every tap that needs its rows, one pass per batch, and commit it."""
    chunk = _Chunk(list(needed))
    groups: dict[tuple, list] = {}
    for row, (outcome, identity) in zip(rows, decoded, strict=True):
        wanted = [tap for tap, want in needed.items() if row in want]
        if isinstance(outcome, BaseException):
            for tap in wanted:
                chunk.fail(tap, row, sources[row], outcome, "decoding", identity)
            bar.advance(1)
            continue
        taps = _runnable(sweep, wanted, outcome, sources[row], row, identity, chunk)
        groups.setdefault(taps, []).append((row, outcome, identity))
    for taps, members in groups.items():
        if not taps:
            bar.advance(len(members))
            continue
        joint = _Joint(sweep, taps)
        outcomes = embed_in_batches(joint, [clip for _, clip, _ in members], bar)
        for (row, clip, identity), outcome in zip(members, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                for tap in taps:
                    chunk.fail(tap, row, sources[row], outcome, "inference", identity)
                continue
            for tap, vector in joint.split(outcome).items():
                chunk.vectors[tap][row] = vector
                chunk.records[tap][row] = {**ok_record(clip), **identity}
    for tap, (writer, journal) in files.items():
        commit_rows(writer, journal, dict(sorted(chunk.records[tap].items())), chunk.vectors[tap])


def extract_sweep_to_stores(
    sweep: SweepExtractor,
    roots: Mapping[Tap, str | Path],
    sources: Sequence[AudioSegment | str | Path],
    *,
    chunk_size: int = 64,
    workers: int = 2,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    progress: bool | None = None,
) -> dict[Tap, FeatureStore]:
    """Extract the features of ``sources`` for every tap of ``roots`` (tap -> store folder) in one pass.

    Each store is the one ``extract_to_store(sweep.view(tap), ...)`` would write (same manifest,
    resumable, locked while written); rows a store already holds are not recomputed for it.
    """
    if not roots:
        return {}
    if chunk_size < 1 or workers < 1:
        raise ConfigError(f"`chunk_size` and `workers` must be >= 1; got {chunk_size}, {workers}.")
    segments = [as_segment(s) for s in sources]
    paths = {tap: Path(root) for tap, root in roots.items()}
    with full_disk_names_store(next(iter(paths.values()))), ExitStack() as stack:
        for path in paths.values():
            stack.enter_context(store_lock(path))
        stores = {tap: prepare_store(path, sweep.view(tap), segments, False) for tap, path in paths.items()}
        todo = {tap: rows_to_run(store, False, False) for tap, store in stores.items()}
        needed = {tap: set(rows) for tap, (rows, _) in todo.items()}
        rows = sorted(set().union(*needed.values()))
        shallowest = min(paths, key=lambda tap: LAYERS.index(tap[0]))
        started = time.perf_counter()
        bar = stack.enter_context(closing(ExtractionBar(len(rows), progress)))
        files = {tap: stack.enter_context(row_files(path)) for tap, path in paths.items()}
        for chunk, decoded in decoded_chunks(
            segments, rows, chunk_size, workers, max_seconds, sweep.tap_config(shallowest)
        ):
            _process(sweep, needed, segments, chunk, decoded, files, bar)
        seconds = time.perf_counter() - started
        for tap, path in paths.items():
            finish_manifest(FeatureStore.open(path), todo[tap][0], todo[tap][1], seconds, 0)
    return {tap: FeatureStore.open(path) for tap, path in paths.items()}


def cached_sweep(
    sweep: SweepExtractor,
    taps: Sequence[Tap],
    sources: Sequence[AudioSegment],
    cache_dir: str | Path,
    *,
    progress: bool | None = None,
) -> dict[Tap, CachedFeatures]:
    """Each tap's features from the cache entry of its single configuration; the taps not cached yet
    are extracted together, in one pass per batch (see the module docstring)."""
    views = {tap: sweep.view(tap) for tap in dict.fromkeys(taps)}
    entries = {tap: cache_entry(view.describe(), sources, cache_dir) for tap, view in views.items()}
    missing = {tap: entry for tap, (_, entry, hit) in entries.items() if not hit}
    _log.info(
        "sweep (FiLM %s): %d of %d taps cached, extracting %d clips for the other %d in one pass",
        sweep.config.film, len(views) - len(missing), len(views), len(sources) if missing else 0, len(missing),
    )  # fmt: skip
    stores = extract_sweep_to_stores(sweep, {t: e / "store" for t, e in missing.items()}, sources, progress=progress)
    return {
        tap: cache_result(view.describe(), len(sources), missing[tap], stores[tap], extracted=True)
        if tap in missing
        else cached_features(view, sources, cache_dir)
        for tap, view in views.items()
    }
