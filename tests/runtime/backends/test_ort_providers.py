"""ONNX Runtime provider options (``_ort_providers``): built on CPU as plain values, and the no-silent-
fallback rule for every configured GPU variant on a machine whose onnxruntime-gpu lists CUDA but cannot use it."""

from __future__ import annotations

import pytest
import torch

from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.export import import_onnxruntime
from audiosep_kit.runtime import make_backend
from audiosep_kit.runtime.backends._ort_providers import cuda_options, providers_for, tensorrt_options, trt_profiles


def test_cuda_options_carry_the_conv_search_and_layout():
    assert cuda_options(2, conv_algo_search="HEURISTIC", prefer_nhwc=True, tf32=True) == {
        "device_id": "2",
        "use_tf32": "1",
        "cudnn_conv_algo_search": "HEURISTIC",
        "prefer_nhwc": "1",
    }
    with pytest.raises(ConfigError, match=r"`conv_algo_search` must be one of .*got 'FAST'"):
        cuda_options(conv_algo_search="FAST")


def test_one_tensorrt_profile_per_length_bucket():
    """Buckets are sorted and contiguous: each starts one sample past the previous one's end."""
    assert trt_profiles([10, 1, 5], max_batch=128) == {
        "trt_profile_min_shapes": "waveform:1x1025,waveform:1x32001,waveform:1x160001",
        "trt_profile_opt_shapes": "waveform:128x32000,waveform:128x160000,waveform:128x320000",
        "trt_profile_max_shapes": "waveform:128x32000,waveform:128x160000,waveform:128x320000",
    }
    with pytest.raises(ConfigError, match=r"at least 1025 samples .*got 0.01 s"):
        trt_profiles([0.01, 1], max_batch=1)
    with pytest.raises(ConfigError, match=r"trt_max_batch must be a positive integer; got 0"):
        trt_profiles([1], max_batch=0)


def test_tensorrt_options_enable_fp16_and_an_engine_cache(tmp_path):
    options = tensorrt_options(0, fp16=True, buckets_s=(1,), max_batch=4, cache_dir=tmp_path / "engines")
    assert options["trt_fp16_enable"] == "True" and options["trt_engine_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(tmp_path / "engines")
    assert options["trt_profile_max_shapes"] == "waveform:4x32000"
    assert "trt_profile_min_shapes" not in tensorrt_options(0)  # no buckets: TensorRT's implicit profile


def test_providers_refuse_gpu_options_where_they_cannot_apply(tmp_path):
    with pytest.raises(ConfigError, match=r"CUDA EP options; got device='cpu'"):
        providers_for("cpu", prefer_nhwc=True)
    with pytest.raises(ConfigError, match=r"tensorrt=True needs device='cuda' \(so do its trt_\* options\)"):
        providers_for("cpu", trt_buckets_s=(1,))
    with pytest.raises(ConfigError, match=r"configure the TensorRT EP; add tensorrt=1"):
        providers_for("cuda", trt_cache_dir=tmp_path)
    names = [name for name, _ in providers_for("cuda", tensorrt=True, precision="fp16", trt_buckets_s=(1, 5))]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


#: GPU variants as a user configures them; on a machine without a usable GPU each must raise, never run on CPU.
CONFIGURED = {
    "heuristic-nhwc-iobinding": {"conv_algo_search": "HEURISTIC", "prefer_nhwc": True, "io_binding": True},
    "tensorrt-fp16-buckets": {"tensorrt": True, "trt_buckets_s": (1.0, 5.0), "trt_max_batch": 8},
}


@pytest.mark.parametrize("variant", list(CONFIGURED))
def test_configured_cuda_variant_without_a_gpu_raises_instead_of_running_on_cpu(
    variant, golden_onnx, golden_weights, golden_config, tmp_path
):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present; the failure path needs a machine without one")
    ort = import_onnxruntime()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} is the CPU build: the session never offers CUDA here")
    options = dict(CONFIGURED[variant])
    if options.get("tensorrt"):
        options["trt_cache_dir"] = tmp_path / "engines"
    wanted = "TensorrtExecutionProvider" if options.get("tensorrt") else "CUDAExecutionProvider"
    with pytest.raises(BackendUnavailableError, match=rf"'cuda' needs {wanted}, but ONNX Runtime .* activated \["):
        make_backend("onnx", golden_weights, golden_config(), "cuda", model_path=golden_onnx("none", "mean"), **options)
