"""Feature stores: layout, per-file errors, resume, and refusal to mix configurations."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit._identity import file_sha256
from audiosep_kit.audio import AudioSegment, read_audio
from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features import FeatureStore, extract_to_store
from audiosep_kit.features._files import MatrixWriter
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


def _wave_file(path, seconds, seed, rate=16000):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return path


@pytest.fixture(scope="module")
def unpadded():
    return FeatureExtractor.from_checkpoint("random:0", batch_size=8, pad_to_32=False)


@pytest.mark.parametrize("pad_to_32", [True, False])
@pytest.mark.parametrize("position", range(5))
def test_one_bad_clip_marks_only_itself_in_any_batch_position(extractor, unpadded, tmp_path, position, pad_to_32):
    """Four equal-length good clips and one bad one in one chunk: only the bad one is an error, named,
    and the good rows equal their solo features. Without pad_to_32 the bad clip is too short for the
    tap (it used to fail the whole batch); with it, the clip fails inside inference (an injected error)."""
    engine = extractor if pad_to_32 else unpadded
    paths = [_wave_file(tmp_path / f"good{i}.wav", 0.5, i) for i in range(4)]
    bad = _wave_file(tmp_path / "bad.wav", 1000 / 32000 if not pad_to_32 else 0.5, 9, rate=32000)
    paths.insert(position, bad)

    class Failing:  # the real extractor, except that a batch holding the bad clip raises
        fixed_width, config = True, engine.config
        describe = engine.describe

        def embed_waves(self, waves):
            if pad_to_32 and any(w.shape == (16000,) and w[0] == bad_first for w in waves):
                raise RuntimeError("backend exploded")
            return engine.embed_waves(waves)

    bad_first = read_audio(bad).waveform[0]
    store = extract_to_store(Failing(), paths, tmp_path / "store", chunk_size=5)
    status = store.index["status"].tolist()
    assert status == ["error" if i == position else "ok" for i in range(5)]
    message = store.index.loc[position, "error"]
    assert str(bad) in message and ("pad-to-32" in message if not pad_to_32 else "backend exploded" in message)
    for row, path in enumerate(paths):
        if row != position:
            np.testing.assert_allclose(store.features[row], engine.embed_files([path])[0], rtol=1e-5, atol=1e-6)
    assert np.isnan(store.features[position]).all()


def test_transient_errors_are_retried_on_resume_and_permanent_ones_with_retry_failed(extractor, clips, tmp_path):
    good = clips[:3]
    state = {"oom": True}

    class Flaky:
        fixed_width, config, describe = True, extractor.config, extractor.describe

        def embed_waves(self, waves):
            if state["oom"] and any(w.shape[0] == 16000 for w in waves):  # clip 2: 0.5 s at 32 kHz
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return extractor.embed_waves(waves)

    root = tmp_path / "store"
    store = extract_to_store(Flaky(), [*good, clips[3]], root)
    assert store.index["status"].tolist() == ["ok", "ok", "error", "error"]
    assert store.index["transient"].tolist() == [False, False, True, False]
    assert "retried on the next run" in store.index.loc[2, "error"]
    state["oom"] = False
    store = extract_to_store(Flaky(), [*good, clips[3]], root)
    assert store.index["status"].tolist() == ["ok", "ok", "ok", "error"]
    assert store.manifest["last_run"]["rows_retried"] == 1
    store = extract_to_store(Flaky(), [*good, clips[3]], root, retry_failed=True)
    assert store.manifest["last_run"]["rows_processed"] == 1  # the corrupt file, tried again and failing again


def test_a_changed_file_under_the_same_name_is_recomputed(extractor, tmp_path):
    paths = [_wave_file(tmp_path / f"c{i}.wav", 0.5, i) for i in range(3)]
    root = tmp_path / "store"
    before = np.array(extract_to_store(extractor, paths, root).features)
    _wave_file(paths[1], 0.5, 42)  # new content, same name and size
    store = extract_to_store(extractor, paths, root)
    assert store.manifest["last_run"]["rows_changed"] == 1 and store.manifest["last_run"]["rows_processed"] == 1
    np.testing.assert_array_equal(store.features[[0, 2]], before[[0, 2]])
    assert np.abs(store.features[1] - before[1]).max() > 1e-3
    np.testing.assert_allclose(store.features[1], extractor.embed_files([paths[1]])[0], rtol=1e-5, atol=1e-6)
    # Content replaced with size and mtime put back: only --verify-content can tell, and it does.
    stat = paths[2].stat()
    _wave_file(paths[2], 0.5, 43)
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert extract_to_store(extractor, paths, root).manifest["last_run"]["rows_processed"] == 0
    store = extract_to_store(extractor, paths, root, verify_content=True)
    assert store.manifest["last_run"]["rows_changed"] == 1
    np.testing.assert_allclose(store.features[2], extractor.embed_files([paths[2]])[0], rtol=1e-5, atol=1e-6)
    assert store.index.loc[2, "sha256"] == file_sha256(paths[2])


def test_relative_sources_are_stored_as_absolute_paths(extractor, tmp_path, monkeypatch):
    _wave_file(tmp_path / "a.wav", 0.3, 0)
    monkeypatch.chdir(tmp_path)
    store = extract_to_store(extractor, ["a.wav"], "store")
    assert store.index["path"].tolist() == [str(tmp_path / "a.wav")]


def test_a_full_disk_is_a_clear_error_and_the_rerun_resumes(extractor, clips, tmp_path, monkeypatch):
    root = tmp_path / "store"
    writes = {"n": 0}
    original = MatrixWriter.write

    def write(self, row, vector):
        writes["n"] += 1
        if writes["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, row, vector)

    monkeypatch.setattr(MatrixWriter, "write", write)
    with pytest.raises(StoreError, match=r"no space left on the device holding the store .*rerun the same command"):
        extract_to_store(extractor, clips, root, chunk_size=3)
    monkeypatch.setattr(MatrixWriter, "write", original)
    resumed = extract_to_store(extractor, clips, root, chunk_size=3)
    clean = extract_to_store(extractor, clips, tmp_path / "clean", chunk_size=3)
    assert resumed.complete and resumed.manifest["last_run"]["rows_processed"] == len(clips) - 3
    np.testing.assert_array_equal(resumed.features, clean.features)


def test_a_second_writer_is_refused_while_the_lock_is_held(extractor, clips, tmp_path):
    import subprocess
    import sys

    root = tmp_path / "store"
    code = (
        "import sys, time; from pathlib import Path; from audiosep_kit.features._files import store_lock\n"
        "with store_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match=r"being written by another extraction \(pid \d+ on "):
            extract_to_store(extractor, clips[:1], root, overwrite=True)
    finally:
        holder.kill()
        holder.wait()
    assert not (root / "manifest.json").exists()  # the refused overwrite touched nothing


@pytest.mark.parametrize(
    "error, transient",
    [
        (MemoryError(), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 5368709120 bytes."), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (
            RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"),
            True,
        ),
        (RuntimeError("Given groups=1, weight of size [32, 1, 1, 1], expected input"), False),
        (ValueError("clip 0 has 1000 samples"), False),
    ],
)
def test_out_of_memory_in_any_engine_is_transient(error, transient):
    from audiosep_kit.features._embed import is_transient

    assert is_transient(error) is transient
