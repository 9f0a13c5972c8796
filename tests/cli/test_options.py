"""The options every command shares (``cli/_options.py``): --model-path only with a backend that loads one."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.evaluate import main as evaluate_main
from audiosep_kit.cli.extract import main as extract_main


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"never read: the usage check comes first")
    return path


@pytest.mark.parametrize("backend", ["eager", "compile", "fast"])
def test_extract_model_path_with_a_backend_without_artifacts_is_a_usage_error(backend, artifact, tmp_path):
    clip = tmp_path / "a.wav"
    sf.write(clip, np.zeros(16000, np.float32), 32000)
    args = [str(clip), "--out", str(tmp_path / "s"), "--checkpoint", "random:0", "--backend", backend]
    result = CliRunner().invoke(extract_main, [*args, "--model-path", str(artifact)])
    assert result.exit_code == 2, result.output
    assert f"--backend {backend} loads no exported artifact" in result.output
    assert "--model-path is for --backend onnx or aoti" in result.output
    assert not (tmp_path / "s").exists()


def test_evaluate_model_path_with_the_default_backend_is_a_usage_error(artifact):
    """The option order does not matter: --model-path before --backend is checked too."""
    result = CliRunner().invoke(
        evaluate_main, ["--model-path", str(artifact), "--task", "esc50", "--checkpoint", "random:0"]
    )
    assert result.exit_code == 2 and "Invalid value for '--model-path': --backend eager" in result.output
