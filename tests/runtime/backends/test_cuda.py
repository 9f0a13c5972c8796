"""CUDA runs against golden: skipped with the reason on machines without CUDA.

eager, compile and aoti against the full golden set; the configured GPU variants (autocast, max-autotune with
CUDA graphs, ORT CUDA EP options, TensorRT) against golden-lite, which is in the repository, so they also run
from a fresh copy of the tree (benchmarks/gpu_check.sh). ONNX Runtime's plain CUDA provider has its own test in
test_onnx.py. TF32 stays off (the default).
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


#: The GPU variants as users configure them (what gpu_check benchmarks), on golden-lite so a fresh copy of the
#: tree runs them; compile's max-autotune tunes for minutes, so those are slow (the bench still measures them).
CONFIGURED = [
    pytest.param("eager", "bf16", {}, id="eager:bf16"),
    pytest.param("eager", "fp16", {}, id="eager:fp16"),
    pytest.param("compile", "fp32", {"mode": "max-autotune"}, id="compile:fp32+max-autotune", marks=pytest.mark.slow),
    pytest.param("compile", "bf16", {"mode": "max-autotune"}, id="compile:bf16+max-autotune", marks=pytest.mark.slow),
    pytest.param("onnx", "fp32", {"conv_algo_search": "HEURISTIC", "prefer_nhwc": True}, id="onnx:fp32+heuristic+nhwc"),
    pytest.param("onnx", "fp16", {"conv_algo_search": "EXHAUSTIVE", "io_binding": False}, id="onnx:fp16+exhaustive"),
    pytest.param("onnx", "fp16", {"tensorrt": True, "trt_buckets_s": (1.0,), "trt_max_batch": 2}, id="onnx:fp16+trt"),
]


def _shows_its_options(engine, options: dict) -> None:
    """Every option is visible in executed() (what describe() and the bench rows carry)."""
    info = engine.executed()
    if engine.name == "onnx":
        provider = "TensorrtExecutionProvider" if options.get("tensorrt") else "CUDAExecutionProvider"
        assert info["providers"][0] == provider
        active = info["provider_options"][provider]
        if "conv_algo_search" in options:
            assert active["cudnn_conv_algo_search"] == options["conv_algo_search"]
            assert active["prefer_nhwc"] == ("1" if options.get("prefer_nhwc") else "0")
        if options.get("tensorrt"):
            assert active["trt_fp16_enable"] in ("1", "True") and active["trt_profile_max_shapes"] == "waveform:2x32000"
    else:
        assert info["autocast"] == (None if engine.precision == "fp32" else engine.precision)
    if engine.name == "compile":
        assert info["compile_mode"] == options["mode"] and info["cudagraphs"] is True


@pytest.mark.parametrize(("name", "precision", "options"), CONFIGURED)
def test_configured_cuda_variant_matches_golden_lite(
    name, precision, options, lite_builder, lite_inputs, lite_reference, lite_check, tmp_path, inductor_cache_dir
):
    from audiosep_kit.numerics import tolerance_for
    from audiosep_kit.runtime.backends import make_backend

    built = dict(options)
    if name == "onnx":
        built["model_path"] = lite_builder.onnx("query", "mean", "center", precision)
    if options.get("tensorrt"):
        built["trt_cache_dir"] = tmp_path / "engines"
    engine = make_backend(
        name, lite_builder.weights, lite_builder.config("query"), "cuda", precision=precision, **built
    )
    _shows_its_options(engine, options)
    for clip in ("a", "c", "d"):
        got = engine.run(lite_inputs[clip][None])
        kind = f"{name}:{precision}-cuda"
        min_cosine = tolerance_for(precision).min_cosine
        lite_check(got, lite_reference(clip, "query", "mean"), f"{kind}:{clip}", kind, min_cosine=min_cosine)


def test_fp16_autocast_keeps_a_full_scale_sine_finite(lite_builder):
    """The front end stays float32: a full-scale sine's power spectrum (~2.6e5) would be inf in float16."""
    import numpy as np

    from audiosep_kit.runtime.backends import make_backend

    engine = make_backend("eager", lite_builder.weights, lite_builder.config(), "cuda", precision="fp16")
    sine = np.sin(2 * np.pi * 1000 * np.arange(32000) / 32000).astype(np.float32)[None]
    assert np.isfinite(engine.run(sine)).all()
