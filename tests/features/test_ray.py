"""The Ray engine: the same store as the local engine, byte for byte, on a local Ray cluster of two CPUs."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features import FeatureStore, RayEngine, extract_to_store
from audiosep_kit.features._files import MatrixWriter
from audiosep_kit.features._ray import _our_error
from audiosep_kit.runtime import FeatureExtractor

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (make test installs it)")

_STORE_FILES = ("features.npy", "index.csv")


@pytest.fixture()
def cluster():
    """A fresh local cluster of two CPUs per test (``ray.init(num_cpus=2)``), which the engine joins: no
    actor pool, task or object of one test can hold the CPUs of the next (a few seconds each)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _inputs(shared_data_dir, tmp_path, esc50: int, commands: int, skip: int = 0) -> list:
    """Real clips (ESC-50 at 44.1 kHz, Speech Commands at 16 kHz) copied next to the bad files a real
    folder holds (corrupt, empty, NaN, one listed and gone), interleaved so bad rows sit inside chunks."""
    real = sorted((shared_data_dir / "esc50" / "audio").glob("*.wav"))[:esc50]
    real += sorted((shared_data_dir / "speech_commands_v2").rglob("*.wav"))[skip : skip + commands]
    folder = tmp_path / "audio"
    folder.mkdir()
    copies = []
    for i, path in enumerate(real):
        copies.append(folder / f"{i:03d}_{path.name}")
        shutil.copyfile(path, copies[-1])
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    nan = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    nan[99] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    bad = [folder / "corrupt.wav", folder / "empty.wav", folder / "nan.wav", folder / "gone.wav"]
    step = max(1, len(copies) // len(bad))
    out = []
    for k, path in enumerate(copies):
        out.append(path)
        if k % step == step - 1 and bad:
            out.append(bad.pop(0))
    return out + bad


def _same_store(a, b) -> None:
    for name in _STORE_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


def _check_identical(extractor, inputs, tmp_path, chunk_size: int, engine=None) -> FeatureStore:
    local = extract_to_store(extractor, inputs, tmp_path / "local", chunk_size=chunk_size, progress=False)
    on_ray = extract_to_store(
        extractor, inputs, tmp_path / "ray", chunk_size=chunk_size, progress=False, engine=engine or RayEngine()
    )
    _same_store(tmp_path / "local", tmp_path / "ray")
    assert on_ray.manifest["counts"] == local.manifest["counts"]
    assert on_ray.manifest["counts"]["error"] == 4
    errors = on_ray.failures()["error"].tolist()
    assert any("corrupt.wav" in e for e in errors) and any("gone.wav" in e for e in errors)
    assert any("nan.wav" in e and "NaN" in e for e in errors), errors
    engine = on_ray.manifest["engine"]
    assert engine["name"] == "ray" and engine["cluster"]["cpus"] == 2 and engine["actors"] == 1
    assert local.manifest["engine"]["name"] == "local"
    same = {k: v for k, v in on_ray.manifest.items() if k not in ("engine", "last_run", "created")}
    assert same == {k: v for k, v in local.manifest.items() if k not in ("engine", "last_run", "created")}
    return on_ray


def test_ray_engine_writes_the_local_store_byte_for_byte(cluster, shared_data_dir, tmp_path):
    """Eager fp32 on real ESC-50 and Speech Commands clips plus four bad files, chunks of three (so
    the actor meets chunks with failures in them): features.npy and index.csv equal, failures listed.
    The block1 tap keeps this fast; the slow test below runs the whole folders at the bottleneck."""
    extractor = FeatureExtractor.from_checkpoint("random:0", layer="block1", batch_size=4)
    inputs = _inputs(shared_data_dir, tmp_path, esc50=1, commands=5)
    _check_identical(extractor, inputs, tmp_path, chunk_size=3)


@pytest.mark.slow
def test_decoding_in_ray_tasks_apart_from_the_actor_writes_the_same_store(cluster, shared_data_dir, tmp_path):
    """The GPU layout on CPU: decoding in 1-CPU Ray tasks, the decoded clips (and decode errors) sent to
    a 1-CPU actor through Ray's object store; the store is still the local engine's, byte for byte."""
    extractor = FeatureExtractor.from_checkpoint("random:0", layer="block1", batch_size=4)
    inputs = _inputs(shared_data_dir, tmp_path, esc50=1, commands=5)
    engine = RayEngine(decode_tasks=True, cpus_per_actor=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the actor's one thread: fp32 convolutions round by their thread split
    try:
        store = _check_identical(extractor, inputs, tmp_path, chunk_size=3, engine=engine)
    finally:
        torch.set_num_threads(threads)
    assert store.manifest["engine"]["decoding"] == "Ray tasks of 1 CPU, apart from the actors"


@pytest.mark.slow
def test_ray_engine_on_the_shared_folders_at_the_bottleneck(cluster, shared_data_dir, tmp_path):
    """The acceptance case, eager fp32 at the default tap plus the bad files: with AUDIOSEP_RAY_FULL=1
    every ESC-50 and Speech Commands v2 clip of ../shared/data (611 s of audio, twice: about 10 minutes
    on 2 cores); by default the first 8 ESC-50 and 40 Speech Commands clips, to keep CI's slow tier short."""
    full = os.environ.get("AUDIOSEP_RAY_FULL") == "1"
    extractor = FeatureExtractor.from_checkpoint("random:0")
    sizes = {"esc50": 10_000, "commands": 10_000} if full else {"esc50": 8, "commands": 40, "skip": 1}
    inputs = _inputs(shared_data_dir, tmp_path, **sizes)
    store = _check_identical(extractor, inputs, tmp_path, chunk_size=64)
    assert store.manifest["counts"]["ok"] == len(inputs) - 4


@pytest.mark.slow
def test_ray_resumes_a_store_and_recomputes_only_missing_rows(cluster, shared_data_dir, tmp_path):
    """A store whose later rows are missing (journal lines cut, rows NaN, as a kill leaves it) is
    finished on Ray: only those rows run, and the result equals the uninterrupted store."""
    extractor = FeatureExtractor.from_checkpoint("random:0", layer="block1", batch_size=4)
    inputs = _inputs(shared_data_dir, tmp_path, esc50=1, commands=8)
    extract_to_store(extractor, inputs, tmp_path / "clean", chunk_size=4, progress=False)
    shutil.copytree(tmp_path / "clean", tmp_path / "cut")
    journal = (tmp_path / "cut" / "journal.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "cut" / "journal.jsonl").write_text("".join(journal[:4]))
    writer = MatrixWriter(tmp_path / "cut" / "features.npy")
    for row in range(4, len(inputs)):
        writer.write(row, np.full(writer.shape[1], np.nan, np.float32))
    writer.close()
    resumed = extract_to_store(
        extractor, inputs, tmp_path / "cut", chunk_size=4, progress=False, engine=RayEngine(actors=1)
    )
    assert resumed.manifest["last_run"]["rows_processed"] == len(inputs) - 4
    _same_store(tmp_path / "clean", tmp_path / "cut")


def _kill_actors_after(journal: Path, lines: int, killed: list) -> None:
    """SIGKILL every Ray Data actor process (``ray::MapWorker...``) once ``journal`` has ``lines`` lines."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (journal.is_file() and len(journal.read_text().splitlines()) >= lines):
        time.sleep(0.05)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::MapWorker"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue


@pytest.mark.slow
def test_a_killed_actor_is_replaced_and_the_store_is_unchanged(cluster, shared_data_dir, tmp_path):
    """SIGKILL of the model actor mid-run (after three chunks): Ray Data restarts it and reruns its
    chunk; the run completes, and the store equals the local engine's byte for byte."""
    extractor = FeatureExtractor.from_checkpoint("random:0", batch_size=2)
    inputs = sorted((shared_data_dir / "speech_commands_v2").rglob("*.wav"))[2:20]
    killed: list[int] = []
    watcher = threading.Thread(target=_kill_actors_after, args=(tmp_path / "ray" / "journal.jsonl", 6, killed))
    watcher.start()
    store = extract_to_store(extractor, inputs, tmp_path / "ray", chunk_size=2, progress=False, engine=RayEngine())
    watcher.join()
    assert killed, "no actor process was found to kill"
    assert store.complete and store.manifest["counts"] == {"ok": len(inputs)}
    extract_to_store(extractor, inputs, tmp_path / "local", chunk_size=2, progress=False)
    _same_store(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_an_actor_that_builds_other_weights_is_refused(cluster, tmp_path):
    """Every actor rebuilds the extractor from its recipe and must get the driver's: a node with
    another checkpoint under the same path is a ConfigError naming the difference, nothing written."""
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    extractor = FeatureExtractor.from_checkpoint("random:0", layer="block1")
    extractor.recipe = functools.partial(FeatureExtractor.from_checkpoint, "random:1", layer="block1")
    with pytest.raises(ConfigError, match="different extractor than the driver's.*weights_sha256"):
        extract_to_store(extractor, [path], tmp_path / "store", progress=False, engine=RayEngine())
    assert FeatureStore.open(tmp_path / "store").index["status"].tolist() == ["pending"]


def test_an_extractor_without_a_recipe_is_refused(tmp_path):
    extractor = FeatureExtractor.from_checkpoint("random:0", layer="block1")
    extractor.recipe = None
    with pytest.raises(ConfigError, match="builds the extractor again on every actor"):
        extract_to_store(extractor, [tmp_path / "a.wav"], tmp_path / "store", progress=False, engine=RayEngine())


def test_plan_puts_one_actor_per_gpu_and_decodes_in_tasks_apart():
    shape = {"nodes": 2, "cpus": 32, "gpus": 4, "cpus_per_node": [16, 16]}
    assert RayEngine()._plan(shape, "cuda") == {
        "actors": 4, "cpus_per_actor": 15, "gpus_per_actor": 1,
        "decoding": "Ray tasks of 1 CPU, apart from the actors",
    }  # fmt: skip
    cpu = RayEngine(cpus_per_actor=4)._plan(shape, "cpu")
    assert cpu["actors"] == 2 and cpu["cpus_per_actor"] == 4 and cpu["gpus_per_actor"] == 0
    with pytest.raises(ConfigError, match="cluster has no GPUs"):
        RayEngine()._plan({**shape, "gpus": 0}, "cuda:0")
    with pytest.raises(ConfigError, match="no CPU would be left to decode"):
        RayEngine(decode_tasks=True, cpus_per_actor=16)._plan(shape, "cpu")


@pytest.mark.parametrize("field", ["num_cpus", "actors", "cpus_per_actor"])
def test_engine_sizes_must_be_positive(field):
    with pytest.raises(ConfigError, match=f"`{field}` must be a positive integer"):
        RayEngine(**{field: 0})


def test_errors_raised_on_the_cluster_keep_their_kind_and_say_a_rerun_resumes():
    raised = RuntimeError(
        "ray::MapWorker.__init__()\n  File x\n\x1b[36maudiosep_kit.errors.ConfigError: bad node.\x1b[0m"
    )
    error = _our_error(raised)
    assert isinstance(error, ConfigError) and "bad node (raised on the Ray cluster)" in str(error)
    other = _our_error(RuntimeError("Traceback\nOSError: disk gone"))
    assert isinstance(other, StoreError) and "OSError: disk gone" in str(other) and "rerun" in str(other)
