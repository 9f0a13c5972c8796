"""How features are split, how a head is chosen, and what is scored: the evaluation protocols.

Design (official protocols, ``folds`` and ``split``):

* **Folds.** Every fold is the test set once. Its validation set is the *next* fold in the task's
  order (fold k → fold k+1, the last → the first), the training set is every other fold. Whole
  folds are used rather than a random carve-out of the training folds because the official folds
  keep clips cut from one recording together (ESC-50, UrbanSound8K): a random split would put
  siblings on both sides of the validation boundary and flatter the selection.
* **Split.** The official train/valid/test lists. When a task ships no validation list (ICBHI), it
  is carved from ``train`` by ``Example.group`` (patient, speaker) with a StratifiedGroupKFold of
  ``round(1 / val_fraction)`` folds and a fixed random state (0), so it is the same for every seed.
* **Selection** sees the training and validation rows only: :func:`select_model` takes no test
  argument. Each grid point is trained on train with early stopping on validation accuracy (torch
  heads keep their best validation epoch); the grid point with the best primary task score on
  validation wins (ties: first in grid order). The test rows are predicted once, afterwards.
* **Refit** (off by default): with ``refit=True`` the winner is retrained on train+validation
  with the chosen hyper-parameters for the chosen number of epochs. Off by default so that the
  model scored on test is exactly the model that was selected.
* **Seeds** vary head initialisation and minibatch order; the official splits do not change.

The ``seed-project`` protocol reproduces the seed project's numbers and is **leaky**: a random stratified
80/20 split of all examples (one split per seed, ignoring folds and groups, so near-duplicate clips
of one recording land on both sides), each head at its default hyper-parameters, 100 epochs, and the
epoch with the best *test* accuracy. Its validation set *is* its test set, and everything it produces says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from audiosep_kit._devices import parse_device
from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate._heads import check_head_device, get_head_spec, make_head
from audiosep_kit.evaluate._metrics import compute_scores, confusion, score_names
from audiosep_kit.evaluate.tasks._task import Example, Task

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalOptions:
    """Training and selection options shared by every head of one evaluation."""

    device: str = "cpu"
    max_epochs: int = 100
    patience: int | None = 20
    batch_size: int = 64
    refit: bool = False
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        parse_device(self.device)  # the spelling only; whether it exists is checked when a head needs it
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"`val_fraction` must be in (0, 0.5); got {self.val_fraction!r}.")

    def head_params(self) -> dict:
        """The options every head receives (``make_head`` drops those a head does not take)."""
        return {
            "device": self.device,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class Partition:
    """Row indices of one train/validation/test assignment; ``val_source`` says how validation was made."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_source: str


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: how it partitions, whether it searches the grid, whether it leaks.

    ``head_overrides`` replace the user's training options (the seed-project protocol's fixed 100 epochs).
    A leaky protocol never refits: its validation rows are its test rows.
    """

    name: str
    leaky: bool
    description: str
    partitions: Callable[[Sequence[Example], Task, int, EvalOptions], list[Partition]]
    use_grid: bool = True
    head_overrides: dict = field(default_factory=dict)


def _indices(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def fold_partitions(examples: Sequence[Example], task: Task, seed: int, options: EvalOptions) -> list[Partition]:
    """One partition per fold present: test = that fold, validation = the next fold, train = the rest."""
    splits = np.array([e.split for e in examples])
    folds = [f for f in task.splits if (splits == f).any()]
    if len(folds) < 3:
        raise ConfigError(
            f"the folds protocol needs examples in at least 3 folds (test, validation, train); got "
            f"{folds} of {task.splits}. Fix: provide the full dataset under --data-root."
        )
    out = []
    for i, fold in enumerate(folds):
        val_fold = folds[(i + 1) % len(folds)]
        train = _indices((splits != fold) & (splits != val_fold))
        val, test = _indices(splits == val_fold), _indices(splits == fold)
        out.append(Partition(f"fold {fold}", train, val, test, f"fold {val_fold}"))
    return out


def split_partitions(examples: Sequence[Example], task: Task, seed: int, options: EvalOptions) -> list[Partition]:
    """The official train/valid/test lists; validation carved from train by group when absent."""
    splits = np.array([e.split for e in examples])
    for name in ("train", "test"):
        if not (splits == name).any():
            raise ConfigError(f"task {task.name!r} has no {name!r} examples; got splits {sorted(set(splits))}.")
    test = _indices(splits == "test")
    if (splits == "valid").any():
        train, val = _indices(splits == "train"), _indices(splits == "valid")
        return [Partition("official split", train, val, test, "official valid")]
    train_all = _indices(splits == "train")
    train, val, how = carve_validation(examples, train_all, options.val_fraction)
    return [Partition("official split", train, val, test, how)]


def carve_validation(
    examples: Sequence[Example], rows: np.ndarray, val_fraction: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Split ``rows`` into (train, val) so that no group straddles them, stratified by label.

    The random state is fixed (0): the carved validation set is part of the protocol, not of a seed.
    """
    labels = np.array([examples[i].label for i in rows])
    groups = [examples[i].group for i in rows]
    n_splits = max(2, round(1.0 / val_fraction))
    if all(g is not None for g in groups):
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=0)
        tr, va = next(splitter.split(rows, labels, groups=groups))
        how = f"carved from train by group (StratifiedGroupKFold, 1/{n_splits}, random_state=0)"
    else:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=0)
        tr, va = next(splitter.split(rows, labels))
        how = f"carved from train, stratified, no groups (StratifiedKFold, 1/{n_splits}, random_state=0)"
    return rows[tr], rows[va], how


