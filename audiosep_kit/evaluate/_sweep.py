"""Ablation sweeps: every (FiLM, layer, pooling) point of a grid, from one encoder pass per FiLM mode,
evaluated with one protocol, one set of seeds and heads.

Why: "which layer, which pooling" is the first question asked of a frozen encoder, and answering it
point by point would run the encoder once per point. Here the points of one FiLM mode come from one
pass per batch (runtime.SweepExtractor; a FiLM mode changes the forward, so each mode is its own
pass), and each point's features land in the cache entry its single configuration uses
(features.cached_sweep): a later single run is a cache hit, a rerun extracts nothing. Every point
then gets the normal run folder (``<out>/<point>/``: results.json, results.csv, summary.md,
confusion PNGs) and the sweep a summary (``_sweep_report``: sweep.json, sweep.csv, sweep.md and
an accuracy-versus-layer PNG per head).

Honest numbers: every point is scored on the test split, so choosing the best point by those scores
would select on the test set; the summary carries each point's validation score (its heads' own
selection score) for choosing, and says so. Eager only (see runtime._sweep); clips of any length
(longer ones are tiled exactly, per layer, one pass per window).

Cost: the sweep's extraction time per FiLM mode is measured. With ``baseline=True`` one single
configuration (the deepest swept layer, the first pooling and FiLM mode) is extracted too, on the
same clips in the same process, into a scratch store outside the cache, and the summary records
both times and their ratio.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate._preflight import check_examples
from audiosep_kit.evaluate._protocols import RunResult, resolve_protocol
from audiosep_kit.evaluate._runner import (
    Evaluation,
    ExtractionConfig,
    RunConfig,
    build_extractor,
    evaluate_features,
    extractor_provenance,
    refuse_failures,
)
from audiosep_kit.evaluate._sweep_report import build_sweep_summary, write_sweep_dir
from audiosep_kit.evaluate.tasks import load_examples, resolve_task
from audiosep_kit.features import CachedFeatures, cached_sweep, default_cache_dir, extract_to_store
from audiosep_kit.model import FILM_MODES, LAYERS, load_weights
from audiosep_kit.runtime import SWEEP_POOLINGS, SweepExtractor, Tap, check_sweep_backend

_log = logging.getLogger(__name__)
#: The sweep's axes, by the names ``--sweep AXIS=...`` uses, with the values each takes.
AXES: dict[str, tuple[str, ...]] = {"film": FILM_MODES, "layer": LAYERS, "pooling": SWEEP_POOLINGS}


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep; ``name`` is its run folder's name."""

    film: str
    layer: str
    pooling: str

    @property
    def tap(self) -> Tap:
        return (self.layer, self.pooling)

    @property
    def name(self) -> str:
        return f"film-{self.film}_{self.layer}_{self.pooling}"


@dataclass(frozen=True)
class SweepAxes:
    """The grid: FiLM modes x layers x poolings. Layers are kept in network order (the plots' x axis)."""

    films: tuple[str, ...] = ("none",)
    layers: tuple[str, ...] = ("center",)
    poolings: tuple[str, ...] = ("mean",)

    def __post_init__(self) -> None:
        for axis, values in zip(AXES, (self.films, self.layers, self.poolings), strict=True):
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"sweep axis {axis!r} needs distinct values of {list(AXES[axis])}; got {values!r}.")
            for value in values:
                check_choice(f"sweep {axis}", value, AXES[axis])
        object.__setattr__(self, "layers", tuple(sorted(self.layers, key=LAYERS.index)))

    @property
    def taps(self) -> list[Tap]:
        return list(product(self.layers, self.poolings))

    def points(self) -> list[SweepPoint]:
        return [SweepPoint(f, layer, p) for f, layer, p in product(self.films, self.layers, self.poolings)]


@dataclass(frozen=True)
class SweepEvaluation:
    """The sweep summary (sweep.json's document), each point's Evaluation, and the files written."""

    summary: dict
    evaluations: dict[SweepPoint, Evaluation]
    paths: dict[str, Path]


def _check_extraction(extraction: ExtractionConfig, axes: SweepAxes) -> None:
    check_sweep_backend(extraction.backend)
    if extraction.model_path:
        raise ConfigError(
            f"a sweep builds its encoder from the weights and reads several taps of it; model_path="
            f"{extraction.model_path!r} is an artifact with one tap baked in. Drop model_path."
        )
    if "query" in axes.films and extraction.condition is None:
        raise ConfigError("the sweep's film='query' points need a 512-d condition vector: pass condition=FILE.")


