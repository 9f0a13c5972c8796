"""audiosep-extract --engine ray: options, and a driver SIGKILLed three times that resumes to the same store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.extract import main
from audiosep_kit.features import FeatureStore


@pytest.mark.parametrize("option", [["--address", "auto"], ["--actors", "2"]])
def test_ray_only_options_without_engine_ray_are_a_usage_error(tmp_path, option):
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    result = CliRunner().invoke(main, [str(tmp_path / "a.wav"), "--out", str(tmp_path / "s"), *option])
    assert result.exit_code == 2
    assert f"{option[0]} apply to --engine ray only" in result.output
    assert not (tmp_path / "s").exists()


def _journal_lines(store: Path) -> int:
    path = store / "journal.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _ray_processes(session: int) -> dict[int, str]:
    """Processes of the session ``session`` (the killed driver's) and their names."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session and fields[0] not in ("Z", "X"):
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def _kill_when(command: list[str], store: Path, ready) -> int:
    """Start the driver in its own session, SIGKILL it (it alone) once ``ready(lines, names)`` holds,
    check that Ray's core (raylet, GCS) and the actor follow it, and return the journal lines then."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if ready(_journal_lines(store), " ".join(_ray_processes(proc.pid).values())):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    lines = _journal_lines(store)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60
    core = ("raylet", "gcs_server", "MapWorker")
    while time.monotonic() < deadline and any(c in " ".join(_ray_processes(proc.pid).values()) for c in core):
        time.sleep(0.5)
    left = _ray_processes(proc.pid)
    assert not any(c in " ".join(left.values()) for c in core), f"Ray outlived its killed driver: {left}"
    for pid in left:  # idle agents Ray may leave behind (dashboard, runtime env); not part of the run
        os.kill(pid, signal.SIGKILL)
    return lines


@pytest.mark.slow
def test_a_ray_driver_sigkilled_three_times_resumes_to_the_uninterrupted_store(shared_data_dir, tmp_path):
    """Real subprocesses: the driver is killed (1) once its Ray cluster runs, before or at its first
    commit, (2) after a few chunks, (3) past the middle; each time the store opens and keeps every
    recorded row's bytes, and the fourth run finishes it. The result equals an uninterrupted run of
    the local engine byte for byte (features.npy and index.csv, the bad files' errors included)."""
    folder = tmp_path / "audio"
    folder.mkdir()
    for path in sorted((shared_data_dir / "speech_commands_v2").rglob("*.wav"))[:28]:
        shutil.copyfile(path, folder / f"{path.parent.name}_{path.name}")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    total = 30
    base = [sys.executable, "-m", "audiosep_kit.cli.extract", str(folder), "--checkpoint", "random:0"]
    base += ["--chunk-size", "2", "--batch-size", "2", "--no-progress", "--allow-failures"]
    killed = tmp_path / "killed"
    command = [*base, "--engine", "ray", "--out", str(killed)]
    moments = [
        lambda lines, names: "MapWorker" in names,
        lambda lines, names: lines >= 6,
        lambda lines, names: lines >= total * 2 // 3,
    ]
    seen, kept = [], {}
    for ready in moments:
        seen.append(_kill_when(command, killed, ready))
        store = FeatureStore.open(killed)  # never torn: it opens, and what it records is on disk
        done = np.flatnonzero(store.index["status"].to_numpy() != "pending")
        kept.update({int(row): np.array(store.features[row]) for row in done})
    assert seen[0] < seen[1] < seen[2] < total, seen
    subprocess.run(command, check=True, capture_output=True)
    subprocess.run([*base, "--out", str(tmp_path / "clean")], check=True, capture_output=True)
    resumed = FeatureStore.open(killed)
    assert resumed.complete and resumed.manifest["counts"] == {"ok": 28, "error": 2}
    assert resumed.manifest["engine"]["name"] == "ray"
    for row, vector in kept.items():
        np.testing.assert_array_equal(resumed.features[row], vector)
    for name in ("features.npy", "index.csv"):
        assert (killed / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
