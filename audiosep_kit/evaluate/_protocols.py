"""How features are split, how a head is chosen, and what is scored: the evaluation protocols.

Protocols (registered in :data:`PROTOCOLS`; how each partitions is in ``_partitions``):

* ``evar`` (fold tasks; what ``official`` means for them): test fold k, train on every other fold
  minus a stratified 10 % validation carve-out grouped by source recording (stricter than EVAR's
  random carve-out), as the published linear-probe tables (EVAR, BYOL-A, M2D) train.
* ``hear`` (fold tasks): test fold k, validate on fold k+1, train on the other folds (HEAR-style).
* ``split`` (split tasks; what ``official`` means for them): the official train/valid/test lists.
* ``seed``: the seed project's recipe, **leaky**: a random stratified 80/20 split of all examples (one
  per seed, ignoring folds and groups, so near-duplicate clips of one recording land on both sides),
  every head with :data:`SEED_RECIPE` (Adam, 100 epochs) and the epoch with the best *test* accuracy.
  Its validation set *is* its test set, and everything it produces says so.

The old names still work: ``folds`` is ``hear`` (what it always did) and ``seed-project`` is ``seed``;
reports record the canonical name.

* **Selection** sees the training and validation rows only: :func:`select_model` takes no test
  argument. Each grid point is trained on train with early stopping on validation accuracy (torch
  heads keep their best validation epoch); the grid point with the best primary task score on
  validation wins (ties: first in grid order). The test rows are predicted once, afterwards.
* **Refit** (off by default): with ``refit=True`` the winner is retrained on train+validation
  with the chosen hyper-parameters for the chosen number of epochs. Off by default so that the
  model scored on test is exactly the model that was selected. ``RunResult.n_train`` counts the rows
  the scored model was trained on (train+validation with refit).
* **Seeds** vary head initialisation and minibatch order; the official splits and carve-outs do not change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate._heads import SEED_RECIPE, check_head_device, get_head_spec, make_head
from audiosep_kit.evaluate._metrics import compute_scores, confusion, score_names
from audiosep_kit.evaluate._partitions import (
    EVAR_VAL_FRACTION,
    EvalOptions,
    Partition,
    evar_partitions,
    hear_partitions,
    seed_partitions,
    split_partitions,
)
from audiosep_kit.evaluate.tasks._task import Example, Task

_log = logging.getLogger(__name__)
_DEFAULT_OPTIONS = EvalOptions()


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: how it partitions, the task kind it serves, whether it searches the grid, leaks.

    ``kind`` is the task kind it runs on ("folds" or "split"; None: any). ``head_overrides`` replace the
    user's training options (the seed protocol's recipe). A leaky protocol never refits: its validation
    rows are its test rows.
    """

    name: str
    leaky: bool
    description: str
    partitions: Callable[[Sequence[Example], Task, int, EvalOptions], list[Partition]]
    kind: str | None = None
    use_grid: bool = True
    head_overrides: dict = field(default_factory=dict)


PROTOCOLS: dict[str, Protocol] = {
    "evar": Protocol(
        "evar",
        False,
        f"EVAR-style folds: test fold k, train on every other fold minus a stratified {EVAR_VAL_FRACTION:.0%} "
        "validation carve-out (early stopping and selection), grouped by source recording so none straddles "
        "train/valid: stricter than EVAR's random carve-out",
        evar_partitions,
        kind="folds",
    ),
    "hear": Protocol(
        "hear",
        False,
        "HEAR-style folds: test fold k, validate on fold k+1, train on the other folds; selection on validation",
        hear_partitions,
        kind="folds",
    ),
    "split": Protocol(
        "split", False, "official train/valid/test; selection on validation only", split_partitions, kind="split"
    ),
    "seed": Protocol(
        "seed",
        True,
        "LEAKY reproduction of the seed project: random stratified 80/20 split, the seed's head recipe (Adam, "
        "lr 1e-3, no weight decay), 100 epochs, epoch chosen by best TEST accuracy",
        seed_partitions,
        use_grid=False,
        head_overrides=SEED_RECIPE,
    ),
}
#: Older names, still accepted: what they always ran.
PROTOCOL_ALIASES = {"folds": "hear", "seed-project": "seed"}
#: What ``official`` means per task kind.
OFFICIAL = {"folds": "evar", "split": "split"}
#: Every name a caller may give (``official``, the canonical names, the aliases).
PROTOCOL_NAMES = ("official", *PROTOCOLS, *PROTOCOL_ALIASES)


def resolve_protocol(name: str, task: Task) -> Protocol:
    """``official`` is the task kind's default (evar for folds, split for split); aliases map to their
    canonical protocol; a fold protocol on a split task (or the reverse) is refused with the fix."""
    check_choice("protocol", name, PROTOCOL_NAMES)
    key = OFFICIAL[task.protocol] if name == "official" else PROTOCOL_ALIASES.get(name, name)
    protocol = PROTOCOLS[key]
    if protocol.kind is not None and protocol.kind != task.protocol:
        fits = [n for n, p in PROTOCOLS.items() if p.kind in (None, task.protocol)]
        raise ConfigError(
            f"protocol {key!r} runs on {protocol.kind} tasks; task {task.name!r} is a {task.protocol} task. "
            f"Fix: --protocol official or one of {fits}."
        )
    return protocol


