"""audiosep-bench: table, JSON rows with the documented keys, real clips, end-to-end, option errors."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.bench import format_table, main

REQUIRED = {
    "backend",
    "precision",
    "batch",
    "duration_s",
    "audio_seconds_per_second",
    "speedup_vs_eager",
    "cosine_vs_fp32",
}


def test_table_and_json_rows(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(2):
        sf.write(clips / f"c{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(4000)).astype(np.float32), 16_000)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main,
        [
            "--backends",
            "fast:fp32",
            "--batch-sizes",
            "2",
            "--durations",
            "0.1",
            "--repeats",
            "1",
            "--quality-clips",
            "2",
            "--peak-size",
            "128",
            "--clips",
            str(clips),
            "--end-to-end",
            str(clips),
            "--e2e-batch-size",
            "2",
            "--e2e-backend",
            "fast:fp32",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "RANDOM" in result.output and "x eager" in result.output and "real clips" in result.output
    assert "machine peak bf16" in result.output and "end-to-end (fast:fp32, 2 files" in result.output
    rows = json.loads(out.read_text())
    latency = [r for r in rows if r["kind"] == "latency"]
    assert [(r["label"], r["batch"]) for r in latency] == [("eager:fp32", 2), ("fast:fp32", 2)]
    assert all(REQUIRED <= set(r) and r["format_version"] == 1 for r in latency)
    assert latency[1]["cosine_vs_fp32"] > 0.999 and latency[1]["percent_of_peak"] > 0
    assert rows[-1]["kind"] == "end_to_end" and rows[-1]["files"] == 2
    assert format_table(latency).count("\n") == len(latency) + 1


def test_bad_options_say_what_was_expected(tmp_path):
    result = CliRunner().invoke(main, ["--batch-sizes", "1,x", "--no-peak"])
    assert (
        result.exit_code == 2
        and "Invalid value for '--batch-sizes': expected comma-separated int values" in result.output
    )
    result = CliRunner().invoke(main, ["--backends", "fast:fp16", "--durations", "0.1", "--no-peak"])
    assert result.exit_code == 2 and "'fast:fp16' is not a backend this build offers" in result.output
    assert "onnx (fp32|fp16)" in result.output  # the valid spellings, from the registry
