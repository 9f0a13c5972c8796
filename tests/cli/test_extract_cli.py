"""audiosep-extract end to end: inputs, per-file errors, and resuming after a real kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.extract import EXIT_FAILED_INPUTS, main
from audiosep_kit.features._store import FeatureStore


def _write_clips(folder, count, seconds=1.0, rate=16000):
    rng = np.random.default_rng(1)
    (folder / "sub").mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / ("sub" if i % 2 else "") / f"c{i:02d}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
        paths.append(path)
    return paths


def _descendants(pid: int) -> set[int]:
    """Processes whose chain of parents leads to ``pid`` (read from Linux's /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                alive.add(pid)
        except OSError:
            continue
    return alive


def test_folder_and_file_list_inputs_and_listed_failures(tmp_path):
    """Folders are walked recursively, a file list adds files, and a broken file is reported, not dropped."""
    clips = _write_clips(tmp_path / "audio", 3, seconds=0.2)
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio at all")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\n{broken}\n")
    result = CliRunner().invoke(
        main,
        [
            str(tmp_path / "audio"),
            "--file-list",
            str(listing),
            "--out",
            str(tmp_path / "s"),
            "--checkpoint",
            "random:0",
            "--no-progress",
        ],
    )
    assert result.exit_code == EXIT_FAILED_INPUTS, result.output
    assert "RANDOM" in result.output and "failed:" in result.output and "broken.flac" in result.output
    assert "note: --workers 0 (auto: the model on the CPU" in result.output  # the automatic choice, said
    assert (
        "summary: 3 extracted, 1 failed, 0 skipped (0 of them audio that could not be read), 4 inputs" in result.output
    )
    store = FeatureStore.open(tmp_path / "s")
    assert sorted(store.index["path"]) == sorted([str(p.resolve()) for p in clips] + [str(broken)])
    assert store.manifest["counts"] == {"ok": 3, "error": 1}
    # The same run again, resumed: nothing to do, the failure still reported; --allow-failures keeps 0.
    again = CliRunner().invoke(
        main,
        [
            str(tmp_path / "audio"),
            "--file-list",
            str(listing),
            "--out",
            str(tmp_path / "s"),
            "--checkpoint",
            "random:0",
            "--allow-failures",
        ],
    )
    assert again.exit_code == 0, again.output
    summary = next(line for line in again.output.splitlines() if line.startswith("{"))
    assert json.loads(summary)["last_run"]["rows_processed"] == 0
    assert "broken.flac" in again.output


def test_every_input_failing_is_a_nonzero_exit(tmp_path):
    broken = tmp_path / "a.wav"
    broken.write_bytes(b"RIFF")
    result = CliRunner().invoke(main, [str(broken), "--out", str(tmp_path / "s"), "--checkpoint", "random:0"])
    assert result.exit_code == EXIT_FAILED_INPUTS
    assert "summary: 0 extracted, 1 failed" in result.output


