"""prepare_batch: what embed accepts, and the shapes that look right but are refused before any compute."""

from __future__ import annotations

import re

import numpy as np
import pytest

from audiosep_kit.audio import prepare_batch, prepare_waveform
from audiosep_kit.errors import AudioDecodeError
from audiosep_kit.model._config import SAMPLE_RATE

CHANNELS_FIX = "pass `x.T` or `x.mean(axis=1)`; `embed` takes (batch, samples)"


def test_one_waveform_and_a_batch():
    """1-D -> one prepared row flagged single; 2-D -> its rows, each what prepare_waveform gives."""
    wave = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)
    rows, single = prepare_batch(wave, 16000)
    assert single and len(rows) == 1 and np.array_equal(rows[0], prepare_waveform(wave, 16000)[0])
    rows, single = prepare_batch(np.stack([wave, -wave, wave]), 16000)
    assert not single and len(rows) == 3 and np.array_equal(rows[1], prepare_waveform(-wave, 16000)[0])


def test_a_list_of_equal_length_rows_is_a_batch():
    rows, single = prepare_batch([np.zeros(2000, np.float32), np.ones(2000, np.float32) * 0.1], SAMPLE_RATE)
    assert not single and [r.shape for r in rows] == [(2000,), (2000,)]


@pytest.mark.parametrize("shape", [(32000, 2), (48000, 1), (441000, 6), (128, 8)])
def test_frames_channels_is_refused_with_the_fix(shape):
    """soundfile.read's (frames, channels) would run as thousands of few-sample clips: refused, with the fix."""
    with pytest.raises(AudioDecodeError, match=re.escape(f"<batch>: shape {shape} looks like (frames, channels)")):
        prepare_batch(np.zeros(shape, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioDecodeError, match=re.escape(CHANNELS_FIX)):
        prepare_batch(np.zeros(shape, np.float32), SAMPLE_RATE)


@pytest.mark.parametrize("shape", [(2, 32000), (8, 9), (127, 8), (3, 2), (40, 16)])
def test_batches_are_not_mistaken_for_channels(shape):
    """(channels, frames), short but square-ish batches and > 8 columns pass as (batch, samples)."""
    rows, single = prepare_batch(np.zeros(shape, np.float32), SAMPLE_RATE)
    assert not single and len(rows) == shape[0]


def test_ragged_rows_are_refused_with_the_ways_out():
    """Rows of different lengths: a clear refusal listing the lengths and the two alternatives."""
    waves = [np.zeros(32000, np.float32), np.zeros(16000, np.float32), np.zeros(32000, np.float32)]
    message = r"`embed` takes one waveform or equal-length rows; got 3 rows of lengths 16000, 32000\. .*embed_waves"
    with pytest.raises(AudioDecodeError, match=message):
        prepare_batch(waves, SAMPLE_RATE)
    with pytest.raises(AudioDecodeError, match=r"got 2 rows of lengths 1, 2\."):
        prepare_batch(np.array([np.zeros(1), np.zeros(2)], dtype=object), SAMPLE_RATE)


def test_an_empty_batch_has_no_rows():
    """(0, L) -> no rows (embed returns (0, D)); the rate is still checked."""
    assert prepare_batch(np.zeros((0, 4000), np.float32), 16000) == ([], False)
    with pytest.raises(AudioDecodeError, match=r"<batch>: sample_rate must be a positive integer"):
        prepare_batch(np.zeros((0, 4000), np.float32), 0)


def test_other_ranks_and_bad_rows():
    with pytest.raises(AudioDecodeError, match=re.escape("a 2-D (batch, samples) array; got shape (1, 1, 2000)")):
        prepare_batch(np.zeros((1, 1, 2000), np.float32), SAMPLE_RATE)
    batch = np.zeros((3, 2000), np.float32)
    batch[1, 5] = np.inf
    with pytest.raises(AudioDecodeError, match=r"<row 1>: the audio holds 1 NaN or infinite"):
        prepare_batch(batch, SAMPLE_RATE)
