"""audiosep-extract end to end: inputs, per-file errors, and resuming after a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.extract import main
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
    assert result.exit_code == 0, result.output
    assert "RANDOM" in result.output and "failed:" in result.output and "broken.flac" in result.output
    store = FeatureStore.open(tmp_path / "s")
    assert sorted(store.index["path"]) == sorted([str(p.resolve()) for p in clips] + [str(broken)])
    assert store.manifest["counts"] == {"ok": 3, "error": 1}


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


def test_killed_extraction_resumes_to_the_uninterrupted_result(tmp_path):
    """A real subprocess is SIGKILLed after its first committed chunks; the rerun finishes the job,
    recomputes none of the recorded rows, and equals an uninterrupted run."""
    _write_clips(tmp_path / "audio", 16)
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
    proc = subprocess.Popen(
        [*command, "--out", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    journal = tmp_path / "killed" / "journal.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"extraction ended before it could be killed: {proc.stderr.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = FeatureStore.open(tmp_path / "killed")
    done = before.index["status"] == "ok"
    assert 4 <= done.sum() < 16
    kept = np.array(before.features)[done.to_numpy()]

    subprocess.run([*command, "--out", str(tmp_path / "killed")], env=env, check=True, capture_output=True)
    subprocess.run([*command, "--out", str(tmp_path / "clean")], env=env, check=True, capture_output=True)
    resumed, clean = FeatureStore.open(tmp_path / "killed"), FeatureStore.open(tmp_path / "clean")
    assert resumed.complete and resumed.manifest["counts"] == {"ok": 16}
    assert resumed.manifest["last_run"]["rows_processed"] == 16 - done.sum()
    np.testing.assert_array_equal(np.array(resumed.features)[done.to_numpy()], kept)
    np.testing.assert_array_equal(resumed.features, clean.features)
    assert json.loads((tmp_path / "killed" / "manifest.json").read_text())["complete"] is True