def test_relative_file_list_entries_are_relative_to_the_list(tmp_path, monkeypatch):
    """Run from another directory, a relative list still names its own files (absolute in the index)."""
    clips = _write_clips(tmp_path / "data", 2, seconds=0.2)
    listing = tmp_path / "data" / "list.txt"
    listing.write_text("c00.wav\nsub/c01.wav\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "c00.wav").write_bytes(b"a decoy with the same relative name")
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(main, ["--file-list", "../data/list.txt", "--out", "s", "--checkpoint", "random:0"])
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(elsewhere / "s")
    assert list(store.index["path"]) == [str(p) for p in clips]
    assert store.manifest["counts"] == {"ok": 2}


def test_dry_run_estimates_memory_and_writes_nothing(tmp_path):
    clips = _write_clips(tmp_path / "audio", 2, seconds=3.0, rate=48000)
    result = CliRunner().invoke(
        main, [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--dry-run", "--no-calibrate"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["inputs"] == len(clips) and report["total_seconds"] == 6.0 and report["longest_seconds"] == 3.0
    assert 0.5 < report["estimated_peak_gb"] < 2.0
    assert not (tmp_path / "s").exists()


def test_a_second_writer_and_an_overwrite_during_a_run_are_refused(tmp_path):
    """A process holding the store (as a running extraction does) makes both refuse, naming it."""
    _write_clips(tmp_path / "audio", 1, seconds=0.2)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "s")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ([], ["--overwrite"]):
            result = CliRunner().invoke(
                main, [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--checkpoint", "random:0", *extra]
            )
            assert result.exit_code == 2, result.output
            assert "being written by another extraction (pid" in result.output
    finally:
        holder.kill()
        holder.wait()
    result = CliRunner().invoke(
        main, [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--checkpoint", "random:0"]
    )
    assert result.exit_code == 0, result.output  # a killed holder leaves no stale lock


HOLD_LOCK = """
import sys, time
from pathlib import Path
from audiosep_kit.features._files import store_lock
with store_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_missing_checkpoint_is_a_clear_usage_error(tmp_path, monkeypatch):
    """Without --checkpoint, $AUDIOSEP_CHECKPOINT or pretrained_models/, the command says where to put one."""
    monkeypatch.delenv("AUDIOSEP_CHECKPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    clip = _write_clips(tmp_path / "a", 1)[0]
    result = CliRunner().invoke(main, [str(clip), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "pretrained_models/AudioSep" in result.output


def test_wrong_checkpoint_reports_error_without_traceback(tmp_path):
    """A file that is not an AudioSep checkpoint fails with one clear line and exit status 2."""
    clip = _write_clips(tmp_path / "a", 1)[0]
    bad = tmp_path / "bad.pt"
    import torch

    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, bad)
    result = CliRunner().invoke(main, [str(clip), "--out", str(tmp_path / "s"), "--checkpoint", str(bad)])
    assert result.exit_code == 2
    assert "not an AudioSep checkpoint" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "workers",
    [
        pytest.param([], id="auto-threads"),
        # Worker processes must neither hold the store's lock after the kill nor change a byte.
        pytest.param(["--workers", "2"], id="worker-processes", marks=pytest.mark.slow),
    ],
)
def test_killed_extraction_resumes_to_the_uninterrupted_result(tmp_path, workers):
    """A real subprocess is SIGKILLed after its first committed chunks; the rerun finishes the job,
    recomputes none of the recorded rows, and equals an uninterrupted run (byte for byte, with
    decoding in worker processes for the killed run and its rerun, in threads for the clean one).

    The clips are a quarter second long: the encoder's compute per clip, not the kill, is what the
    length costs, and eight chunks of two still leave six chunks to run when the kill lands. The
    uninterrupted run is a third subprocess, started alongside the one that is killed: each runs on
    one thread, so on two cores they overlap instead of adding their start-up and compute."""
    _write_clips(tmp_path / "audio", 16, seconds=0.25)
    command = [
        sys.executable,
        "-m",
        "audiosep_kit.cli.extract",
        str(tmp_path / "audio"),
        "--checkpoint",
        "random:0",
        "--chunk-size",
        "2",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with (tmp_path / "clean.stderr").open("wb") as clean_stderr:
        clean_run = subprocess.Popen(
            [*command, "--out", str(tmp_path / "clean")], env=env, stdout=subprocess.DEVNULL, stderr=clean_stderr
        )
    proc = subprocess.Popen(
        [*command, *workers, "--out", str(tmp_path / "killed")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    journal = tmp_path / "killed" / "journal.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"extraction ended before it could be killed: {proc.stderr.read().decode()}"
    helpers = _descendants(proc.pid) if Path("/proc").is_dir() else set()
    assert bool(helpers) == bool(workers) or not Path("/proc").is_dir()  # the decoding processes (and server)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while _running(helpers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(helpers), "decoding processes outlived their killed driver"
    before = FeatureStore.open(tmp_path / "killed")
    done = before.index["status"] == "ok"
    assert 4 <= done.sum() < 16
    kept = np.array(before.features)[done.to_numpy()]

    subprocess.run([*command, *workers, "--out", str(tmp_path / "killed")], env=env, check=True, capture_output=True)
    assert clean_run.wait(timeout=240) == 0, (tmp_path / "clean.stderr").read_text()
    resumed, clean = FeatureStore.open(tmp_path / "killed"), FeatureStore.open(tmp_path / "clean")
    assert resumed.complete and resumed.manifest["counts"] == {"ok": 16}
    assert resumed.manifest["last_run"]["rows_processed"] == 16 - done.sum()
    np.testing.assert_array_equal(np.array(resumed.features)[done.to_numpy()], kept)
    np.testing.assert_array_equal(resumed.features, clean.features)
    assert (tmp_path / "killed" / "features.npy").read_bytes() == (tmp_path / "clean" / "features.npy").read_bytes()
    assert json.loads((tmp_path / "killed" / "manifest.json").read_text())["complete"] is True


def test_a_folder_walk_lists_what_it_did_not_take_and_exits_3(tmp_path):
    """A dangling link, a symlink loop and an undecodable ending are lost inputs (exit 3, skipped.csv);
    a README is listed but changes nothing."""
    folder = tmp_path / "audio"
    _write_clips(folder, 2, seconds=0.2)
    (folder / "gone.wav").symlink_to(folder / "missing.wav")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    (folder / "README.txt").write_text("labels are elsewhere")
    out = tmp_path / "s"
    result = CliRunner().invoke(main, [str(folder), "--out", str(out), "--checkpoint", "random:0"])
    assert result.exit_code == EXIT_FAILED_INPUTS, result.output
    skipped = FeatureStore.open(out).skipped()
    reasons = dict(zip(skipped["path"].map(lambda p: p.rsplit("/", 1)[-1]), skipped["reason"], strict=True))
    assert reasons["gone.wav"].startswith("dangling symlink") and reasons["loop.wav"] == "symlink loop"
    assert reasons["README.txt"] == "unknown extension .txt"
    assert "2 extracted, 0 failed, 3 skipped (2 of them audio that could not be read)" in result.output
    (folder / "gone.wav").unlink()
    (folder / "loop.wav").unlink()
    result = CliRunner().invoke(main, [str(folder), "--out", str(tmp_path / "s2"), "--checkpoint", "random:0"])
    assert result.exit_code == 0, result.output  # only the README is left: listed, not a failure


def _run_on_a_terminal(command: list[str], env: dict, timeout: float) -> str:
    """Run ``command`` with stderr on a pseudo-terminal (120 columns); return what it drew there."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow  # a subprocess loading torch: about 30 s on two shared cores
def test_the_bar_moves_before_the_first_chunk_is_committed(tmp_path):
    """6 files, one 64-file chunk: on a terminal the bar shows 1/6 .. 5/6 before 6/6, with audio s/s."""
    _write_clips(tmp_path / "audio", 6, seconds=2.0)
    command = [
        sys.executable, "-m", "audiosep_kit.cli.extract", str(tmp_path / "audio"), "--out", str(tmp_path / "store"),
        "--checkpoint", "random:0", "--chunk-size", "64", "--batch-size", "1", "--layer", "block3",
    ]  # fmt: skip
    screen = _run_on_a_terminal(command, {**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    done = screen.index("6/6")
    assert re.search(r"\b[1-5]/6\b", screen[:done]), screen
    assert "audio s/s" in screen
