"""make demo's command runs the whole chain and says what it ran."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audiosep_kit.cli.demo import main


@pytest.mark.slow
def test_demo_runs_end_to_end_and_labels_random_weights(tmp_path, monkeypatch):
    """Generated data → ONNX export (verified) → onnx extraction → heads → report → parity, with the
    random weights labelled; parity of onnx against eager is within the fp32 tolerance."""
    monkeypatch.delenv("AUDIOSEP_CHECKPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--out", str(tmp_path / "demo"), "--heads", "logreg"])
    assert result.exit_code == 0, result.output
    assert "RANDOM" in result.output and "verification passed" in result.output
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["weights"]["random_weights"] is True
    assert summary["parity"][0]["backend"] == "onnx" and summary["parity"][0]["passed"] is True
    assert 0.0 <= summary["heads"]["logreg"]["accuracy_mean"] <= 1.0
    results = json.loads((tmp_path / "demo" / "report" / "results.json").read_text())
    assert "logreg" in results["heads"] and (tmp_path / "demo" / "report" / "summary.md").is_file()
