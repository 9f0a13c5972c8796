"""CUDA runs (eager, compile, aoti) against golden: skipped with the reason on machines without CUDA.

ONNX Runtime's CUDA provider has its own test in test_onnx_runtime.py. TF32 stays off (the default).
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _need_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")


@pytest.mark.parametrize("backend", ["eager", "compile"])
def test_cuda_backend_matches_golden(
    backend, golden_weights, golden_config, golden_inputs, golden_reference, golden_check, inductor_cache_dir
):
    from audiosep_kit.runtime.backends import make_backend

    engine = make_backend(backend, golden_weights, golden_config("query"), "cuda")
    assert engine.executed()["tf32"] is False
    for clip in ("a", "c", "d"):
        got = engine.run(golden_inputs[clip][None])
        golden_check(got, golden_reference(clip, "query", "mean"), f"{backend}-cuda:{clip}", f"{backend}-cuda")


@pytest.mark.slow
def test_cuda_aoti_package_matches_golden(
    golden_weights, golden_config, golden_inputs, golden_reference, golden_check, tmp_path, inductor_cache_dir
):
    from audiosep_kit.export._aoti import export_aoti
    from audiosep_kit.runtime.backends import make_backend

    package = export_aoti(golden_weights, golden_config(), tmp_path / "cuda.pt2", device="cuda", sweep="quick").path
    engine = make_backend("aoti", golden_weights, golden_config(), "cuda", model_path=package)
    for clip in ("a", "c", "d"):
        golden_check(
            engine.run(golden_inputs[clip][None]),
            golden_reference(clip, "none", "mean"),
            f"aoti-cuda:{clip}",
            "aoti-cuda",
        )
