"""audiosep-export: onnx (quick sweep), parity (files, --json), inspect, and its failure exits.

Exports use random:0 weights and a shallow tap (layer block1) so the CLI round trip stays fast; the
full-encoder export is exercised in tests/export and tests/runtime/backends.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.export import main
from audiosep_kit.runtime import backend_variants

SMALL = ["--checkpoint", "random:0", "--layer", "block1", "--pooling", "mean"]


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`audiosep-export onnx ... --sweep quick` once for the module."""
    target = tmp_path_factory.mktemp("cli_onnx") / "enc.onnx"
    result = _invoke("onnx", *SMALL, "-o", str(target), "--sweep", "quick")
    assert result.exit_code == 0, result.output
    return target, result.output


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A folder with two short WAVs (one of them the 1025-sample minimum)."""
    folder = tmp_path_factory.mktemp("cli_clips")
    rng = np.random.default_rng(5)
    sf.write(folder / "min.wav", (0.1 * rng.standard_normal(1025)).astype(np.float32), 32000, subtype="FLOAT")
    sf.write(folder / "half.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 32000, subtype="FLOAT")
    return folder


def test_onnx_export_verifies_and_reports(exported):
    target, output = exported
    assert target.is_file() and "verified vs eager on 8 cases" in output and "RANDOM" in output
    report = json.loads(target.with_name("enc.verify.json").read_text())
    assert report["status"] == "passed" and report["metadata"]["layer"] == "block1"


def test_inspect_prints_metadata(exported):
    result = _invoke("inspect", str(exported[0]))
    assert result.exit_code == 0
    meta = json.loads(result.output)
    assert meta["layer"] == "block1" and meta["weights_random"] == "true"


def test_parity_saves_json_and_passes(exported, clips, tmp_path):
    report = tmp_path / "parity.json"
    result = _invoke(
        "parity", str(clips), *SMALL, "--backends", "onnx", "--onnx-model", str(exported[0]), "--json", str(report)
    )
    assert result.exit_code == 0, result.output
    assert "onnx" in result.output and "pass" in result.output
    payload = json.loads(report.read_text())
    (onnx_entry,) = payload["backends"]
    assert onnx_entry["passed"] is True and set(payload["clips"]) == {str(clips / "half.wav"), str(clips / "min.wav")}
    assert onnx_entry["summary"]["max_rel"] <= 1e-4 and onnx_entry["summary"]["argmax_agreement"] == 1.0


def test_parity_with_cuda_device_fails_clearly(exported, clips):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present; this checks the failure without one")
    result = _invoke(
        "parity", str(clips), *SMALL, "--backends", "onnx", "--device", "cuda", "--onnx-model", str(exported[0])
    )
    assert result.exit_code == 2
    assert "CUDAExecutionProvider" in result.output and "--device cpu" in result.output


def test_parity_that_could_run_no_backend_on_the_device_is_an_error(clips, monkeypatch):
    """Default backends, every one unavailable on --device: nothing was compared, so no exit 0."""
    import audiosep_kit.cli.export as cli_export

    # The default list reduced to fast, which refuses any device but the CPU (and needs no export).
    monkeypatch.setattr(cli_export, "backend_variants", lambda: [("fast", "bf16"), ("fast", "fp32")])
    result = _invoke("parity", str(clips), *SMALL, "--device", "cuda")
    assert result.exit_code == 2
    assert "error: not run on --device cuda: fast: the fast backend runs on CPU only" in result.output


def test_parity_refuses_a_model_of_other_options(exported, clips):
    result = _invoke(
        "parity", str(clips), *SMALL, "--film", "zero", "--backends", "onnx", "--onnx-model", str(exported[0])
    )
    assert result.exit_code == 2 and "film: artifact has 'none', requested 'zero'" in result.output


def test_parity_refuses_unknown_backends(clips):
    result = _invoke("parity", str(clips), *SMALL, "--backends", "onnx,tensorflow")
    assert result.exit_code == 2 and "'tensorflow' is not a backend this build offers; choose from eager" in (
        result.output
    )


def test_failed_verification_exits_1_and_keeps_nothing_as_good(tmp_path, monkeypatch):
    import audiosep_kit.export._onnx as onnx_export
    from audiosep_kit.numerics import Tolerance

    monkeypatch.setattr(onnx_export, "tolerance_for", lambda precision: Tolerance(min_cosine=1.5))
    monkeypatch.setattr(onnx_export, "sweep_lengths", lambda sweep: (1025,))
    target = tmp_path / "bad.onnx"
    result = _invoke("onnx", "--checkpoint", "random:0", "--layer", "block1", "-o", str(target), "--sweep", "quick")
    assert result.exit_code == 1 and "verification failed" in result.output
    assert not target.exists() and (tmp_path / "bad.failed.onnx").is_file()


def test_no_verify_records_that_it_was_skipped(tmp_path):
    target = tmp_path / "raw.onnx"
    result = _invoke("onnx", "--checkpoint", "random:0", "--layer", "block1", "-o", str(target), "--no-verify")
    assert result.exit_code == 0, result.output
    assert json.loads(target.with_name("raw.verify.json").read_text())["status"] == "skipped"


def test_query_without_condition_is_a_usage_error(tmp_path):
    result = _invoke("onnx", "--checkpoint", "random:0", "--film", "query", "-o", str(tmp_path / "q.onnx"))
    assert result.exit_code == 2 and "needs a 512-d condition vector" in result.output
    assert not list(tmp_path.iterdir())


def test_parity_without_clips_uses_synthetic_clips():
    """No clips, no --golden: deterministic synthetic clips, every one within the backend's tolerance."""
    result = _invoke("parity", "--checkpoint", "random:0", "--backends", "fast:fp32", "--layer", "block2")
    assert result.exit_code == 0, result.output
    assert "4 synthetic chirp-plus-noise clips" in result.output and "fp32" in result.output
    assert "pass" in result.output and "FAIL" not in result.output


