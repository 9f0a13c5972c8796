"""The verification sweep and publish-by-rename, with stand-in runners (no export needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiosep_kit.errors import ConfigError
from audiosep_kit.export._pipeline import (
    SWEEPS,
    VerificationError,
    publish,
    skipped_report,
    sweep_input,
    sweep_lengths,
    temporary_path,
    verify_runner,
)
from audiosep_kit.numerics import tolerance_for


def _pool(x: np.ndarray) -> np.ndarray:
    return np.stack([x[:, ::100].sum(axis=1), x[:, 1::100].sum(axis=1)], axis=1)


def test_sweeps_hold_the_documented_lengths():
    assert SWEEPS["quick"] == (1025, 16_000, 32_000, 105_600)
    assert SWEEPS["full"][-3:] == (160_000, 320_000, 960_000)


def test_unknown_sweep_is_refused():
    with pytest.raises(ConfigError, match=r"`sweep` must be one of .*got 'all'"):
        sweep_lengths("all")


def test_sweep_input_is_reproducible_and_rows_differ():
    x = sweep_input(1025, 3)
    assert x.shape == (3, 1025) and x.dtype == np.float32
    np.testing.assert_array_equal(x, sweep_input(1025, 3))
    assert not np.allclose(x[0], x[1])


def test_exact_runner_passes_and_reports_every_case():
    report = verify_runner(_pool, _pool, tolerance_for("fp32"), lengths=(1025, 2000), batch_sizes=(1, 3))
    assert report["status"] == "passed" and len(report["cases"]) == 4
    assert report["worst"]["max_abs"] == 0 and report["worst"]["shape_mismatches"] == []


def test_wrong_shape_fails_and_is_named():
    def cropped(x):
        return _pool(x)[:, :1] if x.shape[1] == 2000 else _pool(x)

    report = verify_runner(cropped, _pool, tolerance_for("fp32"), lengths=(1025, 2000), batch_sizes=(1,))
    assert report["status"] == "failed" and report["worst"]["shape_mismatches"] == ["L=2000 B=1"]


def test_small_relative_error_passes_fp32_and_large_fails():
    def near(x):
        return _pool(x) * (1 + 1e-6)

    def far(x):
        return _pool(x) * 1.01

    assert verify_runner(near, _pool, tolerance_for("fp32"), lengths=(4096,))["status"] == "passed"
    assert verify_runner(far, _pool, tolerance_for("fp32"), lengths=(4096,))["status"] == "failed"
    assert verify_runner(far, _pool, tolerance_for("fp16"), lengths=(4096,))["status"] == "passed"  # cosine 1


def test_publish_renames_on_success(tmp_path):
    final = tmp_path / "m.onnx"
    tmp = temporary_path(final)
    tmp.write_bytes(b"model")
    assert publish(tmp, final, skipped_report("test")) == final
    assert final.read_bytes() == b"model" and not tmp.exists()
    assert json.loads((tmp_path / "m.verify.json").read_text())["status"] == "skipped"


def test_publish_keeps_a_failure_aside_and_raises(tmp_path):
    final = tmp_path / "m.pt2"
    final.write_bytes(b"previous good")
    tmp = temporary_path(final)
    tmp.write_bytes(b"bad")
    report = {"status": "failed", "worst": {"max_abs": 1.0}, "cases": []}
    with pytest.raises(
        VerificationError, match=r"failed verification.*m\.failed\.pt2.*nothing was written to .*m\.pt2"
    ):
        publish(tmp, final, report)
    assert final.read_bytes() == b"previous good" and (tmp_path / "m.failed.pt2").read_bytes() == b"bad"
    assert (tmp_path / "m.failed.verify.json").is_file() and not tmp.exists()
