"""Floors: constant predictions scored on each partition's test rows (ICBHI's constant 'normal' above all)."""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.evaluate._floors import floor_scores, majority_label
from audiosep_kit.evaluate._protocols import Partition
from audiosep_kit.evaluate.tasks import TASKS
from audiosep_kit.evaluate.tasks._task import Task


def _partition(name: str, train: list[int], test: list[int]) -> Partition:
    return Partition(name, np.array(train), np.array([], dtype=np.int64), np.array(test), "none")


def test_icbhi_constant_normal_floor_on_a_constructed_test_set():
    """Test rows: 3 normal, 1 crackle, 1 wheeze, 1 both -> Sp 100, Se 0, Score 50, accuracy 50."""
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 0, 1, 2, 3])  # rows 0-4 train, 5-10 test
    floor = floor_scores(labels, [_partition("official split", [0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10])], TASKS["icbhi"])
    normal = floor["constant_normal"]
    assert normal["name"] == "constant 'normal' floor" and normal["n_runs"] == 1
    assert (normal["sp_mean"], normal["se_mean"], normal["icbhi_score_mean"]) == (1.0, 0.0, 0.5)
    assert normal["accuracy_mean"] == 0.5 and normal["balanced_accuracy_mean"] == 0.25
    assert normal["macro_f1_mean"] == pytest.approx((2 / 3) / 4)  # normal: P 1/2, R 1; 3 classes F1 0
    assert normal["predicts"] == {"official split": "normal"} and normal["sp_std"] == 0.0
    assert floor["majority"]["predicts"] == {"official split": "normal"}  # train is 3 normal vs 2 crackle


def test_majority_comes_from_train_not_test():
    """Train mostly 'b', test all 'a': the majority floor predicts 'b' and scores 0, per partition."""
    task = Task(name="toy", label_names=("a", "b"), protocol="folds", splits=("1", "2"))
    labels = np.array([1, 1, 0, 0, 0, 0, 1, 0])
    parts = [_partition("fold 1", [0, 1, 2], [3, 4, 5]), _partition("fold 2", [3, 4, 5], [0, 1, 6, 7])]
    floor = floor_scores(labels, parts + parts, task)  # each partition listed twice (two seeds): scored once
    assert set(floor) == {"majority"}  # no class named 'normal': no constant-normal floor
    majority = floor["majority"]
    assert majority["predicts"] == {"fold 1": "b", "fold 2": "a"} and majority["n_runs"] == 2
    assert [run["scores"]["accuracy"] for run in majority["runs"]] == [0.0, 0.25]
    assert majority["accuracy_mean"] == 0.125 and majority["accuracy_std"] == pytest.approx(np.std([0, 0.25], ddof=1))


def test_majority_label_ties_go_to_the_lowest():
    assert majority_label(np.array([2, 1, 2, 1, 0])) == 1 and majority_label(np.array([3])) == 3
