"""Feature stores: resumable, crash-safe extraction of many files into one memory-mappable array.

Layout of a store folder:
    manifest.json   what produced it (weights SHA-256, backend and what executed, encoder options,
                    versions, date) and ``format_version``; a resumed run must match it
    sources.csv     the N inputs in row order (written once)
    features.npy    float32 (N, D), memory-mappable; rows not (yet) extracted, or failed, are NaN
    journal.jsonl   one line per finished row: status 'ok' or 'error' (with the error), duration,
                    original sample rate, channels, zero padding

Why a journal: each chunk's rows are written and flushed to features.npy *before* their journal
lines are appended and fsynced, so a line always means "these bytes are on disk". A run killed at
any moment leaves at worst a partial last line (ignored) and rows that are recomputed; nothing that
was recorded as done is ever recomputed or lost.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from audiosep_kit._validation import atomic_write_text, check_format_version
from audiosep_kit.audio import DEFAULT_MAX_SECONDS, AudioClip, AudioSegment, read_audio
from audiosep_kit.errors import AudioSepKitError, ConfigError, StoreError

FORMAT_VERSION = 1
_MANIFEST, _SOURCES, _FEATURES, _JOURNAL = "manifest.json", "sources.csv", "features.npy", "journal.jsonl"
#: Manifest entries that must agree for a run to extend an existing store.
_MUST_MATCH = ("format_version", "weights_sha256", "backend", "precision", "encoder", "resampler", "sources_sha256")


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
        index["status"] = "pending"
        index["error"] = ""
        for column in ("duration_s", "original_sample_rate", "channels", "padded_samples"):
            index[column] = np.nan
        for row, record in _read_journal(root / _JOURNAL):
            if 0 <= row < len(index):
                for column, value in record.items():
                    index.at[row, column] = value
        return cls(root, manifest, index)

    @property
    def features(self) -> np.ndarray:
        """(N, D) float32, memory-mapped read-only; NaN rows were not extracted (see index.status)."""
        return np.load(self.root / _FEATURES, mmap_mode="r")

    @property
    def complete(self) -> bool:
        return bool((self.index["status"] != "pending").all())

    def failures(self) -> pd.DataFrame:
        return self.index[self.index["status"] == "error"][["path", "start_s", "end_s", "error"]]


def _read_journal(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill: its rows are simply done again
            if isinstance(record, dict) and "row" in record:
                yield int(record.pop("row")), record


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left half-written by a kill, so appended lines start on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _store_manifest(extractor, keys: Sequence[str]) -> dict:
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
        "versions": info["versions"],
        "created": info["date"],
        "num_sources": len(keys),
        "sources_sha256": _sources_digest(keys),
    }


def _prepare(root: Path, extractor, sources: Sequence[AudioSegment], overwrite: bool) -> FeatureStore:
    keys = [s.key for s in sources]
    manifest = _store_manifest(extractor, keys)
    if (root / _MANIFEST).is_file() and not overwrite:
        store = FeatureStore.open(root)
        diffs = [k for k in _MUST_MATCH if store.manifest.get(k) != manifest.get(k)]
        if diffs:
            detail = "; ".join(f"{k}: store has {store.manifest.get(k)!r}, this run {manifest.get(k)!r}" for k in diffs)
            raise StoreError(f"{root} was written by another configuration ({detail}). Use a new --out or --overwrite.")
        return store
    root.mkdir(parents=True, exist_ok=True)
    for name in (_JOURNAL, _FEATURES, _SOURCES, _MANIFEST):
        (root / name).unlink(missing_ok=True)
    features = np.lib.format.open_memmap(
        root / _FEATURES, mode="w+", dtype=np.float32, shape=(len(sources), extractor.config.output_dim)
    )
    features[:] = np.nan
    features.flush()
    del features
    atomic_write_text(root / _SOURCES, _sources_frame(sources).to_csv(index=False))
    atomic_write_text(root / _MANIFEST, json.dumps(manifest, indent=2))  # written last: marks the store valid
    return FeatureStore.open(root)


def _decode(source: AudioSegment, max_seconds: float) -> AudioClip | Exception:
    try:
        return read_audio(source.path, start_s=source.start_s, end_s=source.end_s, max_seconds=max_seconds)
    except AudioSepKitError as exc:
        return exc
    except Exception as exc:  # an unexpected decoder failure must not kill a long job: record it
        return RuntimeError(f"{source.path}: {type(exc).__name__}: {exc}")


def _record(row: int, outcome: AudioClip | Exception) -> dict:
    if isinstance(outcome, Exception):
        return {"row": row, "status": "error", "error": str(outcome)}
    return {
        "row": row,
        "status": "ok",
        "error": "",
        "duration_s": round(outcome.duration_s, 6),
        "original_sample_rate": outcome.original_sample_rate,
        "channels": outcome.channels,
        "padded_samples": outcome.padded_samples,
    }


def _process_chunk(extractor, rows: list[int], outcomes: list, features: np.memmap, journal) -> None:
    good = [(r, o) for r, o in zip(rows, outcomes, strict=True) if not isinstance(o, Exception)]
    if good:
        try:
            vectors = extractor.embed_waves([o.waveform for _, o in good])
        except Exception as exc:  # e.g. out of memory on one huge clip: keep going, say why
            outcomes = [
                RuntimeError(f"inference failed: {exc}") if not isinstance(o, Exception) else o for o in outcomes
            ]
            good = []
        for (row, _), vector in zip(good, vectors if good else [], strict=True):
            features[row] = vector
        features.flush()
    lines = "".join(json.dumps(_record(r, o)) + "\n" for r, o in zip(rows, outcomes, strict=True))
    journal.write(lines)
    journal.flush()
    os.fsync(journal.fileno())


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def extract_to_store(
    extractor,
    sources: Sequence[AudioSegment | str | Path],
    out_dir: str | Path,
    *,
    chunk_size: int = 64,
    workers: int = 2,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    overwrite: bool = False,
    progress: bool | None = None,
) -> FeatureStore:
    """Extract features of ``sources`` into the store at ``out_dir``, resuming where it stopped.

    Decoding and resampling run in ``workers`` threads one chunk ahead of inference, so the cores
    stay busy. ``progress=None`` shows a bar only on a terminal.
    """
    if not extractor.fixed_width:
        raise ConfigError(
            f"a feature store holds one fixed-width vector per clip; pooling={extractor.config.pooling!r} "
            "is not (use mean, meanstd or max, or call FeatureExtractor.embed_files)."
        )
    if chunk_size < 1 or workers < 1:
        raise ConfigError(f"`chunk_size` and `workers` must be >= 1; got {chunk_size}, {workers}.")
    segments = [s if isinstance(s, AudioSegment) else AudioSegment(Path(s)) for s in sources]
    root = Path(out_dir)
    store = _prepare(root, extractor, segments, overwrite)
    pending = [int(i) for i in np.flatnonzero(store.index["status"].to_numpy() == "pending")]
    started = time.perf_counter()
    _run_pending(extractor, segments, root, pending, chunk_size, workers, max_seconds, progress, len(segments))
    store = FeatureStore.open(root)
    _finish_manifest(store, len(pending), time.perf_counter() - started)
    return FeatureStore.open(root)


def _run_pending(extractor, sources, root, pending, chunk_size, workers, max_seconds, progress, total) -> None:
    from tqdm.auto import tqdm

    features = np.load(root / _FEATURES, mmap_mode="r+")
    _drop_torn_tail(root / _JOURNAL)
    bar = tqdm(
        total=total, initial=total - len(pending), unit="file", disable=(None if progress is None else not progress)
    )
    with open(root / _JOURNAL, "a", encoding="utf-8") as journal, ThreadPoolExecutor(workers) as pool:
        chunks = list(_chunks(pending, chunk_size))
        submit = lambda chunk: [pool.submit(_decode, sources[r], max_seconds) for r in chunk]  # noqa: E731
        upcoming = submit(chunks[0]) if chunks else []
        for k, chunk in enumerate(chunks):
            outcomes = [f.result() for f in upcoming]
            upcoming = submit(chunks[k + 1]) if k + 1 < len(chunks) else []
            _process_chunk(extractor, chunk, outcomes, features, journal)
            bar.update(len(chunk))
    bar.close()
    del features


def _finish_manifest(store: FeatureStore, extracted: int, seconds: float) -> None:
    manifest = dict(store.manifest)
    counts = store.index["status"].value_counts().to_dict()
    manifest.update(
        complete=store.complete,
        counts={k: int(v) for k, v in counts.items()},
        last_run={
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "rows_processed": extracted,
            "seconds": round(seconds, 3),
            "files_per_second": round(extracted / seconds, 3) if seconds > 0 and extracted else None,
        },
    )
    atomic_write_text(store.root / _MANIFEST, json.dumps(manifest, indent=2))
    store.index.to_csv(store.root / "index.csv", index=False)
