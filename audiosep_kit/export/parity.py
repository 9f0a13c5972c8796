"""Parity across backends: the same clips through every engine, compared with eager, with tolerances.

The tolerances are a contract, not a hope (tests and ``audiosep-export parity`` apply these constants):

* ``fp32`` backends (compile, onnx, aoti in float32) must satisfy
  ``max|got - eager| <= atol + rtol * max|eager|`` with ``rtol = 1e-4``, ``atol = 1e-5``: the error is
  measured against the output *scale*, because near-zero features make elementwise relative error
  meaningless. The golden README (§5) measured legitimate float32 variation (threads, ISA, FFT vs conv
  STFT, float64) at rel <= 5e-6 and every known bug at rel >= 0.03, so this bound separates them.
* reduced-precision variants (``fp16``: blocks in half, front end in float32) must keep the cosine of
  every output row to eager >= 0.999; their absolute error is reported, not bounded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiosep_kit.errors import BackendUnavailableError, ConfigError

__all__ = [
    "Tolerance",
    "TOLERANCES",
    "Comparison",
    "compare",
    "tolerance_for",
    "BackendParity",
    "run_parity",
    "golden_clips",
    "GOLDEN_CLIP_KEYS",
]

GOLDEN_CLIP_KEYS = ("a", "b", "c", "d", "e")


@dataclass(frozen=True)
class Tolerance:
    """Bound on a backend's deviation from eager; ``None`` fields are not checked."""

    rtol: float | None = None
    atol: float | None = None
    min_cosine: float | None = None

    def __post_init__(self) -> None:
        if (self.rtol is None) != (self.atol is None):
            raise ConfigError(f"rtol and atol go together; got rtol={self.rtol!r}, atol={self.atol!r}.")
        if self.rtol is None and self.min_cosine is None:
            raise ConfigError("a Tolerance must bound something: give rtol/atol or min_cosine.")


#: precision -> tolerance against eager float32 (see the module docstring for where they come from).
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rtol=1e-4, atol=1e-5),
    "fp16": Tolerance(min_cosine=0.999),
}


def tolerance_for(precision: str) -> Tolerance:
    """The documented tolerance of ``precision``; unknown precisions raise listing the known ones."""
    if precision not in TOLERANCES:
        raise ConfigError(f"`precision` must be one of {set(TOLERANCES)}; got {precision!r}.")
    return TOLERANCES[precision]


@dataclass(frozen=True)
class Comparison:
    """How far ``got`` is from ``ref``; rows are compared one by one (cosine, argmax)."""

    shape_ref: tuple[int, ...]
    shape_got: tuple[int, ...]
    max_abs: float
    max_rel: float  # max_abs / max|ref|: the error relative to the output scale
    min_cosine: float
    argmax_agreement: float  # fraction of rows whose argmax (over the flattened row) agrees
    scale: float

    def within(self, tol: Tolerance) -> bool:
        if self.shape_ref != self.shape_got:
            return False
        ok = True
        if tol.rtol is not None:
            ok &= self.max_abs <= tol.atol + tol.rtol * self.scale
        if tol.min_cosine is not None:
            ok &= self.min_cosine >= tol.min_cosine
        return bool(ok)


def compare(got: np.ndarray, ref: np.ndarray) -> Comparison:
    """Compare backend output ``got`` with reference ``ref`` (both (B, ...)), in float64."""
    got64, ref64 = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    shape_ref, shape_got = tuple(ref64.shape), tuple(got64.shape)
    if shape_ref != shape_got:
        nan = float("nan")
        return Comparison(shape_ref, shape_got, nan, nan, nan, 0.0, nan)
    scale = float(np.max(np.abs(ref64))) if ref64.size else 0.0
    max_abs = float(np.max(np.abs(got64 - ref64))) if ref64.size else 0.0
    g, r = got64.reshape(len(got64), -1), ref64.reshape(len(ref64), -1)
    norms = np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1)
    cos = np.where(norms > 0, np.sum(g * r, axis=1) / np.maximum(norms, 1e-300), 1.0)
    agree = float(np.mean(np.argmax(g, axis=1) == np.argmax(r, axis=1)))
    return Comparison(shape_ref, shape_got, max_abs, max_abs / max(scale, 1e-30), float(np.min(cos)), agree, scale)


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
    from audiosep_kit.runtime.extractor import run_grouped

    names = list(clips)
    rows = run_grouped(backend, [clips[n] for n in names], batch_size)
    return dict(zip(names, rows))


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

    The reference is eager float32 on CPU whatever ``device`` is (on CUDA, TF32 and cuDNN choices are
    part of what is being measured). A backend that cannot be built here (BackendUnavailableError) is
    reported as skipped with the reason, never replaced by another one. Returns the eager features
    and one BackendParity per backend.
    """
    from audiosep_kit.runtime.backends import make_backend

    options = options or {}
    reference = _run_clips(make_backend("eager", weights, config, "cpu"), clips, batch_size)
    results = []
    for name in backends:
        if name == "eager":
            continue
        opts = dict(options.get(name, {}))
        start = time.perf_counter()
        try:
            backend = make_backend(name, weights, config, device, **opts)
        except BackendUnavailableError as exc:
            results.append(BackendParity(name, skipped=str(exc)))
            continue
        got = _run_clips(backend, clips, batch_size)
        tol = tolerance_for(backend.precision)
        entry = BackendParity(name, backend.precision, backend.executed())
        for clip, ref in reference.items():
            cmp = compare(got[clip][None], ref[None])
            entry.clips[clip] = {**asdict(cmp), "passed": cmp.within(tol)}
        entry.seconds = time.perf_counter() - start
        results.append(entry)
    return reference, results


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