@dataclass(frozen=True)
class Selection:
    """The chosen grid point and epoch, with every candidate's validation score (for the report)."""

    params: dict
    best_epoch: int | None
    val_score: float
    candidates: tuple[dict, ...]


def select_model(
    head: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    grid: Sequence[dict],
    params: dict,
    task: Task,
) -> tuple[Any, Selection]:
    """Fit every grid point on train, score it on validation, return the best fitted head.

    This function receives no test rows by construction; the test split cannot influence it.
    """
    primary = score_names(task.scores)[0]
    best: tuple[Any, float, dict] | None = None
    candidates = []
    for point in grid:
        model = make_head(head, **{**params, **point}).fit(X_train, y_train, X_val, y_val)
        score = compute_scores(y_val, model.predict(X_val), task.label_names, (primary,))[primary]
        candidates.append({"params": dict(point), "best_epoch": model.best_epoch_, "val_score": score})
        if best is None or score > best[1]:
            best = (model, score, point)
    if best is None:
        raise ConfigError("select_model needs a non-empty grid; got none.")
    model, score, point = best
    return model, Selection(dict(point), model.best_epoch_, score, tuple(candidates))


@dataclass(frozen=True)
class RunResult:
    """One head on one partition with one seed: what was selected and how it scored on test."""

    head: str
    partition: str
    seed: int
    selection: Selection
    scores: dict
    confusion: np.ndarray
    n_train: int  # rows the scored model was trained on: train, or train+validation with refit
    n_val: int
    n_test: int
    val_source: str
    leaky: bool
    device: str  # where the head that scored the test rows ran (``device_``), not what was requested
    refit: bool = False


def run_partition(
    head: str,
    X: np.ndarray,
    y: np.ndarray,
    part: Partition,
    seed: int,
    *,
    protocol: Protocol,
    task: Task,
    options: EvalOptions,
) -> RunResult:
    """Select on (train, val), optionally refit on train+val, then predict the test rows once."""
    classes = np.unique(y[part.train])
    if classes.size < 2:
        raise ConfigError(
            f"{part.name}: the training rows hold only class(es) {classes.tolist()}; a head needs at least 2. "
            "Fix: evaluate the complete dataset (--data-root) rather than a small sample."
        )
    params = {**options.head_params(), **protocol.head_overrides, "random_state": seed}
    grid = get_head_spec(head).grid if protocol.use_grid else ({},)
    model, sel = select_model(
        head, X[part.train], y[part.train], X[part.val], y[part.val], grid=grid, params=params, task=task
    )
    refit = options.refit and not protocol.leaky
    rows = np.concatenate([part.train, part.val]) if refit else part.train
    if refit:
        epochs = {"max_epochs": sel.best_epoch, "patience": None} if sel.best_epoch else {}
        model = make_head(head, **{**params, **sel.params, **epochs}).fit(X[rows], y[rows])
    y_pred = model.predict(X[part.test])
    return RunResult(
        head=head,
        partition=part.name,
        seed=seed,
        selection=sel,
        scores=compute_scores(y[part.test], y_pred, task.label_names, task.scores),
        confusion=confusion(y[part.test], y_pred, task.num_classes),
        n_train=len(rows),
        n_val=len(part.val),
        n_test=len(part.test),
        val_source=part.val_source,
        leaky=protocol.leaky,
        device=model.device_,
        refit=refit,
    )


def evaluate(
    X: np.ndarray,
    examples: Sequence[Example],
    task: Task,
    *,
    heads: Sequence[str],
    seeds: Sequence[int],
    protocol: str = "official",
    options: EvalOptions = _DEFAULT_OPTIONS,
    progress: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Every head × partition × seed of ``protocol`` on features ``X`` (rows aligned with ``examples``)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != len(examples):
        raise ConfigError(f"features must be (N, D) with N = {len(examples)} examples; got shape {X.shape}.")
    if not seeds:
        raise ConfigError("give at least one seed; got none.")
    for head in heads:
        get_head_spec(head)
    check_head_device(heads, options.device)  # cuda without CUDA fails here, not after hours of CPU heads
    proto = resolve_protocol(protocol, task)
    y = np.array([e.label for e in examples], dtype=np.int64)
    results = []
    for seed in seeds:
        for part in proto.partitions(examples, task, seed, options):
            for head in heads:
                _log.info("eval: %s on %s, %s %s, seed %d", head, task.name, proto.name, part.name, seed)
                result = run_partition(head, X, y, part, seed, protocol=proto, task=task, options=options)
                results.append(result)
                if progress is not None:
                    progress(result)
    return results
