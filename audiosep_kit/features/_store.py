"""Feature stores: resumable, crash-safe extraction of many files into one memory-mappable array.

Layout of a store folder:
    manifest.json   what produced it (weights SHA-256, backend and what executed, encoder options,
                    versions, date) and ``format_version``; a resumed run must match it
    sources.csv     the N inputs in row order (absolute paths; written once)
    features.npy    float32 (N, D), memory-mappable; rows not (yet) extracted, or failed, are NaN
    journal.jsonl   one line per finished row: status 'ok' or 'error' (the error, and whether it may
                    be transient), the input's size, modification time and SHA-256, duration,
                    original sample rate, channels, zero padding
    index.csv       sources joined with their latest journal line (rewritten after each run)
    skipped.csv     candidates a folder walk saw and did not take, with the reason (when given)

Why a journal: each chunk's rows are written and fsynced to features.npy *before* their journal
lines are appended and fsynced, so a line always means "these bytes are on disk". A run killed at
any moment leaves at worst a partial last line (ignored) and rows that are recomputed; nothing that
was recorded as done is ever recomputed or lost.

What is never mixed up: one run at a time holds the store's lock (a second writer, or an
``overwrite`` during a run, is refused), and the manifest is checked and written under it. A resumed
run re-checks each finished row's input (size and modification time; SHA-256 where they changed, or
for every row with ``verify_content``) and recomputes inputs whose content changed. No clip's result
depends on its batch-mates: a batch that fails is retried file by file, so only the file at fault is
marked, and errors that may be transient (out of memory) are retried by the next run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import pandas as pd

from audiosep_kit._identity import file_stat
from audiosep_kit._validation import atomic_write_text, check_format_version
from audiosep_kit.audio import DEFAULT_MAX_SECONDS, AudioSegment
from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features._decoding import decoded_chunks, fingerprint
from audiosep_kit.features._embed import chunk_outcome
from audiosep_kit.features._files import (
    MatrixWriter,
    commit_rows,
    create_matrix,
    drop_torn_tail,
    full_disk_names_store,
    read_journal,
    store_lock,
)
from audiosep_kit.features._progress import ExtractionBar

FORMAT_VERSION = 2
_MANIFEST, _SOURCES, _FEATURES, _JOURNAL = "manifest.json", "sources.csv", "features.npy", "journal.jsonl"
_INDEX, _SKIPPED = "index.csv", "skipped.csv"
#: Manifest entries that must agree for a run to extend an existing store.
_MUST_MATCH = ("format_version", "weights_sha256", "backend", "precision", "encoder", "resampler", "sources_sha256")
#: Journal fields per row, with the value a row has before it is extracted.
_ROW_FIELDS: dict[str, object] = {
    "status": "pending",
    "error": "",
    "transient": False,
    "size": np.nan,
    "mtime_ns": np.nan,
    "sha256": "",
    "duration_s": np.nan,
    "original_sample_rate": np.nan,
    "channels": np.nan,
    "padded_samples": np.nan,
}


class ChunkEngine(Protocol):
    """Runs a store's chunks elsewhere (e.g. features.RayEngine on a Ray cluster): this process commits."""

    def run(
        self,
        extractor,
        sources: Sequence[AudioSegment],
        rows: list[int],
        chunk_size: int,
        max_seconds: float,
        bar: ExtractionBar,
    ) -> tuple[Iterator[tuple[dict, dict]], dict]:
        """((records, vectors) per chunk of ``chunk_size`` of ``rows``, as :func:`chunk_outcome` gives
        them; the engine's description for the manifest)."""
        ...  # pragma: no cover - a protocol


def _sources_frame(sources: Sequence[AudioSegment]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": [s.key for s in sources],
            "path": [str(s.path) for s in sources],
            "start_s": [s.start_s for s in sources],
            "end_s": [s.end_s for s in sources],
        }
    )


