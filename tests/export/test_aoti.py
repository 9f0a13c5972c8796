"""AOTInductor export: argument checks (fast); full-encoder package and failure path (slow, C++ compile)."""

from __future__ import annotations

import json

import pytest

from audiosep_kit.errors import ConfigError, VerificationError
from audiosep_kit.export._aoti import export_aoti
from audiosep_kit.export._pipeline import SWEEPS
from audiosep_kit.model._config import EncoderConfig
from audiosep_kit.numerics import Tolerance


def test_output_must_be_pt2(random_weights, tmp_path):
    with pytest.raises(ConfigError, match=r"must end in \.pt2; got .*enc\.so \(set --output\)"):
        export_aoti(random_weights, EncoderConfig(), tmp_path / "enc.so")


def test_unknown_sweep_is_refused_before_compiling(random_weights, tmp_path):
    with pytest.raises(ConfigError, match=r"`sweep` must be one of .*got 'long'"):
        export_aoti(random_weights, EncoderConfig(), tmp_path / "enc.pt2", sweep="long")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_full_encoder_package_verifies(random_weights, tmp_path, export_inductor_cache):
    result = export_aoti(random_weights, EncoderConfig(film="zero"), tmp_path / "enc.pt2", sweep="quick")
    assert result.path.is_file() and result.report["status"] == "passed"
    assert len(result.report["cases"]) == 2 * len(SWEEPS["quick"])
    assert result.metadata["film"] == "zero" and result.metadata["device"] == "cpu"
    assert json.loads(result.report_path.read_text())["status"] == "passed"


@pytest.mark.slow
def test_failed_package_is_kept_aside(random_weights, tmp_path, monkeypatch, export_inductor_cache):
    import audiosep_kit.export._aoti as aoti_export

    monkeypatch.setattr(aoti_export, "tolerance_for", lambda precision: Tolerance(min_cosine=1.5))
    monkeypatch.setattr(aoti_export, "sweep_lengths", lambda sweep: (1025,))
    with pytest.raises(VerificationError, match=r"enc\.failed\.pt2"):
        export_aoti(random_weights, EncoderConfig(layer="block1"), tmp_path / "enc.pt2")
    assert not (tmp_path / "enc.pt2").exists() and (tmp_path / "enc.failed.pt2").is_file()
