"""What a benchmark measures: encoder arithmetic, machine peak, latency, throughput, memory.

Why these pieces: a throughput number means little without the work it did (encoder MACs from
ENCODER_SPEC §5.2), what the machine could do at best (a measured matmul peak per dtype), the spread
(p50/p90/p99 of interleaved repeats, never one run), and what the speed cost in accuracy (cosine to
eager float32 on the same inputs). ``run_bench`` measures backends side by side in one process,
interleaved, with cold costs (export, session creation, first call/compile) kept apart from warm ones.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.model import HOP, LAYERS, SAMPLE_RATE

#: ENCODER_SPEC §5.2: the two STFT Conv1d kernels, per STFT frame (2 x 1025 x 2048).
STFT_MAC_PER_FRAME = 4_198_400
#: ENCODER_SPEC §5.2: MAC per *padded* input frame of each stage (FiLM Linears negligible).
STAGE_MAC_PER_PADDED_FRAME = {
    "pre_conv": 32_768,
    "block1": 18_874_368,
    "block2": 14_680_064,
    "block3": 14_680_064,
    "block4": 14_680_064,
    "block5": 9_240_576,
    "block6": 2_654_208,
    "center": 1_327_104,
}
_TIME_MULTIPLE = 32


def stft_frames(num_samples: int) -> int:
    """T = L // hop + 1 (centred STFT, reflect pad)."""
    return num_samples // HOP + 1


def encoder_macs(num_samples: int, *, layer: str = "center", pad_to_32: bool = True) -> int:
    """Multiply-accumulates for one clip: 4 198 400·T + Σ stage·Tp (spec §5.2; 5 s -> 41.10 GMAC).

    Without pad_to_32 the stages run on T frames instead of Tp (an estimate: floor pooling trims a
    few frames deeper down, which the per-frame constants do not see).
    """
    check_choice("layer", layer, LAYERS)
    frames = stft_frames(num_samples)
    padded = math.ceil(frames / _TIME_MULTIPLE) * _TIME_MULTIPLE if pad_to_32 else frames
    stages = list(STAGE_MAC_PER_PADDED_FRAME)[: LAYERS.index(layer) + 2]  # pre_conv + blocks up to the tap
    return STFT_MAC_PER_FRAME * frames + sum(STAGE_MAC_PER_PADDED_FRAME[s] for s in stages) * padded


def gflop_per_audio_second(num_samples: int, **kwargs) -> float:
    """GFLOP (2 per MAC) per second of audio for clips of ``num_samples`` at 32 kHz."""
    return 2 * encoder_macs(num_samples, **kwargs) / 1e9 / (num_samples / SAMPLE_RATE)


@dataclass(frozen=True)
class Peak:
    """Measured matmul rate of this machine for one dtype (best and median of the repeats)."""

    dtype: str
    size: int
    best_gflops: float
    median_gflops: float
    threads: int
    method: str = "torch.mm"


def measure_peak(dtype: str = "fp32", size: int = 2048, repeats: int = 5) -> Peak:
    """Time a size x size matmul with torch.mm (MKL for fp32) and with oneDNN's linear; keep the faster.

    Both are tried because MKL's fp32 GEMM is not the fastest on AMD CPUs (oneDNN's is), and the
    encoder's convolutions run on oneDNN. The best run is the peak: on a shared machine any slower
    run was disturbed; the median is reported beside it.
    """
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    check_choice("dtype", dtype, dtypes)
    if size < 64 or repeats < 1:
        raise ConfigError(f"`size` must be >= 64 and `repeats` >= 1; got size={size}, repeats={repeats}.")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dtypes[dtype])
    b = torch.randn(size, size, generator=gen).to(dtypes[dtype])
    methods = {
        "torch.mm": lambda: torch.mm(a, b),
        "oneDNN linear": lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], ""),
    }
    flop = 2.0 * size**3 / 1e9
    best = None
    with torch.inference_mode():
        for method, fn in methods.items():
            try:
                seconds = time_calls(fn, warmup=1, repeats=repeats)
            except RuntimeError:  # oneDNN has no kernel for this dtype on this CPU (bf16 without AVX512-BF16)
                continue
            peak = Peak(
                dtype, size, flop / min(seconds), flop / float(np.median(seconds)), torch.get_num_threads(), method
            )
            best = peak if best is None or peak.best_gflops > best.best_gflops else best
    if best is None:
        raise ConfigError(f"no matmul method ran for dtype {dtype!r} on this machine.")
    return best


