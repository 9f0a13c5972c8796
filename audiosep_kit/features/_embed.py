"""Inference of a chunk's clips for the store: isolated failures, batch by batch progress.

Why isolated: no clip's outcome may depend on its batch-mates, so a batch that fails is retried
clip by clip and only the clip at fault is marked. Why batch by batch: the progress bar advances
after each inference batch, not once per committed chunk (see features._progress).
"""

from __future__ import annotations

import numpy as np

from audiosep_kit.audio import AudioClip
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
