"""``gpu_check.py --dry-run`` in the default tier: the GPU run's plan holds on a CPU machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).with_name("gpu_check.py")


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_checks_every_variant_and_runs_nothing(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    for variant in gpu_check.VARIANTS:
        assert f"plan: {variant}: " in printed
    assert "TensorrtExecutionProvider" in printed and "dry run: plan checked, nothing run" in printed
    assert printed.count("--reference-device cpu") == len(gpu_check.DURATIONS)
    assert not (tmp_path / "out").exists()


def test_a_variant_the_registry_refuses_fails_the_dry_run(gpu_check, monkeypatch):
    monkeypatch.setattr(gpu_check, "VARIANTS", ("onnx:fp32+prefer_nhwcc=true",))
    with pytest.raises(Exception, match=r"no registered backend takes 'prefer_nhwcc'"):
        gpu_check.check_plan()


def test_markdown_table_has_the_issue_columns(gpu_check):
    row = {
        "kind": "latency", "label": "onnx:fp16+tensorrt=true", "batch": 32, "duration_s": 5.0,
        "audio_seconds_per_second": 4000.0, "p50_s": 0.04, "p99_s": 0.05, "speedup_vs_eager": 3.0,
        "export_s": 10.0, "build_s": 50.0, "first_call_s": 2.0, "cosine_vs_fp32": 0.99995,
        "gpu_torch_peak_mb": 0.0, "gpu_device_used_mb": 2048.0,
    }  # fmt: skip
    table = gpu_check.markdown([row, {"kind": "end_to_end"}])
    header, rule, line = table.splitlines()
    assert "audio s/s (x real time)" in header and "p99 ms" in header and "cos vs cpu fp32" in header
    assert [cell.strip() for cell in line.strip("|").split("|")] == [
        "onnx:fp16+tensorrt=true", "32", "5", "4000.0", "40.0", "50.0", "3.00", "60.0", "2.0", "0.999950", "0",
        "2048",
    ]  # fmt: skip
