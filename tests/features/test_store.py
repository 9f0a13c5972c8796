"""Feature stores: layout, per-file errors, resume, and refusal to mix configurations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.audio import AudioSegment
from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features import FeatureStore, extract_to_store
from audiosep_kit.runtime._extractor import FeatureExtractor


@pytest.fixture(scope="module")
def extractor():
    return FeatureExtractor.from_checkpoint("random:0", batch_size=4)


@pytest.fixture()
def clips(tmp_path):
    """Six short clips of three lengths and rates, plus one corrupt and one empty file."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (seconds, rate) in enumerate(
        [(0.3, 16000), (0.3, 16000), (0.5, 32000), (0.2, 44100), (0.3, 16000), (0.5, 32000)]
    ):
        path = tmp_path / "audio" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
        paths.append(path)
    corrupt = tmp_path / "audio" / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00junk" * 10)
    empty = tmp_path / "audio" / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    return paths[:3] + [corrupt] + paths[3:] + [empty]


def test_store_rows_match_solo_features_and_errors_are_listed(extractor, clips, tmp_path):
    """Each ok row equals the clip's solo embedding; corrupt/empty files are 'error' rows with NaN
    features and a message naming the file — never dropped, never given a value."""
    store = extract_to_store(extractor, clips, tmp_path / "store", chunk_size=3)
    assert store.complete
    index = store.index
    assert list(index["path"]) == [str(p) for p in clips]
    status = dict(zip(index["path"], index["status"], strict=False))
    assert status[str(clips[3])] == "error" and status[str(clips[-1])] == "error"
    assert "corrupt.wav" in index.loc[3, "error"] and "empty.wav" in index.loc[len(clips) - 1, "error"]
    features = store.features
    assert features.shape == (len(clips), 384) and features.dtype == np.float32
    assert np.isnan(features[3]).all() and np.isnan(features[-1]).all()
    for row, path in enumerate(clips):
        if index.loc[row, "status"] == "ok":
            # Equal-length batch-mates change only float32 rounding (oneDNN picks batch-dependent
            # kernels for sub-second clips); the math never mixes clips.
            np.testing.assert_allclose(features[row], extractor.embed_files([path])[0], rtol=1e-5, atol=1e-6)
    assert index.loc[0, "original_sample_rate"] == 16000 and index.loc[0, "channels"] == 1
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["weights"]["random_weights"] is True
    assert manifest["weights_sha256"] == extractor.weights.sha256
    assert manifest["counts"] == {"ok": 6, "error": 2}
    assert manifest["encoder"]["pooling"] == "mean" and manifest["executed"]["device"] == "cpu"


def test_resume_keeps_recorded_rows_and_redoes_only_missing(extractor, clips, tmp_path, monkeypatch):
    """A journal that records only some rows (as after a kill) is resumed: only unrecorded rows run."""
    root = tmp_path / "store"
    extract_to_store(extractor, clips, root, chunk_size=3)
    reference = np.array(FeatureStore.open(root).features)
    journal = (root / "journal.jsonl").read_text().splitlines()
    # Keep the first chunk's lines and half of a torn line, wipe the other rows' features.
    (root / "journal.jsonl").write_text("\n".join(journal[:3]) + "\n" + journal[3][:10])
    features = np.load(root / "features.npy", mmap_mode="r+")
    features[3:] = np.nan
    features.flush()
    del features
    seen = []
    original = extractor.embed_waves
    monkeypatch.setattr(extractor, "embed_waves", lambda waves: seen.append(len(waves)) or original(waves))
    store = extract_to_store(extractor, clips, root, chunk_size=3)
    assert sum(seen) == 3  # rows 4-6; rows 0-2 are kept, rows 3 and 7 fail to decode again
    np.testing.assert_allclose(store.features, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(store.features[:3], reference[:3])  # kept rows: the same bytes
    assert store.complete


def test_store_refuses_other_configuration(extractor, clips, tmp_path):
    """Resuming with other weights into an existing store is refused, saying what differs."""
    root = tmp_path / "store"
    extract_to_store(extractor, clips[:2], root)
    other = FeatureExtractor.from_checkpoint("random:1")
    with pytest.raises(StoreError, match="weights_sha256"):
        extract_to_store(other, clips[:2], root)
    with pytest.raises(StoreError, match="sources_sha256"):
        extract_to_store(extractor, clips[:3], root)
    store = extract_to_store(other, clips[:2], root, overwrite=True)
    assert store.manifest["weights_sha256"] == other.weights.sha256


def test_store_needs_fixed_width_pooling(tmp_path):
    """pooling='frames' has no fixed width: the store says so instead of writing ragged rows."""
    frames = FeatureExtractor.from_checkpoint("random:0", pooling="frames")
    with pytest.raises(ConfigError, match="fixed-width"):
        extract_to_store(frames, [AudioSegment(tmp_path / "x.wav")], tmp_path / "store")


def test_open_refuses_unknown_format(tmp_path):
    """A store written by a future format is refused with the version numbers."""
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(StoreError, match="format_version 99"):
        FeatureStore.open(tmp_path)
