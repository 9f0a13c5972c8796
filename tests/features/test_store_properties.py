"""Property tests of the store: whatever the inputs and wherever failures fall, no file is dropped,
only the files at fault are marked, and a good file's row is its solo features."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiosep_kit.audio import read_audio
from audiosep_kit.features import extract_to_store

#: One input: (seconds, rate, channels, subtype, kind); kind 'corrupt' / 'nan' / 'explodes' are bad.
_INPUT = st.tuples(
    st.floats(min_value=0.0, max_value=0.4),
    st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]),
    st.integers(min_value=1, max_value=6),
    st.sampled_from(["PCM_16", "PCM_24", "FLOAT", "DOUBLE"]),
    st.sampled_from(["good", "good", "good", "corrupt", "nan", "explodes"]),
)


class _Extractor:
    """A cheap, deterministic stand-in for the encoder (the store's logic is under test, not the model).

    A clip's vector depends on that clip alone; a batch holding an 'exploding' clip (marked by its
    first sample) raises, as a backend error or out-of-memory would.
    """

    fixed_width = True
    config = SimpleNamespace(pooling="mean", output_dim=3, pad_to_32=True, layer="center")

    def __init__(self, explode_marker: float):
        self.marker = explode_marker

    def describe(self) -> dict:
        return {
            "weights": {"sha256": "0" * 64},
            "backend": "fake",
            "precision": "fp32",
            "executed": {},
            "encoder": {"pooling": "mean"},
            "resampler": "soxr-HQ",
            "sample_rate": 32000,
            "versions": {},
            "date": "",
        }

    def embed_waves(self, waves):
        if any(w[0] == self.marker for w in waves):
            raise RuntimeError("the backend exploded on this batch")
        return [np.array([w.mean(), w.std(), w.shape[0]], np.float32) for w in waves]


def _write(folder: Path, i: int, spec, marker: float) -> Path:
    seconds, rate, channels, subtype, kind = spec
    path = folder / f"in{i:02d}.wav"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
        return path
    rng = np.random.default_rng(i)
    frames = max(int(seconds * (32000 if kind == "explodes" else rate)), 1 if kind != "good" else 0)
    data = (0.1 * rng.standard_normal((frames, channels))).astype(np.float64)
    if kind == "nan":
        subtype = "FLOAT"
        data[frames // 2, 0] = np.nan
    if kind == "explodes":  # at 32 kHz, so the marker reaches the extractor unresampled
        rate, subtype, data[:] = 32000, "FLOAT", marker
    sf.write(path, data, rate, subtype=subtype)
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(_INPUT, min_size=1, max_size=12), chunk=st.integers(min_value=1, max_value=5))
def test_no_file_dropped_only_bad_ones_marked_good_rows_are_solo(specs, chunk):
    marker = 0.0625  # exactly representable: survives any float subtype
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = [_write(folder, i, spec, marker) for i, spec in enumerate(specs)]
        extractor = _Extractor(marker)
        store = extract_to_store(extractor, paths, folder / "store", chunk_size=chunk, workers=2)
        index = store.index
        assert index["path"].tolist() == [str(p) for p in paths] and store.complete
        for row, (path, spec) in enumerate(zip(paths, specs, strict=True)):
            expect_bad = spec[4] != "good" or int(spec[0] * spec[1]) == 0  # 0 frames: empty audio
            assert (index.loc[row, "status"] == "error") == expect_bad, index.loc[row, "error"]
            if expect_bad:
                assert str(path) in index.loc[row, "error"] and np.isnan(store.features[row]).all()
            else:
                solo = extractor.embed_waves([read_audio(path).waveform])[0]
                np.testing.assert_array_equal(store.features[row], solo)
        # Resuming changes nothing that was recorded.
        again = extract_to_store(extractor, paths, folder / "store", chunk_size=chunk)
        np.testing.assert_array_equal(again.features, store.features)
