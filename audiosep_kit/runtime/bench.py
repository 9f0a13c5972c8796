"""Measurement for benchmarks and ``audiosep-bench``: arithmetic, machine peak, latency, memory, quality.

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

from audiosep_kit.errors import ConfigError
from audiosep_kit.model.config import HOP, LAYERS, SAMPLE_RATE

__all__ = [
    "STFT_MAC_PER_FRAME", "STAGE_MAC_PER_PADDED_FRAME", "stft_frames", "encoder_macs", "gflop_per_audio_second",
    "Peak", "measure_peak", "time_calls", "latency_summary", "throughput", "peak_rss_during", "synthetic_clips",
    "load_clips", "BackendSpec", "build_backends", "run_bench", "end_to_end",
]

#: ENCODER_SPEC §5.2: the two STFT Conv1d kernels, per STFT frame (2 x 1025 x 2048).
STFT_MAC_PER_FRAME = 4_198_400
#: ENCODER_SPEC §5.2: MAC per *padded* input frame of each stage (FiLM Linears negligible).
STAGE_MAC_PER_PADDED_FRAME = {
    "pre_conv": 32_768, "block1": 18_874_368, "block2": 14_680_064, "block3": 14_680_064,
    "block4": 14_680_064, "block5": 9_240_576, "block6": 2_654_208, "center": 1_327_104,
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
    if layer not in LAYERS:
        raise ConfigError(f"`layer` must be one of {set(LAYERS)}; got {layer!r}.")
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
    import torch

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if dtype not in dtypes:
        raise ConfigError(f"`dtype` must be one of {set(dtypes)}; got {dtype!r}.")
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
            seconds = time_calls(fn, warmup=1, repeats=repeats)
            peak = Peak(dtype, size, flop / min(seconds), flop / float(np.median(seconds)), torch.get_num_threads(), method)
            best = peak if best is None or peak.best_gflops > best.best_gflops else best
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
        raise ConfigError(f"throughput needs seconds > 0, batch >= 1, samples >= 1; got {seconds}, {batch}, {num_samples}.")
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


def load_clips(folder: str | Path, num_samples: int, count: int) -> tuple[np.ndarray, list[str]]:
    """``count`` real clips from ``folder`` (sorted, recursive), 32 kHz, looped or cut to ``num_samples``.

    Files are reused in order when the folder holds fewer than ``count``.
    """
    from audiosep_kit.cli.common import AUDIO_EXTENSIONS
    from audiosep_kit.runtime.audio import read_audio

    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ConfigError(f"no audio files under {root} (--clips expects a folder of .wav/.flac/... files).")
    rows, names = [], []
    for k in range(count):
        path = files[k % len(files)]
        wave = read_audio(path).waveform
        reps = -(-num_samples // wave.shape[0])
        rows.append(np.tile(wave, reps)[:num_samples])
        names.append(path.name)
    return np.asarray(rows, dtype=np.float32), names


@dataclass(frozen=True)
class BackendSpec:
    """A backend name and precision as written on the command line: ``name[:precision]``."""

    name: str
    precision: str

    @classmethod
    def parse(cls, text: str) -> "BackendSpec":
        name, _, precision = text.strip().partition(":")
        return cls(name, precision or ("bf16" if name == "fast" else "fp32"))

    @property
    def label(self) -> str:
        return f"{self.name}:{self.precision}"

    def options(self) -> dict:
        """Backend options that select the precision (only onnx and fast take one)."""
        if self.name in ("onnx", "fast"):
            return {"precision": self.precision}
        if self.precision != "fp32":
            raise ConfigError(f"backend {self.name!r} runs fp32 only; got {self.label!r} (use onnx:fp16 or fast:bf16).")
        return {}


def _prepare_artifact(spec: BackendSpec, weights, config, device: str) -> tuple[dict, float | None]:
    """Export (or find in the shared cache) the onnx/aoti artifact, so export time is reported alone."""
    if spec.name not in ("onnx", "aoti"):
        return {}, None
    from audiosep_kit.runtime.backends.onnx_runtime import cache_root, cached_artifact_path

    if spec.name == "onnx":
        from audiosep_kit.export.onnx_export import DEFAULT_OPSET, export_onnx

        rel = cached_artifact_path("onnx", weights.sha256, config, ".onnx", precision=spec.precision, opset=DEFAULT_OPSET)
        export = lambda path: export_onnx(weights, config, path, precision=spec.precision, sweep="quick")  # noqa: E731
    else:
        from audiosep_kit.export.aoti_export import export_aoti

        rel = cached_artifact_path("aoti", weights.sha256, config, ".pt2", device=device.split(":")[0])
        export = lambda path: export_aoti(weights, config, path, device=device, sweep="quick")  # noqa: E731
    path = cache_root() / rel
    if path.is_file():
        return {"model_path": path}, 0.0
    start = time.perf_counter()
    export(path)
    return {"model_path": path}, time.perf_counter() - start


def build_backends(specs: Sequence[BackendSpec], weights, config, device: str) -> tuple[dict, dict]:
    """Build every backend once: {label: (backend, cold timings)}, {label: reason it was skipped}."""
    from audiosep_kit.errors import BackendUnavailableError
    from audiosep_kit.runtime.backends import make_backend

    built, skipped = {}, {}
    for spec in specs:
        try:
            options, export_s = _prepare_artifact(spec, weights, config, device)
            start = time.perf_counter()
            backend = make_backend(spec.name, weights, config, device, **options, **spec.options())
            built[spec.label] = (backend, {"export_s": export_s, "build_s": time.perf_counter() - start})
        except BackendUnavailableError as exc:
            skipped[spec.label] = str(exc)
    return built, skipped


def _run_all(backend, data: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([backend.run(data[i : i + batch]) for i in range(0, len(data), batch)])


def _time_shape(built: dict, x: np.ndarray, warmup: int, repeats: int) -> dict[str, dict]:
    """Cold first call, warm-up, peak RSS, then ``repeats`` rounds interleaved across backends."""
    stats = {}
    for label, (backend, _) in built.items():
        first = time_calls(lambda: backend.run(x), warmup=0, repeats=1)[0]  # cold: may include compilation
        for _ in range(warmup - 1):
            backend.run(x)
        _, memory = peak_rss_during(lambda: backend.run(x))  # also the last warm-up call
        stats[label] = {"first_call_s": first, **memory, "seconds": []}
    for _ in range(repeats):
        for label, (backend, _) in built.items():
            stats[label]["seconds"] += time_calls(lambda: backend.run(x), warmup=0, repeats=1)
    return stats


def run_bench(
    weights, config, specs: Sequence[BackendSpec], *, batch_sizes: Sequence[int] = (1, 8),
    durations: Sequence[float] = (1.0, 5.0), repeats: int = 5, warmup: int = 1, device: str = "cpu",
    clips_dir: str | Path | None = None, quality_clips: int = 8, peaks: dict[str, Peak] | None = None,
) -> tuple[list[dict], dict[str, str]]:
    """Rows (one per backend x batch x duration) and the backends skipped with their reason.

    eager fp32 is always measured (first) as the reference for speed-ups and cosines. Cosine is the
    smallest over ``quality_clips`` inputs (real clips from ``clips_dir``, else ``synthetic_clips``).
    """
    import torch

    from audiosep_kit.export.parity import compare

    specs = [BackendSpec("eager", "fp32")] + [s for s in specs if s != BackendSpec("eager", "fp32")]
    built, skipped = build_backends(specs, weights, config, device)
    peaks = peaks or {}
    rows = []
    for duration in durations:
        samples = int(round(duration * SAMPLE_RATE))
        count = max(max(batch_sizes), quality_clips)
        if clips_dir is not None:
            data, _ = load_clips(clips_dir, samples, count)
        else:
            data = synthetic_clips(count, samples)
        shape_stats = {b: _time_shape(built, data[:b], warmup, repeats) for b in batch_sizes}
        reference = _run_all(built["eager:fp32"][0], data[:quality_clips], max(batch_sizes))
        for label, (backend, cold) in built.items():
            features = _run_all(backend, data[:quality_clips], max(batch_sizes))
            cosine = 1.0 if label == "eager:fp32" else compare(features, reference).min_cosine
            for batch in batch_sizes:
                stats = shape_stats[batch][label]
                eager_p50 = latency_summary(shape_stats[batch]["eager:fp32"]["seconds"])["p50_s"]
                row = _row(label, backend, cold, stats, batch, samples, eager_p50, cosine, peaks, config)
                row.update(input="real clips" if clips_dir else "noise + tones", quality_clips=quality_clips,
                           threads=torch.get_num_threads(), weights=weights.describe())
                rows.append(row)
    return rows, skipped


def _row(label, backend, cold, stats, batch, samples, eager_p50, cosine, peaks, config) -> dict:
    latency = latency_summary(stats["seconds"])
    rates = throughput(batch, samples, latency["p50_s"])
    gflop = 2 * encoder_macs(samples, layer=config.layer, pad_to_32=config.pad_to_32) / 1e9
    achieved = gflop * rates["clips_per_second"]
    peak = peaks.get("bf16" if backend.precision == "bf16" else "fp32")
    return {
        "backend": backend.name, "precision": backend.precision, "label": label, "batch": batch,
        "duration_s": samples / SAMPLE_RATE, "samples": samples, **cold, "first_call_s": stats["first_call_s"],
        **latency, **rates, "speedup_vs_eager": eager_p50 / latency["p50_s"], "cosine_vs_fp32": cosine,
        "gflop_per_clip": gflop, "achieved_gflops": achieved,
        "peak_gflops": peak.best_gflops if peak else None,
        "percent_of_peak": 100 * achieved / peak.best_gflops if peak else None,
        "peak_rss_mb": stats["peak_rss_mb"], "peak_rss_method": stats["peak_rss_method"],
        "executed": backend.executed(),
    }


def end_to_end(extractor, paths: Sequence[str | Path], out_dir: str | Path, *, repeats: int = 2,
               workers: int = 2, chunk_size: int = 64) -> dict:
    """Throughput of ``extract_to_store`` (decode + resample + model + store) against the model alone
    on the same decoded clips, same batching; runs interleaved ``repeats`` times, medians reported."""
    from audiosep_kit.runtime.audio import read_audio
    from audiosep_kit.runtime.store import extract_to_store

    start = time.perf_counter()
    waves = [read_audio(p).waveform for p in paths]
    decode_s = time.perf_counter() - start
    audio_s = sum(w.shape[0] for w in waves) / SAMPLE_RATE
    extractor.embed_waves(waves)  # warm-up (buffers, compiled shapes): first-call costs are not throughput
    model, full, store = [], [], None
    for _ in range(repeats):
        model += time_calls(lambda: extractor.embed_waves(waves), warmup=0, repeats=1)
        start = time.perf_counter()
        store = extract_to_store(extractor, list(paths), out_dir, workers=workers, chunk_size=chunk_size,
                                 overwrite=True, progress=False)
        full.append(time.perf_counter() - start)
    model_s, full_s = float(np.median(model)), float(np.median(full))
    return {
        "files": len(waves), "audio_seconds": audio_s, "decode_only_s": decode_s,
        "model_only_s": model_s, "end_to_end_s": full_s,
        "model_only_audio_seconds_per_second": audio_s / model_s,
        "end_to_end_audio_seconds_per_second": audio_s / full_s,
        "end_to_end_fraction_of_model_only": model_s / full_s,
        "failed_files": int(len(store.failures())) if store is not None else 0,
        "backend": extractor.backend.name, "precision": extractor.backend.precision,
        "batch_size": extractor.batch_size, "workers": workers, "repeats": repeats,
    }
