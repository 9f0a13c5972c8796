"""Scores: the generic three against hand-computed values, and the ICBHI 2017 challenge metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate._metrics import (
    SCORES,
    accuracy,
    balanced_accuracy,
    compute_scores,
    confusion,
    constant_scores,
    get_score,
    icbhi_score,
    icbhi_sensitivity,
    icbhi_specificity,
    macro_f1,
    score_names,
)

ICBHI4 = ("normal", "crackle", "wheeze", "both")
ICBHI2 = ("normal", "abnormal")


def test_generic_scores_by_hand():
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 0])
    assert accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((3 / 4 + 1 / 2) / 2)
    f1_0 = 2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)
    f1_1 = 2 * (1 / 2) * (1 / 2) / 1.0
    assert macro_f1(y_true, y_pred) == pytest.approx((f1_0 + f1_1) / 2)


def test_balanced_accuracy_tolerates_predicted_classes_absent_from_truth():
    assert balanced_accuracy(np.array([0, 0, 1]), np.array([0, 2, 1])) == pytest.approx((1 / 2 + 1) / 2)


def test_icbhi_four_class_by_hand():
    # 4 normal (3 right), crackle 2 (1 right, 1 called wheeze), wheeze 2 (2 right), both 2 (0 right, called normal)
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3])
    y_pred = np.array([0, 0, 0, 1, 1, 2, 2, 2, 0, 0])
    assert icbhi_sensitivity(y_true, y_pred, ICBHI4) == pytest.approx(3 / 6)
    assert icbhi_specificity(y_true, y_pred, ICBHI4) == pytest.approx(3 / 4)
    assert icbhi_score(y_true, y_pred, ICBHI4) == pytest.approx((3 / 6 + 3 / 4) / 2)


def test_icbhi_abnormal_means_the_exact_abnormal_class():
    # A crackle called wheeze is abnormal-as-abnormal but not "correctly classified" in the 4-class score.
    assert icbhi_sensitivity(np.array([1, 2]), np.array([2, 1]), ICBHI4) == 0.0


def test_icbhi_two_class_variant():
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 0])
    assert icbhi_sensitivity(y_true, y_pred, ICBHI2) == pytest.approx(2 / 3)
    assert icbhi_specificity(y_true, y_pred, ICBHI2) == pytest.approx(1 / 2)
    assert icbhi_score(y_true, y_pred, ICBHI2) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_icbhi_undefined_ratios_are_nan():
    assert math.isnan(icbhi_sensitivity(np.array([0, 0]), np.array([0, 1]), ICBHI4))
    assert math.isnan(icbhi_specificity(np.array([1, 2]), np.array([1, 2]), ICBHI4))


def test_icbhi_needs_a_normal_class():
    with pytest.raises(ConfigError, match="need a class named 'normal'"):
        icbhi_score(np.array([0, 1]), np.array([0, 1]), ("dog", "cat"))


def test_compute_scores_adds_base_scores_after_the_tasks_own():
    y = np.array([0, 1, 2, 3])
    out = compute_scores(y, y, ICBHI4, ("icbhi_score", "se", "sp", "accuracy"))
    assert list(out) == ["icbhi_score", "se", "sp", "accuracy", "macro_f1", "balanced_accuracy"]
    assert all(v == 1.0 for v in out.values())


def test_score_names_primary_first_without_duplicates():
    assert score_names(("accuracy", "macro_f1", "balanced_accuracy")) == ("accuracy", "macro_f1", "balanced_accuracy")
    assert score_names(()) == ("accuracy", "macro_f1", "balanced_accuracy")


def test_unknown_score_lists_the_registry():
    with pytest.raises(ConfigError, match=r"`score` must be one of \{.*'accuracy'.*\}; got 'auc'"):
        get_score("auc")
    with pytest.raises(ConfigError, match="got 'auc'"):
        compute_scores(np.array([0]), np.array([0]), ("a", "b"), ("auc",))


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        (np.array([0, 1]), np.array([0]), "equal length"),
        (np.array([], int), np.array([], int), "empty test set"),
    ],
)
def test_compute_scores_refuses_bad_inputs(y_true, y_pred, message):
    with pytest.raises(ConfigError, match=message):
        compute_scores(y_true, y_pred, ("a", "b"))


def test_confusion_covers_every_class_of_the_task():
    matrix = confusion(np.array([0, 0, 1]), np.array([0, 1, 1]), num_classes=4)
    assert matrix.shape == (4, 4)
    assert matrix.tolist()[:2] == [[1, 1, 0, 0], [0, 1, 0, 0]]


def test_registry_names():
    assert {"accuracy", "macro_f1", "balanced_accuracy", "icbhi_score", "se", "sp"} <= set(SCORES)


def test_balanced_accuracy_equals_sklearns_definition():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        y_true, y_pred = rng.integers(0, 5, 60), rng.integers(0, 5, 60)
        assert balanced_accuracy(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def test_constant_normal_is_the_icbhi_floor_on_any_test_set():
    """Calling every cycle normal: Sp 1, Se 0, challenge score 0.5; accuracy = the normal share."""
    rng = np.random.default_rng(0)
    for classes in (ICBHI4, ICBHI2):
        y_true = np.concatenate([[0, 1], rng.integers(0, len(classes), 40)])
        out = constant_scores(y_true, 0, classes, ("icbhi_score", "se", "sp"))
        assert (out["sp"], out["se"], out["icbhi_score"]) == (1.0, 0.0, 0.5)
        assert out["accuracy"] == pytest.approx(np.mean(y_true == 0))
        assert out["balanced_accuracy"] == pytest.approx(1 / len(np.unique(y_true)))
