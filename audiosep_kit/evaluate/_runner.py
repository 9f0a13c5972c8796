"""Task → features → protocol → report: the one place that wires an evaluation together.

Two ways in. :func:`evaluate_extracted` reads a task's examples, extracts their features through the
runtime into the content-keyed cache (a repeated run re-extracts nothing), and evaluates them.
:func:`evaluate_precomputed` evaluates a saved ``{'features', 'labels'}`` file lined up with the
task's metadata (refusing if the labels disagree), or a feature store written by ``audiosep-extract``,
matched to the task's examples by path. Both check first that the examples can run the protocol
(``check_examples``: a partial dataset is refused before anything is extracted). Both end in
:func:`evaluate_features`, which runs the protocol and writes the run folder. The CLI
(``audiosep-eval``) only parses options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.evaluate._floors import floor_scores
from audiosep_kit.evaluate._heads import HEADS, get_head_spec, takes_device
from audiosep_kit.evaluate._precomputed import PrecomputedFeatures, align_to_examples, labels_as_ids, load_precomputed
from audiosep_kit.evaluate._preflight import check_examples
from audiosep_kit.evaluate._protocols import PROTOCOL_NAMES, EvalOptions, RunResult, evaluate, resolve_protocol
from audiosep_kit.evaluate._report import build_report, write_run_dir
from audiosep_kit.evaluate._stored import is_store, match_store
from audiosep_kit.evaluate.tasks import Example, Task, load_examples, load_metadata, resolve_task
from audiosep_kit.features import CachedFeatures, FeatureStore, cached_features, default_cache_dir
from audiosep_kit.runtime import FeatureExtractor, artifact_options

#: Names accepted for ``RunConfig.protocol``: ``official`` (evar for fold tasks, split for split tasks), a
#: registered protocol (evar, hear, split, seed) or an older alias (folds = hear, seed-project = seed).
PROTOCOL_CHOICES = PROTOCOL_NAMES
_SHOW_FAILURES = 5


@dataclass(frozen=True)
class RunConfig:
    """What to evaluate: heads, seeds, protocol ('official' = evar for fold tasks, split for split tasks)."""

    heads: tuple[str, ...] = ("linear", "mlp3", "logreg")
    seeds: tuple[int, ...] = (0,)
    protocol: str = "official"
    options: EvalOptions = field(default_factory=EvalOptions)
    command: str | None = None  # the command line, recorded in every report (the CLI fills it)
    #: Draw the 2-D map of the features by class in the run folder (t-SNE: ~10-20 s for 2000 clips).
    embedding_map: bool = True

    def __post_init__(self) -> None:
        if not self.heads:
            raise ConfigError("give at least one head; got none.")
        for head in self.heads:
            get_head_spec(head)
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ConfigError(f"`seeds` must be a non-empty tuple of integers; got {self.seeds!r}.")
        check_choice("protocol", self.protocol, PROTOCOL_CHOICES)


@dataclass(frozen=True)
class ExtractionConfig:
    """How features are extracted (``FeatureExtractor.from_checkpoint`` arguments)."""

    checkpoint: str
    backend: str = "eager"
    device: str = "cpu"
    film: str = "none"
    condition: str | None = None
    layer: str = "center"
    pooling: str = "mean"
    pad_to_32: bool = True
    trust_checkpoint: bool = False
    model_path: str | None = None  # exported artifact for the onnx / aoti backends
    precision: str = "fp32"  # explicit for every backend: reduced precision only when asked for
    export_cache: str | None = None  # cache root the onnx / aoti backends export into (default: $AUDIOSEP_CACHE)


@dataclass(frozen=True)
class Evaluation:
    """The report document, every run's result, and the files written (empty without ``out_dir``)."""

    report: dict
    results: list[RunResult]
    paths: dict[str, Path]


def evaluate_features(
    X: np.ndarray,
    examples: Sequence[Example],
    task: Task,
    config: RunConfig,
    *,
    provenance: dict,
    out_dir: str | Path | None = None,
    progress: Callable[[RunResult], None] | None = None,
) -> Evaluation:
    """Run ``config.protocol`` on features ``X`` (rows aligned with ``examples``) and report."""
    protocol = resolve_protocol(config.protocol, task)
    results = evaluate(
        X, examples, task, heads=config.heads, seeds=config.seeds, protocol=config.protocol,
        options=config.options, progress=progress,
    )  # fmt: skip
    partitions = [part for seed in config.seeds for part in protocol.partitions(examples, task, seed, config.options)]
    floor = floor_scores(np.array([e.label for e in examples]), partitions, task)
    report = build_report(
        results, task=task, protocol=protocol, seeds=config.seeds, options=config.options, provenance=provenance,
        command=config.command, floor=floor,
    )  # fmt: skip
    paths: dict[str, Path] = {}
    if out_dir is not None:
        labels = [e.label for e in examples]
        features = X if config.embedding_map else None
        paths = write_run_dir(report, results, out_dir, task.label_names, features=features, labels=labels)
    return Evaluation(report, results, paths)


def _precomputed_provenance(pre: PrecomputedFeatures) -> dict:
    return {
        "source": f"precomputed features {pre.path}",
        "features_file": pre.describe(),
        "weights": {"sha256": None, "source": "unknown (precomputed features)", "random_weights": None},
        "backend": "precomputed",
        "executed": None,
        "precision": None,
        "encoder": None,
    }


