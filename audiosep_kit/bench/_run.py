"""Backends measured side by side (``audiosep-bench``, ``benchmarks/``): one process, interleaved rounds.

Why interleaved: on a shared machine the load changes from minute to minute; running every backend
once per round, round after round, exposes them to the same conditions, and medians discard the
disturbed rounds. Cold costs (export, session creation, first call/compile) are kept apart from warm
ones, and quality is the cosine to eager float32 on the same inputs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
import torch

from audiosep_kit._devices import torch_device
from audiosep_kit.audio import audio_files, read_audio
from audiosep_kit.bench._measure import (
    Peak,
    encoder_macs,
    gpu_memory_during,
    latency_summary,
    peak_rss_during,
    synthetic_clips,
    throughput,
    time_calls,
)
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.export import cached_artifact
from audiosep_kit.features import extract_to_store
from audiosep_kit.model import SAMPLE_RATE
from audiosep_kit.numerics import compare
from audiosep_kit.runtime import BACKENDS, default_precision, make_backend, parse_variant


def load_clips(folder: str | Path, num_samples: int, count: int) -> tuple[np.ndarray, list[str]]:
    """``count`` real clips from ``folder`` (sorted, recursive), 32 kHz, looped or cut to ``num_samples``.

    Files are reused in order when the folder holds fewer than ``count``.
    """
    root = Path(folder)
    files = audio_files(root)
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
    """A backend variant as written on the command line: ``name[:precision][+key=value...]``.

    The options (``onnx:fp32+conv_algo_search=HEURISTIC+prefer_nhwc=true``) configure the backend as a
    user would (runtime.parse_variant reads and checks them); they are part of the label, so every row
    says which configuration it measured.
    """

    name: str
    precision: str
    extra: tuple[tuple[str, object], ...] = ()

    @classmethod
    def parse(cls, text: str) -> BackendSpec:
        """``name[:precision][+key=value...]``; without a precision, the backend's default (fp32 for every backend)."""
        head, plus, _ = text.strip().partition("+")
        name, _, precision = head.partition(":")
        extra = tuple(parse_variant(text)[2].items()) if plus else ()
        return cls(name, precision or default_precision(name), extra)

    @property
    def label(self) -> str:
        options = "".join(f"+{key}={_option_text(value)}" for key, value in self.extra)
        return f"{self.name}:{self.precision}{options}"

    def options(self) -> dict:
        """Backend options that select the precision (for backends that offer more than one)."""
        offered = BACKENDS[self.name].precisions if self.name in BACKENDS else ()
        if self.precision not in offered:
            raise ConfigError(
                f"backend {self.name!r} offers {list(offered)}; got {self.label!r} (use onnx:fp16 or fast:bf16)."
            )
        return ({"precision": self.precision} if len(offered) > 1 else {}) | dict(self.extra)