def time_calls(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 5) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    if warmup < 0 or repeats < 1:
        raise ConfigError(f"`warmup` must be >= 0 and `repeats` >= 1; got warmup={warmup}, repeats={repeats}.")
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean / min / max of per-call seconds (linear interpolation)."""
    if not seconds:
        raise ConfigError("latency_summary needs at least one timing; got none.")
    values = np.asarray(seconds, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "p50_s": float(p50),
        "p90_s": float(p90),
        "p99_s": float(p99),
        "mean_s": float(values.mean()),
        "min_s": float(values.min()),
        "max_s": float(values.max()),
        "repeats": int(values.size),
    }


def throughput(batch: int, num_samples: int, seconds: float) -> dict[str, float]:
    """Clips/s, seconds of audio per second, and real-time factor (compute s per audio s; < 1 is faster)."""
    if seconds <= 0 or batch < 1 or num_samples < 1:
        raise ConfigError(
            f"throughput needs seconds > 0, batch >= 1, samples >= 1; got {seconds}, {batch}, {num_samples}."
        )
    audio = batch * num_samples / SAMPLE_RATE
    return {
        "clips_per_second": batch / seconds,
        "audio_seconds_per_second": audio / seconds,
        "real_time_factor": seconds / audio,
    }


def _read_hwm_kib() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the process's peak-RSS mark (Linux ``clear_refs`` 5); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_during(fn: Callable[[], object]) -> tuple[object, dict]:
    """Run ``fn`` once; return its result and the process's peak resident memory during the call.

    On Linux the high-water mark is reset first, so the number belongs to this call (it still
    includes everything the process already held: weights, sessions, other backends). Elsewhere it
    falls back to the lifetime peak (``ru_maxrss``) and says so.
    """
    exact = _reset_hwm()
    result = fn()
    hwm = _read_hwm_kib() if exact else None
    if hwm is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return result, {"peak_rss_mb": kib / 1024, "peak_rss_method": "ru_maxrss (process lifetime)"}
    return result, {"peak_rss_mb": hwm / 1024, "peak_rss_method": "VmHWM reset before the call"}


def gpu_memory_during(fn: Callable[[], object], device: str) -> tuple[object, dict]:
    """Run ``fn`` once; on a CUDA ``device`` also return its GPU memory (nothing elsewhere).

    Two numbers, because engines allocate differently: torch's peak allocation during the call (the
    torch backends' tensors; ORT and TensorRT allocate outside torch) and the device's memory in use
    after it (every engine's arenas and workspaces, and any other process on the GPU).
    """
    if not device.startswith("cuda"):
        return fn(), {}
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    free, total = torch.cuda.mem_get_info(device)
    return result, {
        "gpu_torch_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
        "gpu_device_used_mb": (total - free) / 2**20,
    }


def synthetic_clips(batch: int, num_samples: int, seed: int = 0) -> np.ndarray:
    """Deterministic (batch, L) float32 inputs: a tone (110 Hz x row+1 ... ), its harmonics and noise.

    Used when no real clips are given; row k differs from row j so batch mixing would show.
    """
    if batch < 1 or num_samples < 1:
        raise ConfigError(f"synthetic_clips needs batch >= 1 and num_samples >= 1; got {batch}, {num_samples}.")
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SAMPLE_RATE
    rows = []
    for k in range(batch):
        f0 = 110.0 * (k + 1)
        tone = sum(0.3 / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) for h in (1, 2, 3))
        rows.append(tone + 0.05 * rng.standard_normal(num_samples))
    return np.asarray(rows, dtype=np.float32)
