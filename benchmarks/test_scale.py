"""Many files: the driver's memory stays flat in the number of files and its throughput stays steady.

A folder in the Speech Commands layout (``word/<hash>_nohash_<n>.wav``, 16 kHz mono) is generated at
test time: 10,000 files in full mode (``AUDIOSEP_BENCH=full``), 600 in quick mode. The clips are
0.1 s and the tap is block1, so the run measures what grows with the number of files (the driver's
bookkeeping: sources, journal, index, decoding backlog) rather than the encoder's compute. The
extraction runs in a fresh subprocess so its peak RSS is its own; three engines run it: the local one
decoding in 2 threads or in 2 worker processes, and Ray (a local cluster of 2 CPUs the driver starts,
the driver only committing). Commit times give the throughput of the first and of the last thousand
files (or tenth, in quick mode) and their ratio, with a "within 15 %" verdict as data. Correctness is
asserted (every file extracted, rows in input order, the engine that ran); RSS, rates and the load
average before and after are reported in ``extra_info``, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

#: The driver: extraction with every chunk's commit time recorded, then its own peak RSS, then three rows
#: (first, middle, last) checked against the same files embedded directly, so the rows sit in input order.
_DRIVER = """
import json, pathlib, resource, sys, time
import numpy as np
import audiosep_kit.features._store as store
from audiosep_kit.features import FeatureStore, RayEngine, extract_to_store
from audiosep_kit.runtime import FeatureExtractor

def main():
    folder, out, engine = sys.argv[1], sys.argv[2], sys.argv[3]
    paths = sorted(pathlib.Path(folder).rglob("*.wav"))
    commits, original = [], store.commit_rows
    def timed(writer, journal, records, vectors):
        original(writer, journal, records, vectors)
        commits.append((time.perf_counter(), len(records)))
    store.commit_rows = timed
    fx = FeatureExtractor.from_checkpoint("random:0", layer="block1", batch_size=16)
    how = {"threads": {"workers": 2}, "2-processes": {"workers": 2, "processes": True},
           "ray": {"engine": RayEngine(num_cpus=2)}}[engine]
    start = time.perf_counter()
    result = extract_to_store(fx, paths, out, progress=False, **how)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [0, len(paths) // 2, len(paths) - 1]
    saved = FeatureStore.open(out)
    print(json.dumps({"seconds": seconds, "commits": commits, "counts": result.manifest["counts"],
                      "peak_rss_mb": peak, "engine": result.manifest.get("engine", {}).get("name", "local"),
                      "paths_in_order": saved.index["path"].tolist() == [str(p) for p in paths],
                      "rows_match": bool(np.allclose(saved.features[rows], fx.embed_files([paths[r] for r in rows]),
                                                     rtol=1e-4, atol=1e-5))}))

if __name__ == "__main__":
    main()
"""


def _speech_commands_folder(root, count: int) -> list:
    rng = np.random.default_rng(10)
    wave = (0.1 * rng.standard_normal(1600)).astype(np.float32)
    paths = []
    for i in range(count):
        word = root / _WORDS[i % len(_WORDS)]
        word.mkdir(parents=True, exist_ok=True)
        path = word / f"{i:08x}_nohash_{i % 5}.wav"
        sf.write(path, np.roll(wave, i), 16000, subtype="PCM_16")
        paths.append(path)
    return paths


def _rate(commits: list, first: bool, span: int) -> float:
    """Files per second over ``span`` files: the first after the first commit, or the last."""
    times = np.array([t for t, _ in commits])
    done = np.cumsum([n for _, n in commits])
    if first:
        end = int(np.searchsorted(done, done[0] + span))
        return float((done[end] - done[0]) / (times[end] - times[0]))
    begin = int(np.searchsorted(done, done[-1] - span))
    return float((done[-1] - done[begin]) / (times[-1] - times[begin]))


#: Steady throughput: the last span's files/s within this fraction of the first span's (reported, not asserted).
_STEADY = 0.15


def _load() -> list[float]:
    """The 1, 5 and 15 minute load averages (/proc/loadavg), to read the rates against."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["threads", "2-processes", "ray"])
def test_many_files_keep_driver_memory_flat(benchmark, bench_mode, tmp_path, engine):
    """threads and 2-processes: the local engine decoding in 2 threads or 2 worker processes; ray: the
    driver starts its own local Ray cluster of 2 CPUs (RayEngine(num_cpus=2)) and only commits, so its
    peak RSS is the driver's own (the actor's process is not counted)."""
    if engine == "ray":
        pytest.importorskip("ray", reason="the [ray] extra is not installed (make test installs it)")
    count = 600 if bench_mode.quick else 10_000
    span = count // 10
    _speech_commands_folder(tmp_path / "speech_commands", count)
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)

    def run() -> dict:
        out = tmp_path / f"store-{len(list(tmp_path.glob('store-*')))}"
        command = [sys.executable, str(driver), str(tmp_path / "speech_commands"), str(out), engine]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.splitlines()[-1])

    load_before = _load()
    report = benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    load_after = _load()
    assert report["counts"] == {"ok": count}
    assert report["engine"] == ("ray" if engine == "ray" else "local")
    assert report["paths_in_order"] and report["rows_match"]
    first = _rate(report["commits"], True, span)
    last = _rate(report["commits"], False, span)
    benchmark.group = "many files"
    benchmark.extra_info.update(
        mode=bench_mode.name,
        engine=engine,
        files=count,
        span=span,
        seconds=report["seconds"],
        driver_peak_rss_mb=report["peak_rss_mb"],
        files_per_second_first=first,
        files_per_second_last=last,
        last_over_first=last / first,
        steady_within_15_percent=abs(last / first - 1) <= _STEADY,
        load_before=load_before,
        load_after=load_after,
        commits=[(round(t - report["commits"][0][0], 3), n) for t, n in report["commits"]],
    )
