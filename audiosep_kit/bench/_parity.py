"""Parity across backends: the same clips through every engine, compared with eager fp32.

The tolerances are the numerics table's (``audiosep_kit.numerics.PRECISIONS``): fp32 backends are held
to ``max|got - eager| <= 1e-5 + 1e-4 * max|eager|``, reduced precisions to a per-row cosine floor.
The reference is eager float32 on CPU whatever the device is (on CUDA, TF32 and cuDNN choices are part
of what is being measured). A backend that cannot be built here is reported as skipped with the
reason, never replaced by another one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiosep_kit.bench._run import BackendSpec
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.export import sweep_input
from audiosep_kit.numerics import compare, tolerance_for
from audiosep_kit.runtime import default_precision, make_backend, run_grouped

GOLDEN_CLIP_KEYS = ("a", "b", "c", "d", "e")
#: Lengths of the synthetic clips used when none are given: the minimum, 0.5 s, an odd 1.56 s, 3.3 s.
SYNTHETIC_LENGTHS = (1025, 16_000, 50_001, 105_600)


@dataclass
class BackendParity:
    """One backend's results over all clips, against eager."""

    backend: str
    precision: str = "fp32"
    executed: dict = field(default_factory=dict)
    clips: dict[str, dict] = field(default_factory=dict)
    skipped: str | None = None  # why the backend could not run here
    seconds: float = 0.0

    @property
    def passed(self) -> bool | None:
        if self.skipped is not None:
            return None
        return all(clip["passed"] for clip in self.clips.values())

    def summary(self) -> dict:
        """Worst case over clips: max abs, max rel, min cosine, mean argmax agreement."""
        if not self.clips:
            return {}
        rows = list(self.clips.values())
        return {
            "max_abs": max(r["max_abs"] for r in rows),
            "max_rel": max(r["max_rel"] for r in rows),
            "min_cosine": min(r["min_cosine"] for r in rows),
            "argmax_agreement": float(np.mean([r["argmax_agreement"] for r in rows])),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "summary": self.summary()}


def _run_clips(backend, clips: Mapping[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    names = list(clips)
    rows = run_grouped(backend, [clips[n] for n in names], batch_size)
    return dict(zip(names, rows, strict=True))


def _one_backend(name, weights, config, device, options, clips, reference, batch_size) -> BackendParity:
    start = time.perf_counter()
    try:
        backend = make_backend(name, weights, config, device, **options)
    except BackendUnavailableError as exc:
        return BackendParity(name, options.get("precision", default_precision(name)), skipped=str(exc))
    got = _run_clips(backend, clips, batch_size)
    tol = tolerance_for(backend.precision)
    entry = BackendParity(name, backend.precision, backend.executed())
    for clip, ref in reference.items():
        cmp = compare(got[clip][None], ref[None])
        entry.clips[clip] = {**asdict(cmp), "passed": cmp.within(tol)}
    entry.seconds = time.perf_counter() - start
    return entry


def run_parity(
    weights,
    config,
    clips: Mapping[str, np.ndarray],
    backends: Sequence[str],
    *,
    device: str = "cpu",
    options: Mapping[str, dict] | None = None,
    batch_size: int = 1,
) -> tuple[dict[str, np.ndarray], list[BackendParity]]:
    """Run ``clips`` (name -> 1-D 32 kHz waveform) through eager and each of ``backends``.

    A backend is ``name`` (its default precision) or ``name:precision``; ``options[name]`` are passed
    to its factory. Returns the eager features and one BackendParity per backend (eager fp32 itself,
    the reference, is not compared).
    """
    options = options or {}
    reference = _run_clips(make_backend("eager", weights, config, "cpu"), clips, batch_size)
    results = []
    for label in backends:
        spec = BackendSpec.parse(label)
        if spec == BackendSpec("eager", "fp32"):
            continue
        opts = {**options.get(spec.name, {}), "precision": spec.precision}
        results.append(_one_backend(spec.name, weights, config, device, opts, clips, reference, batch_size))
    return reference, results


def synthetic_parity_clips(lengths: Sequence[int] = SYNTHETIC_LENGTHS) -> dict[str, np.ndarray]:
    """Deterministic chirp-plus-noise clips (the export sweep's inputs), named by their length."""
    return {f"synthetic:{n}": sweep_input(n, 1)[0] for n in lengths}


def golden_clips(golden_dir: str | Path, keys: Sequence[str] = GOLDEN_CLIP_KEYS) -> dict[str, np.ndarray]:
    """The golden inputs ``a``..``e`` (1-D float32 at 32 kHz) from ``<golden_dir>/inputs.npz``."""
    path = Path(golden_dir) / "inputs.npz"
    if not path.is_file():
        raise ConfigError(f"golden inputs not found: {path} (set --golden-dir or AUDIOSEP_GOLDEN).")
    with np.load(path) as data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise ConfigError(f"{path} lacks the golden clip(s) {missing}; it holds {sorted(data.files)}.")
        return {k: np.asarray(data[k], dtype=np.float32) for k in keys}
