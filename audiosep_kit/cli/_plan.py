"""The plan ``audiosep-extract --dry-run`` prints: inputs, audio, the rows a rerun would run, shards,
peak memory and, timed on the first of those rows, an estimated time.

Why a plan and not only a count: at dataset scale the questions before a run are how long, how much
memory, and (for a store that already exists) how much is left. The rows come from the store's own
rules (``features.plan_rows``), the time from the extractor the run would build, timed on its own inputs
(``bench.calibrate``); ``build=None`` (``--no-calibrate``) loads no model and estimates no time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click
import soundfile as sf
from tqdm import tqdm

from audiosep_kit.audio import AudioSegment, SkippedFile
from audiosep_kit.bench import calibrate, time_calls
from audiosep_kit.features import plan_rows
from audiosep_kit.runtime import FeatureExtractor, estimate_peak_bytes

__all__ = ["extraction_plan", "plan_line"]


def _durations(paths: Sequence[Path]) -> tuple[list[float | None], list[int]]:
    """Seconds and sample rate of each input from its header (None and 0 where soundfile cannot read it)."""
    seconds: list[float | None] = []
    rates: list[int] = []
    for path in paths:
        try:
            info = sf.info(str(path))
        except Exception:  # the real run lists it as a failure; a dry run only counts it
            seconds.append(None)
            rates.append(0)
            continue
        seconds.append(info.frames / info.samplerate)
        rates.append(info.samplerate)
    return seconds, rates


def _inputs_report(
    paths: Sequence[Path], skipped: Sequence[SkippedFile], window_seconds: float
) -> tuple[dict, list[float | None]]:
    """Inputs, their audio and the peak memory estimate for the longest (what every dry run says), and
    each input's seconds."""
    seconds, rates = _durations(paths)
    known = [(s, r) for s, r in zip(seconds, rates, strict=True) if s is not None]
    longest, rate = max(known, default=(0.0, 32_000))
    total = sum(s for s, _ in known)
    return {
        "dry_run": True,
        "inputs": len(paths),
        "skipped": len(skipped),
        "unreadable_by_soundfile": len(paths) - len(known),
        "total_seconds": round(total, 3),
        "total_hours": round(total / 3600, 4),
        "longest_seconds": round(longest, 3),
        "window_seconds": window_seconds,
        "estimated_peak_gb": round(estimate_peak_bytes(window_seconds, longest, rate) / 1e9, 2),
        "estimate": "eager fp32 on CPU; longer clips than one window run in exact windows",
    }, seconds


def _timing(
    extractor: FeatureExtractor,
    sources: list[AudioSegment],
    build_s: float,
    audio_s: float,
    decoders: int,
    max_seconds: float,
) -> dict:
    """The calibration of ``extractor`` on the first ``sources`` and the estimate it gives."""
    result = calibrate(extractor, sources, max_seconds=max_seconds)
    executed = extractor.backend.executed()
    return {
        "calibration": {
            **result.describe(),
            "backend": extractor.backend.name,
            "precision": extractor.backend.precision,
            "device": executed.get("device", "cpu"),
            "batch_size": extractor.batch_size,
            "weights": extractor.weights.source,
            "random_weights": extractor.weights.is_random,
            "build_seconds": round(build_s, 3),
        },
        **result.estimate(audio_s, decoders),
    }


def extraction_plan(
    paths: Sequence[Path],
    skipped: Sequence[SkippedFile],
    out: Path,
    *,
    chunk_size: int,
    window_seconds: float,
    max_seconds: float,
    decoding: dict,
    overwrite: bool = False,
    retry_failed: bool = False,
    verify_content: bool = False,
    build: Callable[[], FeatureExtractor] | None = None,
) -> dict:
    """The dry run's report (one JSON-able dict); writes nothing to ``out``.

    ``decoding`` is the run's ``extract_to_store`` decoding arguments (workers, processes). With ``build``
    the extractor is built first, as the run does, so a store of another configuration is refused here too.
    """
    report, seconds = _inputs_report(paths, skipped, window_seconds)
    extractor, build_s = None, 0.0
    if build is not None:
        built: list[FeatureExtractor] = []
        try:
            build_s = time_calls(lambda: built.append(build()), warmup=0, repeats=1)[0]
        except click.UsageError as exc:  # no checkpoint: the estimate needs the model, the rest of the plan not
            raise click.UsageError(f"{exc.message} Or plan without a time estimate: --no-calibrate.") from exc
        extractor = built[0]
    rows = plan_rows(
        paths,
        out,
        chunk_size=chunk_size,
        overwrite=overwrite,
        retry_failed=retry_failed,
        verify_content=verify_content,
        extractor=extractor,
    )
    audio_s = sum(s for s in (seconds[r] for r in rows.rows) if s is not None)
    decoders = decoding["workers"]
    report.update(
        out=str(out),
        **rows.describe(),
        seconds_to_run=round(audio_s, 3),
        decoding=f"{decoders} {'worker processes' if decoding['processes'] else 'threads'}",
        calibration=None,
        estimated_seconds=None,
        estimated_bound=None,
    )
    if extractor is not None and rows.rows:
        sources = [AudioSegment(paths[r]) for r in rows.rows]
        report.update(_timing(extractor, sources, build_s, audio_s, decoders, max_seconds))
    elif extractor is not None:
        report.update(estimated_seconds=0.0, estimated_bound="nothing to run")
    return report


def _rows_text(report: dict) -> str:
    where = {"new": "a new store", "overwrite": "the store, overwritten,", "resume": "a rerun of the store"}
    text = f"{where[report['store']]} {report['out']} runs {report['rows_to_run']} rows"
    if report["store"] == "resume":
        parts = (f"{report[f'rows_{k}']} {k}" for k in ("new", "retried", "changed"))
        text += f" ({', '.join(parts)}; {report['rows_kept']} kept)"
    shards = report["shards"]
    return f"{text} in {shards} shard{'' if shards == 1 else 's'} of <= {report['chunk_size']} files"


def _time_text(report: dict) -> str:
    seconds, calibration = report["estimated_seconds"], report["calibration"]
    if seconds is None:
        return "no time estimate (--no-calibrate)"
    if calibration is None:
        return "nothing to extract"
    weights = f"{calibration['weights']} weights" + (" (RANDOM)" if calibration["random_weights"] else "")
    return (
        f"estimated {tqdm.format_interval(seconds)} ({seconds:g} s), bound by {report['estimated_bound']}: "
        f"model {calibration['model_audio_seconds_per_second']:g} audio s/s ({calibration['backend']} "
        f"{calibration['precision']} on {calibration['device']}, batch {calibration['batch_size']}, {weights}), "
        f"decoding {report['decoding_audio_seconds_per_second']:g} audio s/s ({report['decoding']}); "
        f"timed on {calibration['model_audio_s']:g} s of the inputs' audio"
    )


def plan_line(report: dict) -> str:
    """The plan in one human line (stderr), beside the JSON report (stdout)."""
    skipped = f" ({report['skipped']} skipped)" if report["skipped"] else ""
    return (
        f"plan: {report['inputs']} files{skipped}, {report['total_hours']:g} h of audio; {_rows_text(report)} "
        f"({report['seconds_to_run']:g} s of audio); peak ~{report['estimated_peak_gb']:g} GB; {_time_text(report)}"
    )
