"""Fixtures of the latency benchmarks: run mode, weights, inputs, backends built once per session.

Two modes, because ``make test`` collects this folder too (pyproject testpaths):

* **full** (``make bench``, i.e. ``--benchmark-only``, or ``AUDIOSEP_BENCH=full``): the real shapes
  (1 s and 5 s clips), several timed rounds after warm-up, every backend including compile and aoti
  (their Inductor / C++ compilation takes minutes on two cores and is paid once per session).
* **quick** (everything else, or ``AUDIOSEP_BENCH=quick``): short clips, one round and the block1 tap
  (the front end and one block, mean-pooled), to prove every benchmark still runs and returns correct
  features in seconds; compile and aoti are skipped with the reason. Why block1: the onnx variants
  export (and quick-verify) their artifact through the export cache, which costs ~35 s per
  precision for the whole encoder on two cores and a fraction of that for block1; every backend's
  whole-encoder correctness is covered by the conformance suite (tests/runtime/backends).

Artifacts (ONNX export, Inductor cache) go under the session's tmp folder, never the user's cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

WEIGHTS = "random:0"
_MODE_ENV = "AUDIOSEP_BENCH"
_SLOW_COMPILERS = ("compile", "aoti")


@dataclass(frozen=True)
class BenchMode:
    """How hard to measure: clip lengths used for the nominal 1 s / 5 s, rounds, warm-up rounds, and
    the encoder layer that is measured."""

    name: str
    samples: dict[float, int]
    rounds: int
    warmup_rounds: int
    layer: str = "center"

    @property
    def quick(self) -> bool:
        return self.name == "quick"


FULL = BenchMode("full", {1.0: 32_000, 5.0: 160_000}, rounds=5, warmup_rounds=1)
QUICK = BenchMode("quick", {1.0: 4_000, 5.0: 8_000}, rounds=1, warmup_rounds=0, layer="block1")


@pytest.fixture(scope="session")
def bench_mode(pytestconfig: pytest.Config) -> BenchMode:
    """full under ``--benchmark-only`` or AUDIOSEP_BENCH=full; quick otherwise (see module docstring)."""
    forced = os.environ.get(_MODE_ENV, "").lower()
    if forced not in ("", "full", "quick"):
        raise pytest.UsageError(f"{_MODE_ENV} must be 'full' or 'quick'; got {forced!r}.")
    if forced:
        return FULL if forced == "full" else QUICK
    return FULL if pytestconfig.getoption("benchmark_only", default=False) else QUICK


@pytest.fixture(scope="session")
def bench_artifacts(tmp_path_factory):
    """Point the ONNX/AOTI export cache and Inductor's cache under the session tmp folder."""
    root = tmp_path_factory.mktemp("bench_artifacts")
    saved = {k: os.environ.get(k) for k in ("AUDIOSEP_CACHE", "TORCHINDUCTOR_CACHE_DIR")}
    os.environ["AUDIOSEP_CACHE"] = str(root / "audiosep")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(root / "inductor")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def bench_weights():
    from audiosep_kit.model import load_weights

    return load_weights(WEIGHTS)


@pytest.fixture(scope="session")
def bench_config(bench_mode):
    """The default encoder options (full mode) or the same at the mode's shallower tap (quick mode)."""
    from audiosep_kit.model import EncoderConfig

    return EncoderConfig(layer=bench_mode.layer)


@pytest.fixture(scope="session")
def bench_inputs(bench_mode):
    """``get(batch, duration)`` -> (batch, samples) float32 noise + tones, made once per shape."""
    from audiosep_kit.bench import synthetic_clips

    made: dict[tuple[int, int], np.ndarray] = {}

    def get(batch: int, duration: float) -> np.ndarray:
        key = (batch, bench_mode.samples[duration])
        if key not in made:
            made[key] = synthetic_clips(*key)
        return made[key]

    return get


@pytest.fixture(scope="session")
def bench_backend(bench_mode, bench_weights, bench_config, bench_artifacts):
    """``get('name:precision')`` -> (backend, cold seconds), built once; skips with the reason if unusable."""
    from audiosep_kit.bench import BackendSpec, build_backends

    built: dict[str, tuple] = {}

    def get(label: str):
        spec = BackendSpec.parse(label)
        if bench_mode.quick and spec.name in _SLOW_COMPILERS:
            pytest.skip(
                f"quick mode: {spec.name} compiles the encoder with Inductor for minutes on this machine; "
                "run `make bench` (pytest benchmarks --benchmark-only) to measure it"
            )
        if label not in built:
            backends, skipped = build_backends([spec], bench_weights, bench_config, "cpu")
            if skipped:
                pytest.skip(f"{label} is not available here: {skipped[spec.label]}")
            built[label] = backends[spec.label]
        return built[label]

    return get


@pytest.fixture(scope="session")
def eager_reference(bench_backend, bench_inputs):
    """``ref(batch, duration)`` -> eager fp32 features of the same inputs (computed once per shape)."""
    done: dict[tuple[int, float], np.ndarray] = {}

    def ref(batch: int, duration: float) -> np.ndarray:
        if (batch, duration) not in done:
            backend, _ = bench_backend("eager:fp32")
            done[batch, duration] = backend.run(bench_inputs(batch, duration))
        return done[batch, duration]

    return ref