def _sweep_features(
    extraction: ExtractionConfig, axes: SweepAxes, sources, cache_dir, show_progress: bool | None
) -> tuple[dict[SweepPoint, tuple[dict, CachedFeatures]], dict]:
    """Each point's (description, cached features), and the extraction's cost per FiLM mode."""
    weights = load_weights(extraction.checkpoint, trust_pickle=extraction.trust_checkpoint)
    out: dict[SweepPoint, tuple[dict, CachedFeatures]] = {}
    films: dict[str, dict] = {}
    for film in axes.films:
        sweep = SweepExtractor.from_weights(
            weights, extraction.backend, extraction.device, film=film, pad_to_32=extraction.pad_to_32,
            condition=extraction.condition if film == "query" else None, precision=extraction.precision,
        )  # fmt: skip
        started = time.perf_counter()
        cached = cached_sweep(sweep, axes.taps, sources, cache_dir, progress=show_progress)
        seconds = time.perf_counter() - started
        extracted = sum(c.extracted for c in cached.values())
        films[film] = {"seconds": round(seconds, 3), "taps": len(cached), "taps_extracted": extracted}
        _log.info("sweep: FiLM %s, %d taps (%d extracted now) in %.1f s", film, len(cached), extracted, seconds)
        for tap, features in cached.items():
            out[SweepPoint(film, *tap)] = (sweep.describe_tap(tap), features)
    return out, {"clips": len(sources), "films": films}


def _time_baseline(extraction: ExtractionConfig, axes: SweepAxes, sources, show_progress: bool | None) -> dict:
    """Extract one single configuration of the sweep's deepest layer into a scratch store, timed."""
    point = SweepPoint(axes.films[0], axes.layers[-1], axes.poolings[0])
    single = replace(
        extraction, film=point.film, layer=point.layer, pooling=point.pooling,
        condition=extraction.condition if point.film == "query" else None,
    )  # fmt: skip
    extractor = build_extractor(single)
    with tempfile.TemporaryDirectory(prefix="audiosep-sweep-baseline-") as scratch:
        _log.info("sweep: timing the single configuration %s on the same %d clips", point.name, len(sources))
        started = time.perf_counter()
        extract_to_store(extractor, list(sources), Path(scratch) / "store", progress=show_progress)
        seconds = time.perf_counter() - started
    return {"film": point.film, "layer": point.layer, "pooling": point.pooling, "seconds": round(seconds, 3)}


def _cost(cost: dict, baseline: dict | None) -> dict:
    """The cost block: per-FiLM times, the single configuration's, and their ratios where they mean one
    (only when the sweep extracted every tap now: a cache hit costs nothing)."""
    films = cost["films"]
    total = sum(f["seconds"] for f in films.values())
    fresh = all(f["taps_extracted"] == f["taps"] for f in films.values())
    single = baseline["seconds"] if baseline is not None else 0.0
    measured = fresh and single > 0
    note = None
    if baseline is not None and not fresh:
        note = "the sweep was served (partly) from the cache, so its time is no extraction time; rerun on a fresh cache"
    for film in films.values():
        film["ratio_to_baseline"] = round(film["seconds"] / single, 3) if measured else None
    ratio = round(total / single, 3) if measured else None
    return {**cost, "sweep_seconds": round(total, 3), "baseline": baseline, "ratio": ratio, "ratio_note": note}


def evaluate_sweep(
    task_name: str,
    extraction: ExtractionConfig,
    axes: SweepAxes,
    config: RunConfig,
    *,
    data_root: str | Path | None = None,
    task_root: str | Path | None = None,
    allow_missing: bool = False,
    cache_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[RunResult], None] | None = None,
    show_progress: bool | None = None,
    baseline: bool = False,
) -> SweepEvaluation:
    """Extract every point of ``axes`` (one pass per FiLM mode), evaluate each as ``evaluate_extracted``
    would, and summarise (see the module docstring). ``extraction``'s layer, pooling and film are
    replaced by the axes'; ``show_progress`` is the extraction bars' choice (None: on a terminal)."""
    _check_extraction(extraction, axes)
    task = resolve_task(task_name, data_root, task_root=task_root)
    examples = load_examples(task, data_root, task_root=task_root, allow_missing=allow_missing)
    protocol = resolve_protocol(config.protocol, task)
    notes = check_examples(
        task, examples, protocol, options=config.options, seeds=config.seeds, allow_missing=allow_missing
    )
    sources = [e.segment for e in examples]
    features, cost = _sweep_features(extraction, axes, sources, cache_dir or default_cache_dir(), show_progress)
    timed = _time_baseline(extraction, axes, sources, show_progress) if baseline else None
    evaluations: dict[SweepPoint, Evaluation] = {}
    for point in axes.points():
        description, cached = features[point]
        refuse_failures(cached)
        provenance = {**extractor_provenance(description, cached), "data_notes": notes}
        run_dir = None if out_dir is None else Path(out_dir) / point.name
        _log.info("sweep: evaluating %s", point.name)
        evaluations[point] = evaluate_features(
            cached.features, examples, task, config, provenance=provenance, out_dir=run_dir, progress=progress
        )
    summary = build_sweep_summary(
        {point.name: (point, evaluation.report) for point, evaluation in evaluations.items()},
        axes={"film": list(axes.films), "layer": list(axes.layers), "pooling": list(axes.poolings)},
        cost=_cost(cost, timed),
        command=config.command,
    )
    paths = write_sweep_dir(summary, out_dir) if out_dir is not None else {}
    return SweepEvaluation(summary, evaluations, paths)
