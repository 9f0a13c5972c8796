"""audiosep-extract --dry-run: the plan (files, hours, rows, shards) and the calibrated time estimate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.extract import main
from audiosep_kit.features import extract_to_store
from audiosep_kit.model import CHECKPOINT_ENV, EncoderConfig
from audiosep_kit.runtime import FeatureExtractor

#: The cheapest tap, so the calibration's model time is a fraction of a second.
TAP = ["--layer", "block1"]


def _clips(folder, count: int, seconds: float = 0.5, rate: int = 16000) -> list:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        sf.write(folder / f"c{i}.wav", (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
        paths.append(folder / f"c{i}.wav")
    (folder / "README.txt").write_text("not audio")
    return paths


def _plan(args: list) -> tuple[dict, str]:
    result = CliRunner().invoke(main, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_the_plan_counts_files_hours_and_shards_and_calibrates_an_estimate(tmp_path):
    _clips(tmp_path / "audio", 5, seconds=0.2)
    args = [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--chunk-size", "2", "--checkpoint", "random:0"]
    plan, line = _plan([*args, *TAP])
    assert (plan["inputs"], plan["skipped"], plan["store"], plan["rows_to_run"]) == (5, 1, "new", 5)
    assert plan["shards"] == 3 and plan["total_seconds"] == 1.0 and plan["total_hours"] == round(1 / 3600, 4)
    calibration = plan["calibration"]
    assert calibration["random_weights"] is True and calibration["weights"] == "random:0"
    assert (calibration["backend"], calibration["precision"], calibration["batch_size"]) == ("eager", "fp32", 8)
    assert calibration["files"] == 5 and calibration["model_audio_s"] == 1.0  # all of it: less than 2 s
    assert plan["estimated_seconds"] > 0 and plan["estimated_bound"] in ("model", "decoding")
    rate = min(calibration["model_audio_seconds_per_second"], plan["decoding_audio_seconds_per_second"])
    assert plan["estimated_seconds"] == pytest.approx(1.0 / rate, rel=0.01, abs=0.1)
    assert "plan: 5 files (1 skipped)" in line and "3 shards of <= 2 files" in line
    assert "random:0 weights (RANDOM)" in line and f"bound by {plan['estimated_bound']}" in line
    assert not (tmp_path / "s").exists()


def test_no_calibrate_loads_no_model(tmp_path, monkeypatch):
    _clips(tmp_path / "audio", 2)

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(FeatureExtractor, "from_checkpoint", refuse)
    args = [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--dry-run"]
    result = CliRunner().invoke(main, [*args, "--no-calibrate"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["calibration"] is None and plan["estimated_seconds"] is None and plan["rows_to_run"] == 2
    assert "no time estimate (--no-calibrate)" in result.stderr
    calibrating = CliRunner().invoke(main, [*args, "--checkpoint", "random:0"])
    assert isinstance(calibrating.exception, AssertionError)  # the default calibration does load it


def test_a_calibration_without_a_checkpoint_names_no_calibrate(tmp_path, monkeypatch):
    _clips(tmp_path / "audio", 1)
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no pretrained_models/ here
    result = CliRunner().invoke(main, [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--dry-run"])
    assert result.exit_code == 2 and "no checkpoint: pass --checkpoint PATH" in result.output
    assert "Or plan without a time estimate: --no-calibrate." in result.output


def test_a_resumed_stores_plan_counts_only_the_remaining_rows(random_weights, tmp_path):
    """A store cut as by a kill after its first chunk: the plan (and its estimate) covers the rest only,
    and the calibrated plan, whose extractor matches the store's, does not refuse it."""
    paths = _clips(tmp_path / "audio", 5, seconds=0.3)
    extractor = FeatureExtractor.from_weights(random_weights, EncoderConfig(layer="block1"))
    extract_to_store(extractor, paths, tmp_path / "s", chunk_size=2, progress=False)
    journal = (tmp_path / "s" / "journal.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "s" / "journal.jsonl").write_text("".join(journal[:2]))
    args = [str(tmp_path / "audio"), "--out", str(tmp_path / "s"), "--chunk-size", "2"]
    plan, line = _plan([*args, "--no-calibrate"])
    assert (plan["store"], plan["rows_to_run"], plan["rows_new"]) == ("resume", 3, 3)
    assert plan["rows_kept"] == 2 and plan["shards"] == 2
    assert plan["seconds_to_run"] == pytest.approx(0.9) and plan["total_seconds"] == pytest.approx(1.5)
    assert "a rerun of the store" in line and "(3 new, 0 retried, 0 changed; 2 kept)" in line
    calibrated, _ = _plan([*args, "--checkpoint", "random:0", *TAP])
    assert calibrated["rows_to_run"] == 3 and calibrated["estimated_seconds"] > 0
    refused = CliRunner().invoke(main, [*args, "--dry-run", "--checkpoint", "random:0", "--layer", "block2"])
    assert refused.exit_code == 2 and "another configuration (encoder" in refused.output
