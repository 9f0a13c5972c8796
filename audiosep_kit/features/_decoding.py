"""Decoding and resampling for the store, ahead of inference: in threads, or in worker processes.

Why two ways: on two cores the model takes both, and decoding in two threads of the same process one
chunk ahead keeps them busy at no start-up cost. A fast backend or a GPU consumes audio faster than
one core decodes and resamples it (see benchmarks/README.md for the per-core rates), and Python
threads share one interpreter, so there the decoding runs in ``workers`` processes: a torch
``DataLoader`` whose batches are the store's chunks, in order, with at most ``BACKLOG_CHUNKS`` chunks
per worker decoded ahead (the backlog cap that bounds memory: ``workers * BACKLOG_CHUNKS + 1``
chunks of decoded clips at most).

Either way each row is decoded by the same function into the same (clip or error, identity) pair,
and the caller sees the same chunks in the same order, so the store written is byte for byte the
same (see tests/features/test_decoding.py).
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.context
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from audiosep_kit._identity import file_sha256, file_stat
from audiosep_kit.audio import AudioClip, AudioSegment, read_audio
from audiosep_kit.errors import AudioSepKitError
from audiosep_kit.runtime import check_clip_length

#: Chunks each worker process decodes ahead of the model (the DataLoader's prefetch factor).
BACKLOG_CHUNKS = 2
#: How often a worker process checks that its driver still runs (it exits within this after a kill).
WATCH_SECONDS = 1.0
#: Most worker processes the automatic choice starts (a GPU fed by more decoders than this is rare).
MAX_AUTO_WORKERS = 8


#: What decoding one row gives: the clip, or the error that stopped it, and the input's identity.
Decoded = tuple[AudioClip | Exception, dict]


def fingerprint(path: Path, hashes: dict) -> dict:
    """Size, mtime (ns) and SHA-256 of an input; None values where the file cannot be read."""
    stat = file_stat(path)
    if stat is None:
        return {"size": None, "mtime_ns": None, "sha256": None}
    if (path, stat) not in hashes:  # segments of one file share its hash
        try:
            hashes[(path, stat)] = file_sha256(path)
        except OSError:
            hashes[(path, stat)] = None
    return {"size": stat[0], "mtime_ns": stat[1], "sha256": hashes[(path, stat)]}


def decode_row(source: AudioSegment, max_seconds: float, config, hashes: dict) -> Decoded:
    """The model-ready clip of ``source`` (or the error that stopped it) and the input's identity."""
    identity = fingerprint(source.path, hashes)
    try:
        clip = read_audio(source.path, start_s=source.start_s, end_s=source.end_s, max_seconds=max_seconds)
        check_clip_length(config, clip.waveform.shape[0], source.key)  # named here, before batching
    except (AudioSepKitError, MemoryError) as exc:
        return exc, identity
    except Exception as exc:  # an unexpected decoder failure must not kill a long job: record it
        return RuntimeError(f"{source.path}: {type(exc).__name__}: {exc}"), identity
    return clip, identity


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class _Rows(Dataset[Decoded]):
    """Map-style dataset of the sources: item ``row`` is ``decode_row`` of that source. Picklable,
    so a worker process started by spawn or forkserver gets it too."""

    def __init__(self, sources: Sequence[AudioSegment], max_seconds: float, config):
        self.sources, self.max_seconds, self.config = list(sources), max_seconds, config
        self._hashes: dict = {}  # per process: a cache of file hashes, never shared state

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, row: int) -> Decoded:
        return decode_row(self.sources[row], self.max_seconds, self.config, self._hashes)


def _in_threads(dataset: _Rows, chunks: list[list[int]], workers: int) -> Iterator[tuple[list[int], list]]:
    with ThreadPoolExecutor(workers) as pool:
        upcoming = [pool.submit(dataset.__getitem__, r) for r in chunks[0]] if chunks else []
        for k, chunk in enumerate(chunks):
            decoded = [f.result() for f in upcoming]
            upcoming = [pool.submit(dataset.__getitem__, r) for r in chunks[k + 1]] if k + 1 < len(chunks) else []
            yield chunk, decoded


def _start_method() -> multiprocessing.context.BaseContext:
    """Forkserver (spawn where there is none), never fork: a forked worker would inherit the store's
    lock (an ``flock`` on a descriptor it shares), so after a SIGKILL of the driver an orphaned worker
    would hold the store against the rerun; fork also copies the model's thread pools."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # workers fork from a server that has imported the decoders
    return context


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, killed and not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): kill(pid, 0) is the answer
        return True
    return state not in ("Z", "X")


def _exit_with_driver(driver: int, worker_id: int) -> None:
    """``worker_init_fn``: end this worker when the driver is gone. Why: a worker's parent is the
    forkserver, not the driver, and each keeps the other alive (the server lives while a client holds
    its pipe, torch's watchdog only checks the parent), so a SIGKILLed driver would leave them forever."""

    def watch() -> None:
        while _alive(driver):
            time.sleep(WATCH_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name=f"decode-{worker_id}-watch", daemon=True).start()


def _in_processes(dataset: _Rows, chunks: list[list[int]], workers: int) -> Iterator[tuple[list[int], list]]:
    loader: DataLoader[Decoded] = DataLoader(
        dataset,
        batch_sampler=chunks,
        collate_fn=list,
        num_workers=workers,
        prefetch_factor=BACKLOG_CHUNKS,
        multiprocessing_context=_start_method(),
        worker_init_fn=functools.partial(_exit_with_driver, os.getpid()),
    )
    yield from zip(chunks, loader, strict=True)


def decoded_chunks(
    sources: Sequence[AudioSegment],
    rows: list[int],
    chunk_size: int,
    workers: int,
    max_seconds: float,
    config,
    processes: bool = False,
) -> Iterator[tuple[list[int], list]]:
    """(rows, decoded) per chunk of ``rows``, decoded ahead of the caller's inference in ``workers``
    threads (one chunk ahead) or, with ``processes``, ``workers`` processes (see the module docstring).
    ``config`` decides which clips are too short."""
    chunks = _chunks(rows, chunk_size)
    run = _in_processes if processes and chunks else _in_threads
    yield from run(_Rows(sources, max_seconds, config), chunks, workers)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(device: str, cores: int) -> tuple[int, str]:
    """How many decoding processes a run gets unless told (0: threads of the driver), and why.

    On a GPU every core but the driver's decodes: the model leaves the CPU idle and consumes audio
    faster than a few cores decode it. On the CPU one core decodes and resamples 16-48 kHz audio
    tens of times faster than any CPU backend embeds it (benchmarks/README.md), so two threads of
    the driver keep the model fed and worker processes would only add their start-up (seconds).
    """
    if device.startswith("cuda"):
        workers = max(1, min(cores - 1, MAX_AUTO_WORKERS))
        return workers, f"{cores} cores, the model on {device}: every core but the driver's decodes"
    return 0, "the model on the CPU: decoding is a few per cent of its work, two threads keep it fed"
