"""The one verified-export pipeline (temporary file -> build -> verify -> publish) and its sweep.

Verification of an exported artifact against eager over a sweep of lengths and batch sizes.

Why a sweep: an export is traced at one example shape, and shape arithmetic that depends on the
length (the pad to a multiple of 32, pooling floors) can silently bake that example in (ENCODER_SPEC
§6.1). Checking several lengths, including the 1025-sample minimum and lengths whose frame count is
not a multiple of 32, and batch sizes 1 and 3, catches that. Results go to ``<name>.verify.json``.

Why publish-by-rename: an artifact is written under a temporary name and only renamed to its final
name once it passed, so a failed export can never be mistaken for a good one. A failure is kept as
``<stem>.failed<suffix>`` (with ``<stem>.failed.verify.json``) for inspection and raises.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiosep_kit._validation import atomic_write_text, check_choice
from audiosep_kit.errors import VerificationError
from audiosep_kit.export._metadata import FORMAT_VERSION
from audiosep_kit.model._config import SAMPLE_RATE
from audiosep_kit.numerics import Tolerance, compare

#: Lengths in samples at 32 kHz: 1025 (minimum), 0.5 s, 1 s, 3.3 s, then 5 s, 10 s, 30 s.
SWEEPS: dict[str, tuple[int, ...]] = {
    "quick": (1025, 16_000, 32_000, 105_600),
    "full": (1025, 16_000, 32_000, 105_600, 160_000, 320_000, 960_000),
}
BATCH_SIZES = (1, 3)
_log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """Where an export went, what it records, how it verified and how long each step took."""

    path: Path
    report_path: Path | None
    metadata: dict[str, str]
    report: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def sweep_lengths(sweep: str) -> tuple[int, ...]:
    return SWEEPS[check_choice("sweep", sweep, SWEEPS)]


def sweep_input(length: int, batch: int, seed: int = 0) -> np.ndarray:
    """(batch, length) float32: a different noise-plus-chirp row per batch item (reproducible)."""
    rng = np.random.default_rng(seed + 7919 * length + batch)
    t = np.arange(length) / SAMPLE_RATE
    rows = []
    for i in range(batch):
        chirp = 0.3 * np.sin(2 * np.pi * (200 + 300 * i) * t * (1 + t))
        rows.append(chirp + 0.05 * rng.standard_normal(length))
    return np.asarray(rows, dtype=np.float32)


def verify_runner(
    run: Callable[[np.ndarray], np.ndarray],
    reference: Callable[[np.ndarray], np.ndarray],
    tolerance: Tolerance,
    *,
    lengths: Sequence[int],
    batch_sizes: Sequence[int] = BATCH_SIZES,
    label: str = "export",
) -> dict:
    """Compare ``run`` with ``reference`` for every (length, batch); return the report dict.

    Each case is logged as it starts (``label`` names the artifact kind): a full sweep takes minutes.
    """
    cases: list[dict] = []
    total = len(lengths) * len(batch_sizes)
    for length in lengths:
        for batch in batch_sizes:
            _log.info(
                "%s: verify case %d/%d vs eager (%d samples = %.2f s, batch %d)",
                label, len(cases) + 1, total, length, length / SAMPLE_RATE, batch,
            )  # fmt: skip
            x = sweep_input(length, batch)
            ref = reference(x)
            start = time.perf_counter()
            got = run(x)
            seconds = time.perf_counter() - start
            cmp = compare(got, ref)
            passed = cmp.within(tolerance)
            cases.append({"length": length, "batch": batch, **asdict(cmp), "passed": passed, "run_s": seconds})
    return {
        "format_version": FORMAT_VERSION,
        "status": "passed" if all(c["passed"] for c in cases) else "failed",
        "tolerance": asdict(tolerance),
        "cases": cases,
        "worst": _worst(cases),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _worst(cases: list[dict]) -> dict:
    return {
        "max_abs": max(c["max_abs"] for c in cases),
        "max_rel": max(c["max_rel"] for c in cases),
        "min_cosine": min(c["min_cosine"] for c in cases),
        "shape_mismatches": [f"L={c['length']} B={c['batch']}" for c in cases if c["shape_ref"] != c["shape_got"]],
    }


def temporary_path(final: Path) -> Path:
    """``<stem>.tmp-<pid><suffix>`` next to ``final`` (same filesystem, so the rename is atomic)."""
    return final.with_name(f"{final.stem}.tmp-{os.getpid()}{final.suffix}")


def report_path_for(artifact: Path) -> Path:
    return artifact.with_name(f"{artifact.stem}.verify.json")


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def publish(tmp: Path, final: Path, report: dict) -> Path:
    """Rename ``tmp`` to ``final`` if ``report`` passed (or was skipped); else keep it as failed and raise.

    The report is written next to the artifact it describes, so an artifact and its verdict travel
    together; a stale report of an earlier export at ``final`` is replaced.
    """
    if report.get("status") in ("passed", "skipped"):
        os.replace(tmp, final)
        _write_json(report_path_for(final), report)
        _log.info("saved %s (verification %s)", final, report.get("status"))
        return final
    failed = final.with_name(f"{final.stem}.failed{final.suffix}")
    os.replace(tmp, failed)
    _write_json(report_path_for(failed), report)
    worst = report.get("worst", {})
    raise VerificationError(
        f"export to {final} failed verification against eager (worst: max abs {worst.get('max_abs')}, "
        f"max rel {worst.get('max_rel')}, min cosine {worst.get('min_cosine')}, shape mismatches "
        f"{worst.get('shape_mismatches')}; {report.get('reason', 'tolerance ' + str(report.get('tolerance')))}). "
        f"Kept for inspection as {failed} with {report_path_for(failed)}; nothing was written to {final}."
    )


def skipped_report(reason: str) -> dict:
    """The report of an export made with ``--no-verify`` (so no stale verdict stays next to it)."""
    return {"format_version": FORMAT_VERSION, "status": "skipped", "reason": reason, "cases": []}


def failed_report(reason: str) -> dict:
    """The report of an export that failed before the sweep (e.g. onnx.checker refused it)."""
    return {"format_version": FORMAT_VERSION, "status": "failed", "reason": reason, "cases": [], "worst": {}}


#: ``build(tmp) -> (metadata, timings)``: writes the artifact at ``tmp``; ``verify(tmp) -> report``.
Build = Callable[[Path], tuple[dict[str, str], dict[str, float]]]
Verify = Callable[[Path], dict]


def verified_export(output: Path, build: Build, verify: Verify | None) -> ExportResult:
    """Build at a temporary name, verify (or record ``--no-verify``), then publish or keep as failed.

    Any exception (including KeyboardInterrupt) removes the temporary file, so an interrupted export
    leaves nothing that could be mistaken for an artifact. Raises VerificationError when the report
    failed (the artifact is kept as ``<stem>.failed<suffix>``).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(output)
    start = time.perf_counter()
    try:
        meta, timings = build(tmp)
        verify_start = time.perf_counter()
        report = verify(tmp) if verify is not None else skipped_report("exported with --no-verify")
        timings["verify_s"] = time.perf_counter() - verify_start
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    report.update(metadata=meta, timings=dict(timings))
    path = publish(tmp, output, report)
    timings["total_s"] = time.perf_counter() - start
    return ExportResult(path, report_path_for(path), meta, report, timings)
