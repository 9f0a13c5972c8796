"""Scores of a classifier's test predictions: the generic three plus each task's own metric.

Every score function has the signature ``f(y_true, y_pred, label_names) -> float`` so that a task can
name its scores in ``Task.scores`` and :func:`compute_scores` needs no per-task code. The ICBHI 2017
challenge scores need the label names to know which class is "normal"; the rest ignore them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError

ScoreFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], float]

#: Reported for every task, whatever else the task lists.
BASE_SCORES = ("accuracy", "macro_f1", "balanced_accuracy")
#: The ICBHI class that counts as "normal"; every other class is an abnormal cycle.
NORMAL_LABEL = "normal"


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str] = ()) -> float:
    """Fraction of exactly right predictions."""
    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str] = ()) -> float:
    """Unweighted mean F1 over the classes seen in truth or prediction (rare classes count fully)."""
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str] = ()) -> float:
    """Mean per-class recall over the classes in y_true: accuracy on a class-balanced test set.

    sklearn's ``balanced_accuracy_score`` by its definition, computed as macro recall over the true
    classes so that a prediction of a class absent from the test set is simply wrong, not a warning.
    """
    return float(recall_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0))


def _normal_index(label_names: Sequence[str]) -> int:
    names = list(label_names)
    if NORMAL_LABEL not in names:
        raise ConfigError(
            f"ICBHI scores need a class named {NORMAL_LABEL!r} (e.g. normal/crackle/wheeze/both or "
            f"normal/abnormal); got label names {tuple(names)}. Fix: drop 'se'/'sp'/'icbhi_score' "
            "from the task's scores or rename its normal class."
        )
    return names.index(NORMAL_LABEL)


def icbhi_sensitivity(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> float:
    """ICBHI 2017 Se: abnormal cycles (crackle, wheeze, both) predicted as exactly their class / all abnormal.

    NaN when the test set holds no abnormal cycle (the ratio is undefined, not 0 or 1).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    abnormal = y_true != _normal_index(label_names)
    if not abnormal.any():
        return float("nan")
    return float(np.mean(y_pred[abnormal] == y_true[abnormal]))


def icbhi_specificity(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> float:
    """ICBHI 2017 Sp: normal cycles predicted normal / all normal cycles (NaN without normal cycles)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    normal = y_true == _normal_index(label_names)
    if not normal.any():
        return float("nan")
    return float(np.mean(y_pred[normal] == y_true[normal]))


def icbhi_score(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> float:
    """ICBHI 2017 challenge score (Se + Sp) / 2, for the 4-class and the 2-class variant alike."""
    se = icbhi_sensitivity(y_true, y_pred, label_names)
    sp = icbhi_specificity(y_true, y_pred, label_names)
    return (se + sp) / 2.0


SCORES: dict[str, ScoreFn] = {
    "accuracy": accuracy,
    "macro_f1": macro_f1,
    "balanced_accuracy": balanced_accuracy,
    "icbhi_score": icbhi_score,
    "se": icbhi_sensitivity,
    "sp": icbhi_specificity,
}


def get_score(name: str) -> ScoreFn:
    """The score function registered as ``name``; an unknown name lists the valid ones."""
    return SCORES[check_choice("score", name, SCORES)]


def score_names(task_scores: Sequence[str]) -> tuple[str, ...]:
    """The task's scores (its primary one first) followed by the base scores it did not list."""
    names = list(dict.fromkeys(task_scores))
    names += [s for s in BASE_SCORES if s not in names]
    for name in names:
        get_score(name)
    return tuple(names)


def compute_scores(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str], task_scores: Sequence[str] = ()
) -> dict[str, float]:
    """Every score in :func:`score_names` of ``task_scores``, as plain floats keyed by name."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ConfigError(
            f"y_true and y_pred must be 1-D of equal length; got shapes {y_true.shape} and {y_pred.shape}."
        )
    if y_true.size == 0:
        raise ConfigError("cannot score an empty test set; got 0 examples.")
    return {name: get_score(name)(y_true, y_pred, label_names) for name in score_names(task_scores)}


def constant_scores(
    y_true: np.ndarray, label: int, label_names: Sequence[str], task_scores: Sequence[str] = ()
) -> dict[str, float]:
    """:func:`compute_scores` of predicting ``label`` for every row: the floor a feature must beat.

    E.g. ICBHI's constant "normal": Sp = 1, Se = 0, so the challenge score is 0.5 whatever the test set.
    """
    y_true = np.asarray(y_true)
    return compute_scores(y_true, np.full(y_true.shape, label, dtype=y_true.dtype), label_names, task_scores)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class, over all ``num_classes`` labels."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))