def seed_project_partitions(
    examples: Sequence[Example], task: Task, seed: int, options: EvalOptions
) -> list[Partition]:
    """LEAKY: random stratified 80/20 of everything; validation is the test set (best test epoch)."""
    labels = np.array([e.label for e in examples])
    train, test = train_test_split(np.arange(len(examples)), test_size=0.2, stratify=labels, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    return [Partition(f"random 80/20 (seed {seed})", train, test, test, "the test set itself (LEAKY)")]


PROTOCOLS: dict[str, Protocol] = {
    "folds": Protocol(
        "folds", False, "official folds; validation = the next fold; selection on validation only", fold_partitions
    ),
    "split": Protocol("split", False, "official train/valid/test; selection on validation only", split_partitions),
    "seed-project": Protocol(
        "seed-project",
        True,
        "LEAKY reproduction of the seed project: random stratified 80/20 split, default hyper-parameters, "
        "100 epochs, epoch chosen by best TEST accuracy",
        seed_project_partitions,
        use_grid=False,
        head_overrides={"max_epochs": 100, "patience": None},
    ),
}


def resolve_protocol(name: str, task: Task) -> Protocol:
    """``"official"`` means the task's own kind (folds or split); other names index :data:`PROTOCOLS`."""
    key = task.protocol if name == "official" else name
    check_choice("protocol", name, ("official", *PROTOCOLS))
    return PROTOCOLS[key]


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
    n_train: int
    n_val: int
    n_test: int
    val_source: str
    leaky: bool
    device: str  # where the head that scored the test rows ran (``device_``), not what was requested


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
    if options.refit and not protocol.leaky:
        rows = np.concatenate([part.train, part.val])
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
        n_train=len(part.train),
        n_val=len(part.val),
        n_test=len(part.test),
        val_source=part.val_source,
        leaky=protocol.leaky,
        device=model.device_,
    )


def evaluate(
    X: np.ndarray,
    examples: Sequence[Example],
    task: Task,
    *,
    heads: Sequence[str],
    seeds: Sequence[int],
    protocol: str = "official",
    options: EvalOptions = EvalOptions(),
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
                _log.info("eval: %s on %s, %s, seed %d (%d test)", head, task.name, part.name, seed, len(part.test))
                result = run_partition(head, X, y, part, seed, protocol=proto, task=task, options=options)
                results.append(result)
                if progress is not None:
                    progress(result)
    return results
