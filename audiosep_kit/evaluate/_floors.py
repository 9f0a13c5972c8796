"""Floors: what a constant prediction scores on the very test rows the heads were scored on.

A number means little without the score of knowing nothing. Two floors, computed without features:

* ``majority``: every test row gets the most frequent class of that partition's *training* rows
  (ties: the lowest label index), the accuracy of always guessing the commonest class. It is taken
  from train, never from test, so it is a prediction a model could make.
* ``constant_normal`` (tasks with a class named ``normal``, i.e. ICBHI): every cycle called normal.
  The ICBHI 2017 challenge score (Sp + Se) / 2 of it is 0.5 on any test set (Sp = 1, Se = 0), the
  line an ICBHI score must clear to say anything.

Each floor is scored per partition (folds, the official split, or the seed-project protocol's random
splits, one per seed) with the task's own scores, and summarised like a head: ``<score>_mean`` and
``<score>_std`` (sample std, 0.0 for one partition) plus ``n_runs`` and what it predicted where.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from audiosep_kit.evaluate._metrics import NORMAL_LABEL, constant_scores, score_names
from audiosep_kit.evaluate._protocols import Partition
from audiosep_kit.evaluate.tasks._task import Task

#: Floor key in results.json -> the row name in the tables.
FLOOR_NAMES = {"majority": "majority-class floor", "constant_normal": f"constant {NORMAL_LABEL!r} floor"}


def majority_label(y_train: np.ndarray) -> int:
    """The most frequent label of ``y_train`` (ties: the lowest)."""
    return int(np.argmax(np.bincount(np.asarray(y_train, dtype=np.int64))))


def _summary(name: str, runs: list[dict], scores: Sequence[str]) -> dict:
    """A head-like block: mean and sample std of every score over the partitions, and the runs."""
    block: dict = {"name": name, "n_runs": len(runs)}
    for score in scores:
        values = np.array([run["scores"][score] for run in runs], dtype=np.float64)
        block[f"{score}_mean"] = float(np.mean(values))
        block[f"{score}_std"] = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    block["predicts"] = {run["partition"]: run["predicts"] for run in runs}
    block["runs"] = runs
    return block


def floor_scores(labels: np.ndarray, partitions: Sequence[Partition], task: Task) -> dict[str, dict]:
    """The ``floor`` block of results.json: each floor's scores on each partition's test rows.

    ``labels`` are the (N,) label ids of the examples the partitions index; a partition that appears
    twice (the official ones, once per seed) is scored once.
    """
    y = np.asarray(labels, dtype=np.int64)
    unique = list({part.name: part for part in partitions}.values())
    names = score_names(task.scores)
    choices: dict[str, Callable[[Partition], int]] = {"majority": lambda part: majority_label(y[part.train])}
    if NORMAL_LABEL in task.label_names:
        normal = task.label_names.index(NORMAL_LABEL)
        choices["constant_normal"] = lambda part: normal
    out = {}
    for key, choose in choices.items():
        runs = []
        for part in unique:
            label = choose(part)
            scores = constant_scores(y[part.test], label, task.label_names, task.scores)
            runs.append({"partition": part.name, "predicts": task.label_names[label], "scores": scores})
        out[key] = _summary(FLOOR_NAMES[key], runs, names)
    return out