def _option_text(value: object) -> str:
    """An option value as parse_variant reads it back (a tuple as 'a/b', booleans lower case)."""
    if isinstance(value, tuple):
        return "/".join(f"{v:g}" for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _prepare_artifact(
    spec: BackendSpec, weights, config, device: str, cache_dir: str | Path | None = None
) -> tuple[dict, float | None]:
    """Export (or find in the shared cache) the onnx/aoti artifact, so export time is reported alone."""
    if spec.name not in ("onnx", "aoti"):
        return {}, None
    artifact = cached_artifact(spec.name, weights, config, device=device, precision=spec.precision, cache_dir=cache_dir)
    return {"model_path": artifact.path}, (artifact.export_s or 0.0)


def build_backends(
    specs: Sequence[BackendSpec], weights, config, device: str, cache_dir: str | Path | None = None
) -> tuple[dict, dict]:
    """Build every backend once: {label: (backend, cold timings)}, {label: reason it was skipped}.

    onnx and aoti artifacts are exported into (or found in) the cache root ``cache_dir``."""
    built, skipped = {}, {}
    for spec in specs:
        try:
            options, export_s = _prepare_artifact(spec, weights, config, device, cache_dir)
            start = time.perf_counter()
            backend = make_backend(spec.name, weights, config, device, **options, **spec.options())
            built[spec.label] = (backend, {"export_s": export_s, "build_s": time.perf_counter() - start})
        except BackendUnavailableError as exc:
            skipped[spec.label] = str(exc)
    return built, skipped


def _run_all(backend, data: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([backend.run(data[i : i + batch]) for i in range(0, len(data), batch)])


def _time_shape(built: dict, x: np.ndarray, warmup: int, repeats: int, device: str = "cpu") -> dict[str, dict]:
    """Cold first call, warm-up, peak RSS (and GPU memory on CUDA), then ``repeats`` rounds interleaved."""
    stats = {}
    for label, (backend, _) in built.items():
        first = time_calls(partial(backend.run, x), warmup=0, repeats=1)[0]  # cold: may include compilation
        for _ in range(warmup - 1):
            backend.run(x)
        # also the last warm-up call
        both, memory = peak_rss_during(partial(gpu_memory_during, partial(backend.run, x), device))
        gpu = cast(tuple[object, dict], both)[1]
        stats[label] = {"first_call_s": first, **memory, **gpu, "seconds": []}
    for _ in range(repeats):
        for label, (backend, _) in built.items():
            stats[label]["seconds"] += time_calls(partial(backend.run, x), warmup=0, repeats=1)
    return stats


def run_bench(
    weights,
    config,
    specs: Sequence[BackendSpec],
    *,
    batch_sizes: Sequence[int] = (1, 8),
    durations: Sequence[float] = (1.0, 5.0),
    repeats: int = 5,
    warmup: int = 1,
    device: str = "cpu",
    clips_dir: str | Path | None = None,
    quality_clips: int = 8,
    peaks: dict[str, Peak] | None = None,
    cache_dir: str | Path | None = None,
    reference_device: str | None = None,
) -> tuple[list[dict], dict[str, str]]:
    """Rows (one per backend x batch x duration) and the backends skipped with their reason.

    eager fp32 is always measured (first) as the reference for speed-ups and cosines. Cosine is the
    smallest over ``quality_clips`` inputs (real clips from ``clips_dir``, else ``synthetic_clips``),
    against eager fp32 on ``reference_device`` (default: ``device``; 'cpu' for GPU runs, so every GPU
    row, the GPU's eager fp32 included, is judged against the CPU float32 features).
    """
    specs = [BackendSpec("eager", "fp32")] + [s for s in specs if s != BackendSpec("eager", "fp32")]
    torch_device(device)  # cuda without CUDA: nothing, not even the reference, could run; say so first
    built, skipped = build_backends(specs, weights, config, device, cache_dir)
    if "eager:fp32" not in built:
        raise BackendUnavailableError(
            f"the eager fp32 reference every row is compared with cannot run on {device!r}: {skipped['eager:fp32']}"
        )
    peaks = peaks or {}
    reference_on = reference_device or device
    judge = built["eager:fp32"][0] if reference_on == device else make_backend("eager", weights, config, reference_on)
    rows = []
    for duration in durations:
        samples = int(round(duration * SAMPLE_RATE))
        count = max(max(batch_sizes), quality_clips)
        if clips_dir is not None:
            data, _ = load_clips(clips_dir, samples, count)
        else:
            data = synthetic_clips(count, samples)
        shape_stats = {b: _time_shape(built, data[:b], warmup, repeats, device) for b in batch_sizes}
        reference = _run_all(judge, data[:quality_clips], max(batch_sizes))
        for label, (backend, cold) in built.items():
            features = _run_all(backend, data[:quality_clips], max(batch_sizes))
            same = label == "eager:fp32" and judge is backend
            cosine = 1.0 if same else compare(features, reference).min_cosine
            for batch in batch_sizes:
                stats = shape_stats[batch][label]
                eager_p50 = latency_summary(shape_stats[batch]["eager:fp32"]["seconds"])["p50_s"]
                row = _row(label, backend, cold, stats, batch, samples, eager_p50, cosine, peaks, config)
                row.update(
                    input="real clips" if clips_dir else "noise + tones",
                    quality_clips=quality_clips,
                    cosine_reference=f"eager:fp32 on {reference_on}",
                    threads=torch.get_num_threads(),
                    weights=weights.describe(),
                )
                rows.append(row)
    return rows, skipped


def _row(label, backend, cold, stats, batch, samples, eager_p50, cosine, peaks, config) -> dict:
    latency = latency_summary(stats["seconds"])
    rates = throughput(batch, samples, latency["p50_s"])
    gflop = 2 * encoder_macs(samples, layer=config.layer, pad_to_32=config.pad_to_32) / 1e9
    achieved = gflop * rates["clips_per_second"]
    # The peaks are CPU matmul peaks: a fraction of them means nothing for a backend that ran elsewhere.
    on_cpu = str(backend.executed().get("device", "cpu")).startswith("cpu")
    peak = peaks.get("bf16" if backend.precision == "bf16" else "fp32") if on_cpu else None
    return {
        "backend": backend.name,
        "precision": backend.precision,
        "label": label,
        "batch": batch,
        "duration_s": samples / SAMPLE_RATE,
        "samples": samples,
        **cold,
        "first_call_s": stats["first_call_s"],
        **latency,
        **rates,
        "speedup_vs_eager": eager_p50 / latency["p50_s"],
        "cosine_vs_fp32": cosine,
        "gflop_per_clip": gflop,
        "achieved_gflops": achieved,
        "peak_gflops": peak.best_gflops if peak else None,
        "percent_of_peak": 100 * achieved / peak.best_gflops if peak else None,
        "peak_rss_mb": stats["peak_rss_mb"],
        "peak_rss_method": stats["peak_rss_method"],
        "gpu_torch_peak_mb": stats.get("gpu_torch_peak_mb"),
        "gpu_device_used_mb": stats.get("gpu_device_used_mb"),
        "executed": backend.executed(),
    }


def end_to_end(
    extractor,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    repeats: int = 2,
    workers: int = 2,
    processes: bool = False,
    chunk_size: int = 64,
) -> dict:
    """Throughput of ``extract_to_store`` (decode + resample + model + store) against the model alone
    on the same decoded clips, same batching; runs interleaved ``repeats`` times, medians reported
    (each pipeline run's seconds too: with ``processes`` the first one starts the worker server)."""
    start = time.perf_counter()
    waves = [read_audio(p).waveform for p in paths]
    decode_s = time.perf_counter() - start
    audio_s = sum(w.shape[0] for w in waves) / SAMPLE_RATE
    extractor.embed_waves(waves)  # warm-up (buffers, compiled shapes): first-call costs are not throughput
    model, full, store = [], [], None
    for _ in range(repeats):
        model += time_calls(lambda: extractor.embed_waves(waves), warmup=0, repeats=1)
        start = time.perf_counter()
        store = extract_to_store(
            extractor,
            list(paths),
            out_dir,
            workers=workers,
            processes=processes,
            chunk_size=chunk_size,
            overwrite=True,
            progress=False,
        )
        full.append(time.perf_counter() - start)
    model_s, full_s = float(np.median(model)), float(np.median(full))
    return {
        "files": len(waves),
        "audio_seconds": audio_s,
        "decode_only_s": decode_s,
        "model_only_s": model_s,
        "end_to_end_s": full_s,
        "end_to_end_runs_s": [round(t, 3) for t in full],
        "model_only_runs_s": [round(t, 3) for t in model],
        "model_only_audio_seconds_per_second": audio_s / model_s,
        "end_to_end_audio_seconds_per_second": audio_s / full_s,
        "end_to_end_fraction_of_model_only": model_s / full_s,
        "failed_files": int(len(store.failures())) if store is not None else 0,
        "backend": extractor.backend.name,
        "precision": extractor.backend.precision,
        "batch_size": extractor.batch_size,
        "workers": workers,
        "decoding": "processes" if processes else "threads",
        "repeats": repeats,
    }