def test_parity_of_an_empty_folder_is_refused(tmp_path):
    result = _invoke("parity", "--checkpoint", "random:0", str(tmp_path))
    assert result.exit_code == 2 and "no audio files in" in result.output


@pytest.mark.slow
def test_parity_with_default_backends_passes_here(tmp_path, monkeypatch):
    """The acceptance run: every registered backend x precision, artifacts exported into a temporary cache.
    A variant this machine cannot run (fast bf16 without AVX512-BF16) is listed as skipped with its reason,
    which does not fail a default run; every variant that ran must pass."""
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    result = _invoke("parity", "--checkpoint", "random:0", "--json", str(tmp_path / "parity.json"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "parity.json").read_text())
    variants = {(b["backend"], b["precision"]) for b in report["backends"]}
    # every registered variant but the reference; the CUDA-autocast ones (eager/compile bf16, fp16) skip on CPU
    assert variants == set(backend_variants()) - {("eager", "fp32")}
    assert {("compile", "fp32"), ("onnx", "fp32"), ("onnx", "fp16"), ("aoti", "fp32"), ("fast", "fp32")} <= variants
    assert all(b["passed"] or b["skipped"] for b in report["backends"]), report["backends"]
    assert sum(b["passed"] is True for b in report["backends"]) >= 5


@pytest.mark.slow  # a second export: about 30-60 s on two shared cores
def test_onnx_export_prints_each_step_in_order_without_exporter_noise(tmp_path, monkeypatch, capfd):
    """Progress on (as on a terminal): trace, convert, write, check, session, every verify case, save."""
    import logging

    from audiosep_kit.cli import _logging

    monkeypatch.setattr(_logging, "progress_enabled", lambda enabled: True)
    target = tmp_path / "steps.onnx"
    try:
        result = _invoke("onnx", *SMALL, "-o", str(target), "--sweep", "quick")
    finally:
        _logging.setup_progress(False)
    assert result.exit_code == 0, result.output
    steps = [
        "onnx: tracing", "onnx: converting to ONNX", "onnx: writing", "onnx: onnx.checker", "onnx: opening",
        *(f"onnx: verify case {k}/8" for k in range(1, 9)), f"saved {target}",
    ]  # fmt: skip
    positions = [result.stderr.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), result.stderr
    assert re.search(r"^\[\d\d:\d\d:\d\d\] onnx: tracing", result.stderr, re.M)
    noise = result.stderr + capfd.readouterr().err
    assert "torchvision is not installed" not in noise and "LeafSpec" not in noise
    assert not logging.getLogger("torch.onnx._internal.exporter._registration").filters
