"""Cost of an ablation sweep: every tap of one pass against one configuration alone, side by side.

Each round first times one single-configuration extraction (pedantic's untimed ``setup``) and then
the sweep's on the same batch, so both see the same machine load on a shared machine; ``extra_info``
carries both medians and their ratio (the sweep's promise: about the deepest tap's own cost, at most
1.5x). Full mode: 7 layers x 3 poolings against center/mean on 8 x 5 s clips; quick mode: block1's
three poolings against block1/mean on short clips. Correctness is asserted (the sweep's tap of the
single configuration equals it bit for bit); times never are.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from audiosep_kit.model import LAYERS, EncoderConfig
from audiosep_kit.runtime import SWEEP_POOLINGS, FeatureExtractor, SweepExtractor, make_backend


def test_sweep_cost(benchmark, bench_mode, bench_weights, bench_inputs):
    layers = LAYERS[: LAYERS.index(bench_mode.layer) + 1] if bench_mode.quick else LAYERS
    taps = [(layer, pooling) for layer in layers for pooling in SWEEP_POOLINGS]
    config = EncoderConfig(layer=layers[-1], pooling="mean")
    single = FeatureExtractor(make_backend("eager", bench_weights, config), bench_weights, config)
    sweep = SweepExtractor.from_weights(bench_weights)
    waves = list(bench_inputs(8, 5.0))
    single_seconds: list[float] = []
    reference: list[np.ndarray] = []

    def time_single() -> tuple[tuple, dict]:
        start = time.perf_counter()
        reference[:] = single.embed_waves(waves)
        single_seconds.append(time.perf_counter() - start)
        return (), {}

    sweep_seconds: list[float] = []

    def run_sweep() -> dict:
        start = time.perf_counter()
        out = sweep.embed_sweep(waves, taps)
        sweep_seconds.append(time.perf_counter() - start)
        return out

    benchmark.group = "sweep versus one configuration, 8 clips"
    got = benchmark.pedantic(
        run_sweep, setup=time_single, rounds=bench_mode.rounds, warmup_rounds=bench_mode.warmup_rounds
    )
    assert np.array_equal(got[(config.layer, config.pooling)], np.stack(reference))
    assert all(got[tap].shape[0] == len(waves) and np.all(np.isfinite(got[tap])) for tap in taps)
    timed = slice(0 if benchmark.disabled else bench_mode.warmup_rounds, None)
    single_median = statistics.median(single_seconds[timed])
    sweep_median = statistics.median(sweep_seconds[timed])
    benchmark.extra_info.update(
        taps=len(taps),
        single=f"{config.layer}/{config.pooling}",
        clip_samples=int(waves[0].shape[0]),
        single_median_s=single_median,
        sweep_median_s=sweep_median,
        sweep_over_single=sweep_median / single_median,
        weights="random:0 (random weights)",
    )