def _refuse_unused_device(config: RunConfig) -> None:
    """Precomputed features and CPU-only heads: a non-CPU device would be recorded but used by nothing."""
    device = config.options.device
    if device == "cpu" or any(takes_device(head) for head in config.heads):
        return
    torch_heads = [head for head in HEADS if takes_device(head)]
    raise ConfigError(
        f"--device {device} is used by no part of this run: the features are precomputed and the heads "
        f"{list(config.heads)} run on the CPU (scikit-learn). Drop --device, or add a head that runs on it "
        f"({', '.join(torch_heads)})."
    )


def evaluate_precomputed(
    features_path: str | Path,
    task_name: str,
    config: RunConfig,
    *,
    data_root: str | Path | None = None,
    task_root: str | Path | None = None,
    allow_missing: bool = False,
    out_dir: str | Path | None = None,
    progress: Callable[[RunResult], None] | None = None,
) -> Evaluation:
    """Evaluate saved features: a ``{'features', 'labels'}`` .pt in the task's metadata order, or a store.

    A store folder (``audiosep-extract --out``) is matched to the task's examples by path and segment
    (``match_store``; ``allow_missing`` drops the examples it lacks) and reports its manifest's provenance.
    The device serves only the torch heads here (there is no extraction): with none of them, a
    device other than the CPU is refused rather than recorded as if it had been used.
    """
    _refuse_unused_device(config)
    task = resolve_task(task_name, data_root, task_root=task_root)
    examples = load_metadata(task, data_root, task_root=task_root)
    X, examples, provenance = _saved_features(features_path, task, examples, allow_missing)
    notes = check_examples(
        task, examples, resolve_protocol(config.protocol, task), options=config.options, seeds=config.seeds,
        allow_missing=allow_missing,
    )  # fmt: skip
    notes = [*provenance.pop("data_notes", ()), *notes]
    return evaluate_features(
        X, examples, task, config, provenance={**provenance, "data_notes": notes}, out_dir=out_dir, progress=progress
    )


def _saved_features(
    path: str | Path, task: Task, examples: list[Example], allow_missing: bool
) -> tuple[np.ndarray, list[Example], dict]:
    """Features, the examples they belong to and their provenance, from a store folder or a .pt file."""
    if is_store(path):
        stored = match_store(FeatureStore.open(path), examples, task=task.name, allow_missing=allow_missing)
        return stored.features, stored.examples, {**stored.provenance, "data_notes": list(stored.notes)}
    pre = labels_as_ids(load_precomputed(path), task.label_names)
    X = align_to_examples(pre, examples, metadata=f"the {task.name} metadata")
    return X, examples, _precomputed_provenance(pre)


def extractor_provenance(description: dict, cached: CachedFeatures) -> dict:
    """What made the features. ``executed`` comes from the store's manifest (the extraction that
    wrote them: on a cache hit, an earlier run, maybe on another device), else from the extractor."""
    return {
        "source": "extracted",
        "weights": description.get("weights"),
        "backend": description.get("backend"),
        "executed": cached.manifest.get("executed") or description.get("executed"),
        "precision": description.get("precision"),
        "encoder": description.get("encoder"),
        "resampler": description.get("resampler"),
        "extractor_versions": description.get("versions"),
        "cache": {"key": cached.key, "path": str(cached.path), "extracted_now": cached.extracted},
    }


def refuse_failures(cached: CachedFeatures) -> None:
    """Evaluating without the clips that failed would silently change the test set: refuse."""
    if cached.ok.all():
        return
    bad = cached.index[~cached.ok]
    shown = "; ".join(f"{row.path}: {row.error}" for row in bad.head(_SHOW_FAILURES).itertuples())
    raise StoreError(
        f"{len(bad)} of {len(cached.index)} clips failed to extract ({shown}). Fix or remove those files "
        f"(or pass --allow-missing for files that are absent); the store is at {cached.path}."
    )


def evaluate_extracted(
    task_name: str,
    extraction: ExtractionConfig,
    config: RunConfig,
    *,
    data_root: str | Path | None = None,
    task_root: str | Path | None = None,
    allow_missing: bool = False,
    cache_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[RunResult], None] | None = None,
    make_extractor: Callable[[ExtractionConfig], Any] | None = None,
    extract: Callable | None = None,
    open_store: Callable | None = None,
) -> Evaluation:
    """Read the task, extract (or reuse cached) features, evaluate. Factories are injectable for tests."""
    task = resolve_task(task_name, data_root, task_root=task_root)
    examples = load_examples(task, data_root, task_root=task_root, allow_missing=allow_missing)
    protocol = resolve_protocol(config.protocol, task)
    notes = check_examples(
        task, examples, protocol, options=config.options, seeds=config.seeds, allow_missing=allow_missing
    )
    extractor = (make_extractor or build_extractor)(extraction)
    cache_root = cache_dir or default_cache_dir()
    cached = cached_features(
        extractor, [e.segment for e in examples], cache_root, extract=extract, open_store=open_store
    )
    refuse_failures(cached)
    provenance = {**extractor_provenance(extractor.describe(), cached), "data_notes": notes}
    return evaluate_features(
        cached.features, examples, task, config, provenance=provenance, out_dir=out_dir, progress=progress
    )


def build_extractor(extraction: ExtractionConfig) -> Any:
    backend_options = artifact_options(
        extraction.backend, extraction.precision, extraction.model_path or None, extraction.export_cache
    )
    return FeatureExtractor.from_checkpoint(
        extraction.checkpoint,
        backend=extraction.backend,
        device=extraction.device,
        film=extraction.film,
        condition=extraction.condition,
        layer=extraction.layer,
        pooling=extraction.pooling,
        pad_to_32=extraction.pad_to_32,
        trust_pickle=extraction.trust_checkpoint,
        **backend_options,
    )
