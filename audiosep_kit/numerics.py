"""The one numerics table: every precision a backend may run, and how far it may stray from eager fp32.

Parity (``audiosep-export parity``), export verification, benchmarks and the conformance tests all read
:data:`PRECISIONS`; a backend declares which of these names it offers, so a new precision is added here
once and every check learns it.

* ``fp32`` must satisfy ``max|got - ref| <= atol + rtol * max|ref|`` with ``rtol = 1e-4``,
  ``atol = 1e-5``: the error is measured against the output *scale*, because near-zero features make
  elementwise relative error meaningless. The golden README measured legitimate float32 variation
  (threads, ISA, FFT vs conv STFT, float64) at rel <= 5e-6 and every known bug at rel >= 0.03, so this
  bound separates them.
* reduced precisions (``fp16``, ``bf16``: blocks reduced, front end in float32) must keep the cosine of
  every output row to the reference >= 0.999 (their absolute error is reported, not bounded). Measured:
  onnx fp16 0.9999997, fast bf16 0.99999 on real clips.
* ``int8`` is a placeholder for the quantised path (issue 13): its floor is set, no backend offers it yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError

__all__ = ["Tolerance", "Precision", "PRECISIONS", "tolerance_for", "Comparison", "compare"]


@dataclass(frozen=True)
class Tolerance:
    """Bound on a deviation from the reference; ``None`` fields are not checked."""

    rtol: float | None = None
    atol: float | None = None
    min_cosine: float | None = None

    def __post_init__(self) -> None:
        if (self.rtol is None) != (self.atol is None):
            raise ConfigError(f"rtol and atol go together; got rtol={self.rtol!r}, atol={self.atol!r}.")
        if self.rtol is None and self.min_cosine is None:
            raise ConfigError("a Tolerance must bound something: give rtol/atol or min_cosine.")


@dataclass(frozen=True)
class Precision:
    """One entry of the table: its name, its tolerance against eager fp32, and what it means."""

    name: str
    tolerance: Tolerance
    description: str
    placeholder: bool = False  # True: named and bounded, but no backend implements it yet


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", Tolerance(rtol=1e-4, atol=1e-5), "float32 end to end"),
        Precision("fp16", Tolerance(min_cosine=0.999), "blocks in float16, front end and pooling in float32"),
        Precision("bf16", Tolerance(min_cosine=0.999), "blocks in bfloat16, front end and pooling in float32"),
        Precision("int8", Tolerance(min_cosine=0.999), "int8 convolutions (planned, issue 13)", placeholder=True),
    )
}


def tolerance_for(precision: str) -> Tolerance:
    """The documented tolerance of ``precision``; unknown names raise listing the known ones."""
    return PRECISIONS[check_choice("precision", precision, PRECISIONS)].tolerance


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
        if tol.rtol is not None and tol.atol is not None:
            ok &= self.max_abs <= tol.atol + tol.rtol * self.scale
        if tol.min_cosine is not None:
            ok &= self.min_cosine >= tol.min_cosine
        return bool(ok)


def compare(got: np.ndarray, ref: np.ndarray) -> Comparison:
    """Compare output ``got`` with reference ``ref`` (both (B, ...)), in float64."""
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
