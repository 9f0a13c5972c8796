"""What ``FeatureExtractor.embed`` accepts: one waveform, or a batch of equal-length rows.

The shapes that look right but are not are refused here, before any compute: a (frames, channels) array
as soundfile.read returns it (it would run as thousands of 2-sample clips, for minutes), and a list of
waveforms of different lengths (numpy's own error names neither the cause nor the fix).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiosep_kit.audio._decode import DEFAULT_MAX_SECONDS
from audiosep_kit.audio._io import check_sample_rate, looks_channels_last, prepare_waveform
from audiosep_kit.errors import AudioDecodeError

#: How many distinct lengths a ragged-batch refusal lists.
_SHOWN_LENGTHS = 5


def _ragged_error(waveforms: Any) -> AudioDecodeError:
    """The refusal of rows that do not form one (batch, samples) array, with the two ways out."""
    try:
        lengths = sorted({len(w) for w in waveforms})
        more = ", ..." if len(lengths) > _SHOWN_LENGTHS else ""
        got = f"{len(waveforms)} rows of lengths {', '.join(map(str, lengths[:_SHOWN_LENGTHS]))}{more}"
    except TypeError:
        got = f"a {type(waveforms).__name__}"
    return AudioDecodeError(
        f"`embed` takes one waveform or equal-length rows; got {got}. Embed them one by one "
        "(`[fx.embed(w, sample_rate) for w in waves]`), or prepare each with `prepare_waveform` and pass the "
        "list to `embed_waves`, which batches equal lengths itself."
    )


def _as_array(waveforms: Any) -> np.ndarray:
    """``waveforms`` as one numeric array, or the ragged-rows refusal."""
    try:
        array = np.asarray(waveforms)
    except ValueError as exc:  # numpy >= 1.24: "setting an array element with a sequence ... inhomogeneous"
        raise _ragged_error(waveforms) from exc
    if array.dtype == object:
        raise _ragged_error(waveforms)
    return array


def prepare_batch(
    waveforms: Any, sample_rate: int, *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> tuple[list[np.ndarray], bool]:
    """Model-ready 32 kHz rows of ``waveforms`` and whether it was a single 1-D waveform.

    1-D -> ``([wave], True)``; 2-D (B, L) or a list of B equal-length rows -> ``(B rows, False)``, B may be 0.
    Every row passes :func:`prepare_waveform` (named ``<row i>`` in its refusals).
    """
    array = _as_array(waveforms)
    if array.ndim == 1:
        return [prepare_waveform(array, sample_rate, max_seconds=max_seconds)[0]], True
    if array.ndim != 2:
        raise AudioDecodeError(f"expected a 1-D waveform or a 2-D (batch, samples) array; got shape {array.shape}.")
    if looks_channels_last(array.shape):
        raise AudioDecodeError(
            f"<batch>: shape {array.shape} looks like (frames, channels), as soundfile.read returns: "
            "pass `x.T` or `x.mean(axis=1)`; `embed` takes (batch, samples)."
        )
    check_sample_rate(sample_rate, "<batch>")
    rows = [
        prepare_waveform(row, sample_rate, source=f"<row {i}>", max_seconds=max_seconds)[0]
        for i, row in enumerate(array)
    ]
    return rows, False
