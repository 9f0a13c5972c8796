"""A chunk's outcome for the store: inference with isolated failures, batch by batch progress, and
the journal records of every row, whichever engine runs the chunk.

Why isolated: no clip's outcome may depend on its batch-mates, so a batch that fails is retried
clip by clip and only the clip at fault is marked. Why batch by batch: the progress bar advances
after each inference batch, not once per committed chunk (see features._progress).
"""

from __future__ import annotations

import numpy as np

from audiosep_kit.audio import AudioClip, AudioSegment
from audiosep_kit.features._progress import ExtractionBar


def embed_isolated(extractor, waves: list[np.ndarray]) -> list[np.ndarray | BaseException]:
    """Features of each wave, or the exception of the one that fails: a batch that fails is
    retried clip by clip, so no clip's outcome depends on its batch-mates."""
    try:
        return list(extractor.embed_waves(waves))
    except Exception as exc:
        if len(waves) == 1:
            return [exc]
    outcomes: list[np.ndarray | BaseException] = []
    for wave in waves:
        try:
            outcomes.append(extractor.embed_waves([wave])[0])
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def embed_in_batches(extractor, clips: list[AudioClip], bar: ExtractionBar) -> list:
    """``embed_isolated`` one batch at a time, advancing ``bar`` after each, so progress moves
    within a chunk. Clips are grouped by length first, so batches stay equal-length as before."""
    order = sorted(range(len(clips)), key=lambda i: clips[i].waveform.shape[0])
    size = getattr(extractor, "batch_size", None) or max(len(clips), 1)
    outcomes: list = [None] * len(clips)
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        for i, outcome in zip(batch, embed_isolated(extractor, [clips[i].waveform for i in batch]), strict=True):
            outcomes[i] = outcome
        bar.advance(len(batch), sum(clips[i].duration_s for i in batch))
    return outcomes


#: How out-of-memory reads in torch (CPU allocator, CUDA) and ONNX Runtime messages.
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "failed to allocate memory")


def is_transient(exc: BaseException) -> bool:
    """Errors that another attempt may not repeat: out of memory (host or device)."""
    message = str(exc).lower()
    return isinstance(exc, MemoryError) or any(pattern in message for pattern in _OUT_OF_MEMORY)


def failure_record(source: AudioSegment, exc: BaseException, stage: str) -> dict:
    message = str(exc) or type(exc).__name__
    if not message.startswith(str(source.path)):
        message = f"{source.key}: {stage} failed ({type(exc).__name__}: {message})"
    transient = is_transient(exc)
    if transient:
        message += "; retried on the next run (lower --batch-size or --window-seconds if it persists)"
    return {"status": "error", "error": message, "transient": transient}


def ok_record(clip: AudioClip) -> dict:
    return {
        "status": "ok",
        "error": "",
        "transient": False,
        "duration_s": round(clip.duration_s, 6),
        "original_sample_rate": clip.original_sample_rate,
        "channels": clip.channels,
        "padded_samples": clip.padded_samples,
    }


def chunk_outcome(
    extractor, sources, rows: list[int], decoded: list, bar: ExtractionBar
) -> tuple[dict[int, dict], dict[int, np.ndarray]]:
    """A decoded chunk's journal records (in ``rows`` order) and the features of its good rows.

    The one computation of a chunk, whichever engine runs it (this process, or a Ray actor), so every
    engine records the same outcome for the same rows."""
    records: dict[int, dict] = {}
    vectors: dict[int, np.ndarray] = {}
    good = []
    for row, (outcome, identity) in zip(rows, decoded, strict=True):
        if isinstance(outcome, BaseException):
            records[row] = {**failure_record(sources[row], outcome, "decoding"), **identity}
        else:
            good.append((row, outcome, identity))
    bar.advance(len(rows) - len(good))
    outcomes = embed_in_batches(extractor, [clip for _, clip, _ in good], bar) if good else []
    for (row, clip, identity), vector in zip(good, outcomes, strict=True):
        if isinstance(vector, BaseException):
            records[row] = {**failure_record(sources[row], vector, "inference"), **identity}
        else:
            vectors[row] = vector
            records[row] = {**ok_record(clip), **identity}
    return {row: records[row] for row in rows}, vectors
