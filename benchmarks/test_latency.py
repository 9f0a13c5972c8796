"""Latency of every backend x batch {1, 8} x clip {1 s, 5 s}; one benchmark group per shape.

Each group compares the backends on one shape, so ``pytest-benchmark compare`` (or the table printed
by ``make bench``) reads as a ranking. ``extra_info`` carries what a time alone does not say:
throughput, real-time factor, p50/p90/p99, peak memory, what executed, threads and the weights'
identity (random:0, labelled random). The value returned by the backend is checked against eager
float32 (shape, finite, within the precision's tolerance); times are never asserted.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from audiosep_kit.numerics import compare, tolerance_for
from audiosep_kit.runtime import backend_variants

#: Every registered backend x precision, so a new backend is benchmarked without editing this file.
BACKENDS = [f"{name}:{precision}" for name, precision in backend_variants()]


def _check_features(got: np.ndarray, ref: np.ndarray, precision: str) -> dict:
    assert got.shape == ref.shape, f"shape {got.shape} != eager {ref.shape}"
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    cmp = compare(got, ref)
    assert cmp.within(tolerance_for(precision)), (
        f"max rel {cmp.max_rel:.2e}, min cosine {cmp.min_cosine:.6f} outside the {precision} tolerance"
    )
    return {"max_rel_vs_eager": cmp.max_rel, "cosine_vs_eager": cmp.min_cosine}


@pytest.mark.parametrize("duration", [1.0, 5.0], ids=["1s", "5s"])
@pytest.mark.parametrize("batch", [1, 8], ids=["b1", "b8"])
@pytest.mark.parametrize("label", BACKENDS)
def test_latency(
    benchmark, label, batch, duration, bench_mode, bench_backend, bench_inputs, eager_reference, bench_weights
):
    import torch

    from audiosep_kit.bench import latency_summary, peak_rss_during, throughput

    backend, cold = bench_backend(label)
    x = bench_inputs(batch, duration)
    seconds: list[float] = []

    def run() -> np.ndarray:
        start = time.perf_counter()
        out = backend.run(x)
        seconds.append(time.perf_counter() - start)
        return out

    benchmark.group = f"{duration:g}s clips, batch {batch}"
    got = benchmark.pedantic(run, rounds=bench_mode.rounds, warmup_rounds=bench_mode.warmup_rounds, iterations=1)
    quality = _check_features(got, eager_reference(batch, duration), backend.precision)
    _, memory = peak_rss_during(lambda: backend.run(x))
    timed = seconds[bench_mode.warmup_rounds :] if not benchmark.disabled else seconds
    latency = latency_summary(timed)
    benchmark.extra_info.update(
        mode=bench_mode.name,
        layer=bench_mode.layer,
        backend=backend.name,
        precision=backend.precision,
        batch=batch,
        nominal_duration_s=duration,
        samples=x.shape[1],
        **throughput(batch, x.shape[1], latency["p50_s"]),
        **latency,
        **memory,
        **quality,
        **{k: v for k, v in cold.items() if v is not None},
        executed=backend.executed(),
        threads=torch.get_num_threads(),
        weights=bench_weights.describe(),
    )
