"""Which rows train, validate and test: the partitions of every protocol, built from labels, splits and groups.

Fold tasks (ESC-50, UrbanSound8K) test every fold once and differ only in how validation is found:

* **evar** (the default, as in the published linear-probe tables: EVAR, BYOL-A, M2D): train on every
  non-test fold minus a stratified :data:`EVAR_VAL_FRACTION` carve-out used for early stopping and
  selection. The carve-out is grouped by ``Example.group`` (ESC-50 ``src_file``, UrbanSound8K ``fsID``)
  with a ``StratifiedGroupKFold(10)`` whose first fold is the validation set, so no source recording
  straddles train and validation. That is stricter than EVAR's random carve-out, whose validation
  clips can be siblings of training clips and flatter early stopping.
* **hear** (HEAR-style whole folds): validation is the *next* fold (fold k → fold k+1, the last → the
  first), training is the other folds. Whole folds keep recordings together too, but train on one fold less.

Split tasks use their official train/valid/test lists; without a validation list (ICBHI) it is carved
from ``train`` by group with ``round(1 / val_fraction)`` folds. Every carve-out has a fixed random
state (0): it is part of the protocol, the same for every seed. The seed project's LEAKY partition
(a random 80/20 whose validation set is its test set) lives here too, so it is built the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from audiosep_kit._devices import parse_device
from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate.tasks._task import Example, Task

#: Share of the training folds the evar protocol holds out for validation (EVAR's 10 %).
EVAR_VAL_FRACTION = 0.1


@dataclass(frozen=True)
class EvalOptions:
    """Training and selection options shared by every head of one evaluation.

    ``val_fraction`` is the validation share carved from a split task's ``train`` list when it has
    no ``valid`` one (the evar protocol's carve-out is fixed at :data:`EVAR_VAL_FRACTION`).
    """

    device: str = "cpu"
    max_epochs: int = 200
    patience: int | None = 30
    batch_size: int = 128  # mlp3, ESC-50 evar: 63.2 % (64: 63.8 %, in about 1.6x the time)
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


def _indices(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def present_folds(examples: Sequence[Example], task: Task) -> tuple[np.ndarray, list[str]]:
    """Each example's fold, and the task's folds that hold examples (at least 3, or ConfigError)."""
    splits = np.array([e.split for e in examples])
    folds = [f for f in task.splits if (splits == f).any()]
    if len(folds) < 3:
        raise ConfigError(
            f"a fold protocol needs examples in at least 3 folds (test, validation, train); got "
            f"{folds} of {task.splits}. Fix: provide the full dataset under --data-root."
        )
    return splits, folds


def hear_partitions(examples: Sequence[Example], task: Task, seed: int, options: EvalOptions) -> list[Partition]:
    """One partition per fold present: test = that fold, validation = the next fold, train = the rest."""
    splits, folds = present_folds(examples, task)
    out = []
    for i, fold in enumerate(folds):
        val_fold = folds[(i + 1) % len(folds)]
        train = _indices((splits != fold) & (splits != val_fold))
        val, test = _indices(splits == val_fold), _indices(splits == fold)
        out.append(Partition(f"fold {fold}", train, val, test, f"fold {val_fold}"))
    return out


def evar_partitions(examples: Sequence[Example], task: Task, seed: int, options: EvalOptions) -> list[Partition]:
    """One partition per fold present: test = that fold; every other fold is split into train and a
    grouped, stratified 10 % validation carve-out (the same for every seed)."""
    splits, folds = present_folds(examples, task)
    out = []
    for fold in folds:
        rows = _indices(splits != fold)
        train, val, how = carve_validation(examples, rows, EVAR_VAL_FRACTION)
        others = ",".join(f for f in folds if f != fold)
        out.append(Partition(f"fold {fold}", train, val, _indices(splits == fold), f"folds {others}: {how}"))
    return out


def split_partitions(examples: Sequence[Example], task: Task, seed: int, options: EvalOptions) -> list[Partition]:
    """The official train/valid/test lists; validation carved from train by group when absent."""
    splits = np.array([e.split for e in examples])
    for name in ("train", "test"):
        if not (splits == name).any():
            raise ConfigError(
                f"task {task.name!r} has no {name!r} examples; got splits {sorted(set(splits.tolist()))}."
            )
    test = _indices(splits == "test")
    if (splits == "valid").any():
        train, val = _indices(splits == "train"), _indices(splits == "valid")
        return [Partition("official split", train, val, test, "official valid")]
    train_all = _indices(splits == "train")
    train, val, how = carve_validation(examples, train_all, options.val_fraction)
    return [Partition("official split", train, val, test, how)]


#: Said in a partition's ``val_source`` when its carve-out could not keep groups apart (the preflight
#: turns it into a report note).
UNGROUPED = "carved WITHOUT groups"


def _n_splits(labels: np.ndarray, groups: list | None, wanted: int) -> int:
    """``wanted`` folds, fewer when the rows cannot fill them (tiny custom data sets); at least 2."""
    n = min(wanted, int(np.bincount(np.unique(labels, return_inverse=True)[1]).max()))
    if groups is not None:
        n = min(n, len(set(groups)))
    if n < 2:
        raise ConfigError(
            f"cannot carve a validation set from {len(labels)} training rows: "
            "it needs at least 2 rows of one class. Fix: give more examples per class."
        )
    return n


def carve_validation(
    examples: Sequence[Example], rows: np.ndarray, val_fraction: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Split ``rows`` into (train, val) so that no group straddles them, stratified by label.

    The first of ``round(1 / val_fraction)`` folds is the validation set; the random state is fixed
    (0): the carved validation set is part of the protocol, not of a seed. Fewer folds on tiny data
    sets, and classes too rare to reach every fold, are said in the returned description (scikit-learn's
    warning about the latter is not repeated on stderr).
    """
    labels = np.array([examples[i].label for i in rows])
    groups: list | None = [examples[i].group for i in rows]
    wanted = max(2, round(1.0 / val_fraction))
    ungrouped = ""
    if groups is not None and (None in groups or len(set(groups)) < 2):
        # One group (a sample's single ICBHI training patient) cannot be split by group. Carving
        # without groups keeps the run going; the description says the recordings then straddle.
        if None not in groups:
            ungrouped = f"; NOTE only {len(set(groups))} group in the training rows, so {UNGROUPED}"
        groups = None
    n_splits = _n_splits(labels, groups, wanted)
    notes = "" if n_splits == wanted else f" (1/{wanted} wanted; too few rows per class or group)"
    rarest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    notes += "" if rarest >= n_splits else f"; a class has {rarest} rows: validation may lack it"
    notes += ungrouped
    grouped = groups is not None
    splitter = (StratifiedGroupKFold if grouped else StratifiedKFold)(n_splits=n_splits, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class in y", category=UserWarning)
        tr, va = next(splitter.split(rows, labels, groups=groups if grouped else None))
    if grouped:
        return rows[tr], rows[va], f"carved by group (StratifiedGroupKFold, 1/{n_splits}{notes}, random_state=0)"
    return rows[tr], rows[va], f"carved stratified, no groups (StratifiedKFold, 1/{n_splits}{notes}, random_state=0)"


def seed_partitions(examples: Sequence[Example], task: Task, seed: int, options: EvalOptions) -> list[Partition]:
    """LEAKY: random stratified 80/20 of everything; validation is the test set (best test epoch)."""
    labels = np.array([e.label for e in examples])
    train, test = train_test_split(np.arange(len(examples)), test_size=0.2, stratify=labels, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    return [Partition(f"random 80/20 (seed {seed})", train, test, test, "the test set itself (LEAKY)")]
