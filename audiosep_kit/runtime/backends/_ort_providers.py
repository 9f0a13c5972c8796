"""ONNX Runtime execution-provider options, built as plain functions (so CPU tests can check them).

What each option is for, as ORT's own documentation describes the providers:

* **CUDA EP** ``cudnn_conv_algo_search``: ``EXHAUSTIVE`` (ORT's default) benchmarks every cuDNN
  convolution algorithm on the first run of each input shape, ``HEURISTIC`` takes cuDNN's pick at
  once (no per-shape tuning pause, sometimes a slower kernel), ``DEFAULT`` the fixed implicit GEMM.
  ``prefer_nhwc=1`` lets the EP run convolutions channels-last (tensor cores' layout) with the
  transposes it needs; ``use_tf32`` stays 0 unless asked for (TF32 shifts results by ~1e-3).
* **TensorRT EP**: ``trt_fp16_enable`` for the fp16 model; an engine cache on disk
  (``trt_engine_cache_path``, plus the timing cache) so the minutes of engine building are paid once per
  model and GPU; and one explicit optimisation profile per length bucket: bucket k covers lengths from
  just past bucket k-1 up to its own length, at batch 1 up to ``max_batch``, optimised for
  ``max_batch`` x its length. An input longer than the largest bucket or a batch over ``max_batch``
  has no profile, so TensorRT refuses it; nothing is padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from audiosep_kit._devices import parse_device
from audiosep_kit._paths import cache_root
from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.export import INPUT_NAME
from audiosep_kit.model import MIN_SAMPLES, SAMPLE_RATE

CUDA_EP, TENSORRT_EP, CPU_EP = "CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"
CONV_ALGO_SEARCHES = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
_FLAG = {True: "1", False: "0"}


def cuda_options(
    device_id: int = 0, *, tf32: bool = False, conv_algo_search: str = "EXHAUSTIVE", prefer_nhwc: bool = False
) -> dict[str, str]:
    """The CUDA EP's provider options (strings, as ORT reports them back)."""
    check_choice("conv_algo_search", conv_algo_search, CONV_ALGO_SEARCHES)
    return {
        "device_id": str(device_id),
        "use_tf32": _FLAG[bool(tf32)],
        "cudnn_conv_algo_search": conv_algo_search,
        "prefer_nhwc": _FLAG[bool(prefer_nhwc)],
    }


def trt_profiles(buckets_s: Sequence[float], max_batch: int, input_name: str = INPUT_NAME) -> dict[str, str]:
    """``trt_profile_{min,opt,max}_shapes``: one profile per length bucket (seconds at 32 kHz), ascending.

    ``trt_profiles([1, 5], 32)`` -> min ``waveform:1x1025,waveform:1x32001``, opt and max
    ``waveform:32x32000,waveform:32x160000``.
    """
    if not buckets_s:
        raise ConfigError("trt_buckets_s needs at least one length in seconds, e.g. (1, 5, 10); got none.")
    if not isinstance(max_batch, int) or max_batch < 1:
        raise ConfigError(f"trt_max_batch must be a positive integer; got {max_batch!r}.")
    lengths = sorted({int(round(float(s) * SAMPLE_RATE)) for s in buckets_s})
    if lengths[0] < MIN_SAMPLES:
        raise ConfigError(
            f"every TensorRT length bucket must hold at least {MIN_SAMPLES} samples "
            f"({MIN_SAMPLES / SAMPLE_RATE:.3f} s); got {min(buckets_s)!r} s. Use longer buckets."
        )
    lows = [MIN_SAMPLES] + [previous + 1 for previous in lengths[:-1]]
    shape = "{}:{}x{}".format
    return {
        "trt_profile_min_shapes": ",".join(shape(input_name, 1, low) for low in lows),
        "trt_profile_opt_shapes": ",".join(shape(input_name, max_batch, n) for n in lengths),
        "trt_profile_max_shapes": ",".join(shape(input_name, max_batch, n) for n in lengths),
    }


def tensorrt_options(
    device_id: int = 0,
    *,
    fp16: bool = False,
    buckets_s: Sequence[float] | None = None,
    max_batch: int = 128,
    cache_dir: str | Path | None = None,
) -> dict[str, str]:
    """The TensorRT EP's provider options: fp16, engine + timing cache in ``cache_dir`` (default
    ``$AUDIOSEP_CACHE/tensorrt``), and the length-bucket profiles (None: TensorRT's implicit one)."""
    engines = Path(cache_dir) if cache_dir is not None else cache_root() / "tensorrt"
    options = {
        "device_id": str(device_id),
        "trt_fp16_enable": "True" if fp16 else "False",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(engines),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(engines),
    }
    if buckets_s is not None:
        options |= trt_profiles(buckets_s, max_batch)
    return options


def providers_for(
    device: str,
    *,
    tensorrt: bool = False,
    tf32: bool = False,
    precision: str = "fp32",
    conv_algo_search: str = "EXHAUSTIVE",
    prefer_nhwc: bool = False,
    trt_buckets_s: Sequence[float] | None = None,
    trt_max_batch: int = 128,
    trt_cache_dir: str | Path | None = None,
) -> list[tuple[str, dict]]:
    """Ordered (provider, options) list for ``device``; CPU is last so unsupported ops still run
    (the backend then checks the first provider really is active: no silent fallback)."""
    kind, index = parse_device(device)
    trt_asked = tensorrt or trt_buckets_s is not None or trt_cache_dir is not None
    if kind == "cpu":
        if trt_asked:
            raise ConfigError("tensorrt=True needs device='cuda' (so do its trt_* options); got device='cpu'.")
        if prefer_nhwc or conv_algo_search != "EXHAUSTIVE":
            raise ConfigError(
                "conv_algo_search and prefer_nhwc are CUDA EP options; got device='cpu'. "
                "Use --device cuda or drop them."
            )
        return [(CPU_EP, {})]
    if trt_asked and not tensorrt:
        raise ConfigError("trt_buckets_s / trt_cache_dir configure the TensorRT EP; add tensorrt=1 to use it.")
    device_id = index or 0
    cuda = cuda_options(device_id, tf32=tf32, conv_algo_search=conv_algo_search, prefer_nhwc=prefer_nhwc)
    providers: list[tuple[str, dict]] = [(CUDA_EP, cuda), (CPU_EP, {})]
    if tensorrt:
        trt = tensorrt_options(
            device_id,
            fp16=precision == "fp16",
            buckets_s=trt_buckets_s,
            max_batch=trt_max_batch,
            cache_dir=trt_cache_dir,
        )
        providers.insert(0, (TENSORRT_EP, trt))
    return providers
