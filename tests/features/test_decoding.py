"""Decoding in worker processes: the same store, byte for byte, as decoding in threads; resumable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.features import FeatureStore, default_workers, extract_to_store
from audiosep_kit.features._decoding import MAX_AUTO_WORKERS
from audiosep_kit.runtime._extractor import FeatureExtractor

_STORE_FILES = ("features.npy", "index.csv")


@pytest.fixture(scope="module")
def extractor():
    return FeatureExtractor.from_checkpoint("random:0", batch_size=4)


@pytest.fixture()
def mixed_inputs(tmp_path):
    """Clips at 16, 44.1 and 48 kHz (mono and stereo), and the bad kinds a real folder holds: corrupt,
    empty, NaN samples, and a listed file that is gone."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "audio"
    folder.mkdir()
    paths = []
    for i, rate in enumerate([16000, 44100, 48000] * 2):
        shape = (int(0.2 * rate), 2) if i % 3 == 1 else (int(0.2 * rate),)
        sf.write(folder / f"c{i}.wav", (0.1 * rng.standard_normal(shape)).astype(np.float32), rate)
        paths.append(folder / f"c{i}.wav")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    nan = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    nan[123] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    bad = [folder / "corrupt.wav", folder / "empty.wav", folder / "nan.wav", folder / "gone.wav"]
    return paths[:2] + bad[:2] + paths[2:5] + bad[2:] + paths[5:]


def _same_bytes(a, b) -> None:
    for name in _STORE_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_worker_processes_write_the_threads_store_byte_for_byte(extractor, mixed_inputs, tmp_path):
    """Two decoding processes, chunks of three (so chunks interleave between the workers and the
    backlog holds several): features.npy and index.csv equal the threads path's, failures included."""
    threads = extract_to_store(extractor, mixed_inputs, tmp_path / "threads", chunk_size=3, progress=False)
    procs = extract_to_store(
        extractor, mixed_inputs, tmp_path / "procs", chunk_size=3, workers=2, processes=True, progress=False
    )
    _same_bytes(tmp_path / "threads", tmp_path / "procs")
    assert procs.manifest["counts"] == threads.manifest["counts"] == {"ok": 6, "error": 4}
    assert procs.manifest["last_run"]["decoding"] == "2 worker processes"
    assert threads.manifest["last_run"]["decoding"] == "2 threads"
    errors = procs.failures()["error"].tolist()
    assert [e.split(":")[0].rsplit("/", 1)[-1] for e in errors] == ["corrupt.wav", "empty.wav", "nan.wav", "gone.wav"]
    assert "NaN or infinite" in errors[2] and "no such file" in errors[3]


def test_worker_processes_resume_a_cut_journal_to_the_uninterrupted_store(extractor, mixed_inputs, tmp_path):
    """A journal cut after its first chunk, mid-line (as a kill leaves it): the resumed run in worker
    processes redoes only the rest and ends byte-identical to an uninterrupted threads run."""
    clean = tmp_path / "clean"
    extract_to_store(extractor, mixed_inputs, clean, chunk_size=3, progress=False)
    cut = tmp_path / "cut"
    cut.mkdir()
    for name in ("manifest.json", "sources.csv", "features.npy"):
        (cut / name).write_bytes((clean / name).read_bytes())
    features = np.load(cut / "features.npy", mmap_mode="r+")
    features[3:] = np.nan  # what the kill left: only the first chunk's rows
    features.flush()
    del features
    lines = (clean / "journal.jsonl").read_text().splitlines(keepends=True)
    (cut / "journal.jsonl").write_text("".join(lines[:3]) + lines[3][:17])
    resumed = extract_to_store(extractor, mixed_inputs, cut, chunk_size=3, workers=2, processes=True, progress=False)
    assert resumed.manifest["last_run"]["rows_processed"] == len(mixed_inputs) - 3
    _same_bytes(clean, cut)
    assert json.loads((cut / "manifest.json").read_text())["complete"] is True
    assert FeatureStore.open(cut).complete


@pytest.mark.parametrize(
    ("device", "cores", "expected"),
    [("cpu", 2, 0), ("cpu", 64, 0), ("cuda", 2, 1), ("cuda:1", 16, MAX_AUTO_WORKERS), ("cuda", 6, 5), ("cuda", 1, 1)],
)
def test_default_workers_decode_in_processes_only_beside_a_gpu(device, cores, expected):
    workers, why = default_workers(device, cores)
    assert workers == expected
    assert ("every core but the driver's" in why) == device.startswith("cuda")
