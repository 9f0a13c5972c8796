"""The load-time check that an artifact computes what the requested weights and options compute.

Why: an artifact's metadata (``weights_sha256``, encoder options) is a claim written next to the
weights, and text can be edited: an ``.onnx`` whose ``metadata_props`` were changed to name other
weights would pass :func:`~audiosep_kit.export._metadata.check_metadata` and give plausible but
wrong features. So before a backend hands out any feature, it runs the loaded artifact on one probe
clip and compares it with eager on the requested weights, under the precision's tolerance from the
one numerics table (fp32: ``max|d| <= 1e-5 + 1e-4 * max|eager|``; fp16 / bf16: cosine >= 0.999).

The probe is one case of the export sweep (:func:`~audiosep_kit.export._pipeline.sweep_input` and
:func:`~audiosep_kit.export._pipeline.verify_runner`, so the same seeded chirp-plus-noise and the same
comparison code): 0.5 s at 32 kHz, batch 1. Why that length: 51 STFT frames, at least the 32 that
``pad_to_32=False`` needs and not a multiple of 32, so an artifact built with the other ``pad_to_32``
gives other numbers; a different pooling or layer shows as a shape mismatch; other weights move the
output by far more than the fp32 bound (random:0 vs random:1: max rel ~1.5, cosine ~0).

Cost: building the eager reference plus one eager and one artifact pass, measured at about 1.2-1.4 s
of CPU time per backend construction on two (shared) cores, against ~0.2 s for the ORT session alone.
Cached artifacts are probed as well: the cache folder is as writable as any other file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audiosep_kit.errors import ArtifactMismatchError, AudioSepKitError
from audiosep_kit.export._pipeline import verify_runner
from audiosep_kit.model import SAMPLE_RATE, EncoderConfig, LoadedWeights, build_encoder, run_encoder
from audiosep_kit.numerics import tolerance_for

#: (samples, batch) of the probe clip: 0.5 s, one row (see the module docstring for why).
PROBE_LENGTH = SAMPLE_RATE // 2
PROBE_BATCH = 1


def probe_artifact(
    run: Callable[[np.ndarray], np.ndarray],
    weights: LoadedWeights,
    config: EncoderConfig,
    *,
    precision: str,
    artifact: str | Path,
    kind: str,
) -> dict:
    """Compare ``run`` (the loaded artifact) with eager CPU float32 on the probe clip.

    Returns a small record for ``executed()`` (what was compared, how close, how long it took).
    Raises ArtifactMismatchError naming the file, how far it was and how to fix it, when the
    artifact's numbers are not those of ``weights`` + ``config`` at ``precision``.
    """
    start = time.perf_counter()
    reference = build_encoder(weights, config)
    report = verify_runner(
        _refusing(run, Path(artifact), kind),
        lambda x: run_encoder(reference, x),
        tolerance_for(precision),
        lengths=(PROBE_LENGTH,),
        batch_sizes=(PROBE_BATCH,),
    )
    case = report["cases"][0]
    if report["status"] != "passed":
        raise ArtifactMismatchError(_mismatch_message(case, weights, precision, Path(artifact), kind))
    return {
        "probe": f"{PROBE_BATCH} x {PROBE_LENGTH} samples (export sweep input) vs eager fp32 on CPU",
        "passed": True,
        "max_rel": case["max_rel"],
        "min_cosine": case["min_cosine"],
        "seconds": round(time.perf_counter() - start, 4),
    }


def _refusing(run: Callable[[np.ndarray], np.ndarray], path: Path, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """``run``, with a crash on the probe clip (e.g. an artifact built with other shape arithmetic)
    turned into ArtifactMismatchError; the toolkit's own errors (a device that is gone) pass as they are."""

    def probe(x: np.ndarray) -> np.ndarray:
        try:
            return run(x)
        except AudioSepKitError:
            raise
        except Exception as exc:  # ORT's and AOTInductor's runtime errors have no common base
            lines = str(exc).strip().splitlines() or ["no message"]
            raise ArtifactMismatchError(
                f"{path} fails on a {x.shape[1]}-sample probe clip that the requested weights and options run "
                f"({type(exc).__name__}: {lines[0]}), so it was built from other options than requested. "
                f"Re-export it with `audiosep-export {kind} --checkpoint CKPT -o {path.name}`."
            ) from exc

    return probe


def _mismatch_message(case: dict, weights: LoadedWeights, precision: str, path: Path, kind: str) -> str:
    if case["shape_ref"] != case["shape_got"]:
        found = (
            f"features of shape {tuple(case['shape_got'])} where the requested options give {tuple(case['shape_ref'])}"
        )
    else:
        found = (
            f"max abs difference {case['max_abs']:.3g} (max rel {case['max_rel']:.3g}, min cosine "
            f"{case['min_cosine']:.6f}; {precision} allows {tolerance_for(precision)})"
        )
    return (
        f"{path} does not compute what its metadata claims: on a {PROBE_LENGTH}-sample probe clip it gives "
        f"{found} against eager with the requested weights ({weights.source}, sha256 {weights.sha256[:16]}...) and "
        "encoder options, so it was built from other weights or options (or its metadata was edited). Re-export it "
        "from these weights "
        f"with `audiosep-export {kind} --checkpoint CKPT -o {path.name}`, or pass the --checkpoint and options it "
        "was really exported with."
    )
