"""Many files: the driver's memory stays flat in the number of files and its throughput stays steady.

A folder in the Speech Commands layout (``word/<hash>_nohash_<n>.wav``, 16 kHz mono) is generated at
test time: 10,000 files in full mode (``AUDIOSEP_BENCH=full``), 600 in quick mode. The clips are
0.1 s and the tap is block1, so the run measures what grows with the number of files (the driver's
bookkeeping: sources, journal, index, decoding backlog) rather than the encoder's compute. The
extraction runs in a fresh subprocess so its peak RSS is its own; commit times give the throughput
of the first and of the last thousand files (or tenth, in quick mode). Correctness is asserted (every
file extracted, rows in order); RSS and rates are reported in ``extra_info``, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

#: The driver: extraction with every chunk's commit time recorded, then its own peak RSS.
_DRIVER = """
import json, resource, sys, time
import audiosep_kit.features._store as store
from audiosep_kit.features import extract_to_store
from audiosep_kit.runtime import FeatureExtractor

def main():
    folder, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    paths = sorted(p for p in __import__("pathlib").Path(folder).rglob("*.wav"))
    commits, original = [], store.commit_rows
    def timed(writer, journal, records, vectors):
        original(writer, journal, records, vectors)
        commits.append((time.perf_counter(), len(records)))
    store.commit_rows = timed
    fx = FeatureExtractor.from_checkpoint("random:0", layer="block1", batch_size=16)
    start = time.perf_counter()
    result = extract_to_store(fx, paths, out, workers=max(workers, 2), processes=workers > 0, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - start, "commits": commits,
                      "counts": result.manifest["counts"],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))

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


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["threads", "2-processes"])
def test_many_files_keep_driver_memory_flat(benchmark, bench_mode, tmp_path, workers):
    count = 600 if bench_mode.quick else 10_000
    span = count // 10
    _speech_commands_folder(tmp_path / "speech_commands", count)
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)

    def run() -> dict:
        out = tmp_path / f"store-{len(list(tmp_path.glob('store-*')))}"
        command = [sys.executable, str(driver), str(tmp_path / "speech_commands"), str(out), str(workers)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.splitlines()[-1])

    report = benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    assert report["counts"] == {"ok": count}
    benchmark.extra_info.update(
        mode=bench_mode.name,
        files=count,
        workers=workers,
        seconds=report["seconds"],
        driver_peak_rss_mb=report["peak_rss_mb"],
        files_per_second_first=_rate(report["commits"], True, span),
        files_per_second_last=_rate(report["commits"], False, span),
    )