def _sources_digest(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


class FeatureStore:
    """A store folder opened for reading (see module docstring for the layout)."""

    def __init__(self, root: Path, manifest: dict, index: pd.DataFrame):
        self.root = root
        self.manifest = manifest
        self.index = index

    @classmethod
    def open(cls, root: str | Path) -> FeatureStore:
        root = Path(root)
        manifest_path = root / _MANIFEST
        if not manifest_path.is_file():
            raise StoreError(f"{root} is not a feature store (no {_MANIFEST}); extract into it first.")
        manifest = json.loads(manifest_path.read_text())
        check_format_version(
            manifest.get("format_version"),
            (FORMAT_VERSION,),
            what=f"the store {root}",
            error=StoreError,
            fix="Extract into a new --out (or --overwrite) with this audiosep-kit.",
        )
        index = pd.read_csv(root / _SOURCES, keep_default_na=False, na_values={"start_s": [""], "end_s": [""]})
        return cls(root, manifest, _join_journal(index, root / _JOURNAL))

    @property
    def features(self) -> np.ndarray:
        """(N, D) float32, memory-mapped read-only; NaN rows were not extracted (see index.status)."""
        return np.load(self.root / _FEATURES, mmap_mode="r")

    @property
    def complete(self) -> bool:
        return bool((self.index["status"] != "pending").all())

    def failures(self) -> pd.DataFrame:
        return self.index[self.index["status"] == "error"][["path", "start_s", "end_s", "error", "transient"]]

    def skipped(self) -> pd.DataFrame:
        """Candidates a folder walk saw and did not take (path, reason); empty when none were given."""
        path = self.root / _SKIPPED
        return pd.read_csv(path, keep_default_na=False) if path.is_file() else pd.DataFrame(columns=["path", "reason"])


def _join_journal(index: pd.DataFrame, journal: Path) -> pd.DataFrame:
    """Sources plus, per row, its latest journal record (rows without one are 'pending')."""
    records = pd.DataFrame(list(read_journal(journal)))
    out = index.copy()
    for column, default in _ROW_FIELDS.items():
        out[column] = default
    if records.empty:
        return out
    records = records[(records["row"] >= 0) & (records["row"] < len(out))].drop_duplicates("row", keep="last")
    rows = records["row"].to_numpy()
    for column in _ROW_FIELDS:
        if column in records:
            values = records[column]
            out[column] = out[column].astype(object) if values.dtype == object else out[column]
            out.loc[rows, column] = values.to_numpy()
    out["transient"] = out["transient"].fillna(False).astype(bool)
    out["error"] = out["error"].fillna("").astype(str)
    out["sha256"] = out["sha256"].fillna("").astype(str)
    return out


def holds_store(root: Path) -> bool:
    """Whether ``root`` is a store a run would resume (its manifest, written last, marks it valid)."""
    return (root / _MANIFEST).is_file()


def store_manifest(extractor, keys: Sequence[str]) -> dict:
    """The manifest a run of ``extractor`` over the inputs ``keys`` writes. With ``extractor=None``
    (a dry run that loads no model) only the entries the inputs decide: the format and the sources."""
    if extractor is None:
        return {"format_version": FORMAT_VERSION, "num_sources": len(keys), "sources_sha256": _sources_digest(keys)}
    info = extractor.describe()
    return {
        "format_version": FORMAT_VERSION,
        "weights_sha256": info["weights"]["sha256"],
        "weights": info["weights"],
        "backend": info["backend"],
        "precision": info["precision"],
        "executed": info["executed"],
        "encoder": info["encoder"],
        "resampler": info["resampler"],
        "sample_rate": info["sample_rate"],
        "tiling": info.get("tiling"),
        "versions": info["versions"],
        "created": info["date"],
        "num_sources": len(keys),
        "sources_sha256": _sources_digest(keys),
    }


def check_extends(store: FeatureStore, manifest: dict) -> None:
    """Refuse a run whose configuration differs from the store's in the ``_MUST_MATCH`` entries that
    ``manifest`` has (a dry run without a model knows only some: the sources, the format)."""
    diffs = [k for k in _MUST_MATCH if k in manifest and store.manifest.get(k) != manifest.get(k)]
    if diffs:
        detail = "; ".join(f"{k}: store has {store.manifest.get(k)!r}, this run {manifest.get(k)!r}" for k in diffs)
        raise StoreError(
            f"{store.root} was written by another configuration ({detail}). Use a new --out or --overwrite."
        )


def prepare_store(root: Path, extractor, sources: Sequence[AudioSegment], overwrite: bool) -> FeatureStore:
    """Open the store for this run, or create it; called under the store lock."""
    keys = [s.key for s in sources]
    manifest = store_manifest(extractor, keys)
    if holds_store(root) and not overwrite:
        store = FeatureStore.open(root)
        check_extends(store, manifest)
        return store
    for name in (_MANIFEST, _JOURNAL, _FEATURES, _SOURCES, _INDEX, _SKIPPED):
        (root / name).unlink(missing_ok=True)  # the manifest first: a half-reset folder is no store
    create_matrix(root / _FEATURES, len(sources), extractor.config.output_dim)
    atomic_write_text(root / _SOURCES, _sources_frame(sources).to_csv(index=False))
    atomic_write_text(root / _MANIFEST, json.dumps(manifest, indent=2))  # written last: marks the store valid
    return FeatureStore.open(root)


def _changed_rows(index: pd.DataFrame, verify_content: bool) -> list[int]:
    """Finished rows whose input is no longer what was extracted (size, mtime, then content)."""
    changed: list[int] = []
    hashes: dict = {}
    for row in np.flatnonzero(index["status"].to_numpy() != "pending"):
        recorded = index.iloc[row]
        path = Path(recorded["path"])
        stat = file_stat(path)
        if stat is None or not recorded["sha256"]:
            continue  # gone or unreadable now (its record stays), or never read
        same_stat = stat == (recorded["size"], recorded["mtime_ns"])
        if same_stat and not verify_content:
            continue
        if fingerprint(path, hashes)["sha256"] != recorded["sha256"]:
            changed.append(int(row))
    return changed


def _local_results(extractor, sources, decoding, bar: ExtractionBar) -> Iterator[tuple[dict, dict]]:
    """The local engine: each chunk decoded ahead (threads or processes) and embedded here."""
    with closing(decoding):  # stops worker processes at once
        for chunk, decoded in decoding:
            yield chunk_outcome(extractor, sources, chunk, decoded, bar)


@contextmanager
def row_files(root: Path) -> Iterator[tuple[MatrixWriter, IO[str]]]:
    """A store's matrix writer and journal, open for a run's rows (a line torn by a kill cut first)."""
    drop_torn_tail(root / _JOURNAL)
    writer = MatrixWriter(root / _FEATURES)
    try:
        with open(root / _JOURNAL, "a", encoding="utf-8") as journal:
            yield writer, journal
    finally:
        writer.close()


def as_segment(source: AudioSegment | str | Path) -> AudioSegment:
    """An absolute-path segment: a store's identity must not depend on the working directory."""
    segment = source if isinstance(source, AudioSegment) else AudioSegment(Path(source))
    return AudioSegment(Path(os.path.abspath(segment.path)), segment.start_s, segment.end_s)


def rows_to_run(store: FeatureStore, retry_failed: bool, verify_content: bool) -> tuple[list[int], dict]:
    index = store.index
    status = index["status"].to_numpy()
    pending = set(np.flatnonzero(status == "pending").tolist())
    errors = status == "error"
    retried = set(np.flatnonzero(errors & (index["transient"].to_numpy() | retry_failed)).tolist())
    changed = set(_changed_rows(index, verify_content))
    reasons = {"new": len(pending), "retried": len(retried - pending), "changed": len(changed - pending - retried)}
    return sorted(pending | retried | changed), reasons


def extract_to_store(
    extractor,
    sources: Sequence[AudioSegment | str | Path],
    out_dir: str | Path,
    *,
    chunk_size: int = 64,
    workers: int = 2,
    processes: bool = False,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    overwrite: bool = False,
    retry_failed: bool = False,
    verify_content: bool = False,
    skipped: Sequence[tuple[str | Path, str]] = (),
    progress: bool | None = None,
    engine: ChunkEngine | None = None,
) -> FeatureStore:
    """Extract features of ``sources`` into the store at ``out_dir``, resuming where it stopped.

    Decoding and resampling run in ``workers`` threads one chunk ahead of inference, so the cores
    stay busy, or with ``processes`` in ``workers`` worker processes (for a fast backend or a GPU;
    the store is the same byte for byte, see features._decoding). A resumed run also redoes errors
    that may be transient, every error with ``retry_failed``, and inputs whose content changed (see
    the module docstring). ``skipped`` (path, reason) pairs, from a folder walk, are written to
    ``skipped.csv``. ``progress=None`` shows a bar only on a terminal. With an ``engine`` (a
    :class:`ChunkEngine` such as features.RayEngine) the chunks are decoded and embedded elsewhere (on
    a Ray cluster) and this process only commits what comes back: the same store (see features._ray).
    """
    if not extractor.fixed_width:
        raise ConfigError(
            f"a feature store holds one fixed-width vector per clip; pooling={extractor.config.pooling!r} "
            "is not (use mean, meanstd or max, or call FeatureExtractor.embed_files)."
        )
    if chunk_size < 1 or workers < 1:
        raise ConfigError(f"`chunk_size` and `workers` must be >= 1; got {chunk_size}, {workers}.")
    segments = [as_segment(s) for s in sources]
    root = Path(out_dir)
    with full_disk_names_store(root), store_lock(root):
        store = prepare_store(root, extractor, segments, overwrite)
        if skipped:
            frame = pd.DataFrame([(str(p), r) for p, r in skipped], columns=["path", "reason"])
            atomic_write_text(root / _SKIPPED, frame.to_csv(index=False))
        rows, reasons = rows_to_run(store, retry_failed, verify_content)
        started = time.perf_counter()
        bar = ExtractionBar(len(rows), progress)
        if engine is None:
            decoding = decoded_chunks(segments, rows, chunk_size, workers, max_seconds, extractor.config, processes)
            results = _local_results(extractor, segments, decoding, bar)
            how = {"name": "local", "decoding": f"{workers} {'worker processes' if processes else 'threads'}"}
        else:
            results, how = engine.run(extractor, segments, rows, chunk_size, max_seconds, bar)
        _commit_all(root, results, bar)
        finish_manifest(FeatureStore.open(root), rows, reasons, time.perf_counter() - started, len(skipped), how)
    return FeatureStore.open(root)


def _commit_all(root: Path, results: Iterator[tuple[dict, dict]], bar: ExtractionBar) -> None:
    """Commit each chunk's (records, vectors) as it comes; this process is the store's one writer."""
    try:
        with row_files(root) as (writer, journal), closing(results):  # type: ignore[type-var]
            for records, vectors in results:
                commit_rows(writer, journal, records, vectors)
    finally:
        bar.close()


def finish_manifest(
    store: FeatureStore, rows: list[int], reasons: dict, seconds: float, skipped: int, engine: dict | None = None
) -> None:
    """Counts and the last run (what it did, how fast, which engine and how it decoded) into the
    manifest; the index."""
    manifest = dict(store.manifest)
    counts = store.index["status"].value_counts().to_dict()
    manifest.update(
        complete=store.complete,
        counts={k: int(v) for k, v in counts.items()},
        skipped=skipped,
        last_run={
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "rows_processed": len(rows),
            **{f"rows_{name}": count for name, count in reasons.items()},
            "seconds": round(seconds, 3),
            "files_per_second": round(len(rows) / seconds, 3) if seconds > 0 and rows else None,
            **({"decoding": engine["decoding"]} if engine and "decoding" in engine else {}),
        },
        **({"engine": engine} if engine else {}),
    )
    atomic_write_text(store.root / _MANIFEST, json.dumps(manifest, indent=2))
    atomic_write_text(store.root / _INDEX, store.index.to_csv(index=False))
