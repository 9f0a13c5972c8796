"""Heads: the scikit-learn contract, parametrized over every registered head, plus torch specifics."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.evaluate._heads import (
    HEADS,
    LinearHead,
    LogRegHead,
    MLP3Head,
    check_head_device,
    get_head_spec,
    make_head,
    takes_device,
)

FAST = {"max_epochs": 15, "patience": None, "batch_size": 32, "lr": 1e-2}


@pytest.fixture
def data(toy):
    X, y = toy.blobs(n_per_class=30, n_classes=3, dim=5, shift=3.0, seed=0)
    Xv, yv = toy.blobs(n_per_class=10, n_classes=3, dim=5, shift=3.0, seed=1)
    return X, y, Xv, yv


@pytest.mark.parametrize("name", sorted(HEADS))
class TestContract:
    def test_init_only_stores_keyword_arguments(self, name):
        factory = get_head_spec(name).factory
        params = inspect.signature(factory.__init__).parameters
        assert all(p.kind is p.KEYWORD_ONLY for n, p in params.items() if n != "self")
        head = factory(random_state=7)
        assert head.get_params()["random_state"] == 7
        assert not [k for k in vars(head) if k.endswith("_")]

    def test_fit_returns_self_and_learns_state_with_trailing_underscore(self, name, data):
        X, y, _, _ = data
        head = make_head(name, **FAST)
        assert head.fit(X, y) is head
        for attr in ("classes_", "scaler_", "n_features_in_", "best_epoch_", "history_"):
            assert hasattr(head, attr)

    def test_predict_before_fit_raises_not_fitted(self, name, data):
        with pytest.raises(NotFittedError, match="not fitted"):
            make_head(name).predict(data[0])

    def test_learns_separable_blobs(self, name, data):
        X, y, Xv, yv = data
        head = make_head(name, **FAST).fit(X, y)
        assert np.mean(head.predict(Xv) == yv) >= 0.9
        proba = head.predict_proba(Xv)
        assert proba.shape == (len(yv), 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)

    def test_arbitrary_label_values_round_trip(self, name, data):
        X, y, Xv, _ = data
        labels = np.array([3, 7, 11])
        head = make_head(name, **FAST).fit(X, labels[y])
        np.testing.assert_array_equal(head.classes_, labels)
        assert set(head.predict(Xv)) <= set(labels)

    def test_deterministic_given_random_state(self, name, data):
        X, y, Xv, yv = data
        a = make_head(name, random_state=3, **FAST).fit(X, y, Xv, yv).predict_proba(Xv)
        b = make_head(name, random_state=3, **FAST).fit(X, y, Xv, yv).predict_proba(Xv)
        np.testing.assert_array_equal(a, b)

    def test_clone_gives_an_unfitted_copy_with_same_params(self, name, data):
        head = make_head(name, **FAST).fit(*data[:2])
        copy = clone(head)
        assert copy.get_params() == head.get_params()
        with pytest.raises(NotFittedError, match="not fitted"):
            copy.predict(data[0])

    def test_scaler_learns_from_training_rows_only(self, name, data):
        X, y, Xv, yv = data
        head = make_head(name, **FAST).fit(X, y, Xv + 100.0, yv)
        np.testing.assert_allclose(head.scaler_.mean_, X.mean(axis=0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(head.scaler_.scale_, X.std(axis=0), rtol=1e-5)

    def test_predict_refuses_other_feature_width(self, name, data):
        head = make_head(name, **FAST).fit(*data[:2])
        with pytest.raises(ConfigError, match="fitted on 5"):
            head.predict(np.zeros((2, 4), np.float32))

    def test_single_class_is_refused_at_fit(self, name, data):
        with pytest.raises(ConfigError, match="at least 2 classes"):
            make_head(name).fit(data[0], np.zeros(len(data[0]), int))

    def test_val_without_labels_is_refused(self, name, data):
        with pytest.raises(ConfigError, match="both X_val and y_val"):
            make_head(name, **FAST).fit(data[0], data[1], X_val=data[2])


@pytest.mark.parametrize(
    "factory, params, message",
    [
        (LinearHead, {"lr": 0.0}, "`lr` must be a positive"),
        (LinearHead, {"weight_decay": -1.0}, "`weight_decay` must be"),
        (LinearHead, {"max_epochs": 0}, "`max_epochs` must be an integer"),
        (MLP3Head, {"patience": 0}, "`patience` must be None"),
        (MLP3Head, {"hidden": 0}, "`hidden` must be"),
        (LinearHead, {"device": "tpu"}, "`device` must be one of"),
        (LinearHead, {"optimizer": "sgd"}, r"`optimizer` must be one of \{'lbfgs', 'adamw', 'adam'\}; got 'sgd'"),
        (MLP3Head, {"optimizer": "lbfgs"}, r"`optimizer` must be one of \{'adamw', 'adam'\}; got 'lbfgs'"),
        (MLP3Head, {"dropout": 1.0}, r"`dropout` must be a number in \[0, 1\)"),
        (LinearHead, {"whiten": 0.0}, "`whiten` must be None or a positive eigenvalue floor"),
        (LogRegHead, {"C": -1.0}, "`C` must be a positive"),
        (LogRegHead, {"n_threads": 0}, "`n_threads` must be None"),
    ],
)
def test_bad_parameters_are_refused_in_fit_not_init(factory, params, message, data):
    head = factory(**params)  # storing never validates (sklearn contract)
    with pytest.raises(ConfigError, match=message):
        head.fit(data[0], data[1])


@pytest.mark.parametrize("optimizer", ["lbfgs", "adamw"])
def test_early_stopping_keeps_the_best_validation_epoch(data, optimizer):
    X, y, Xv, yv = data
    head = LinearHead(optimizer=optimizer, max_epochs=30, patience=4, batch_size=16, lr=1e-2).fit(X, y, Xv, yv)
    accs = [h["val_accuracy"] for h in head.history_]
    assert head.best_epoch_ == 1 + int(np.argmax(accs))  # first epoch of the best score
    assert head.best_val_accuracy_ == max(accs)
    assert len(head.history_) <= head.best_epoch_ + 4
    assert np.mean(head.predict(Xv) == yv) == pytest.approx(head.best_val_accuracy_)


def test_without_validation_trains_all_epochs():
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = np.arange(40) % 2
    head = LinearHead(optimizer="adamw", max_epochs=7, patience=2).fit(X, y)
    assert len(head.history_) == 7 and head.best_epoch_ == 7 and head.best_val_accuracy_ is None


def test_lbfgs_without_validation_stops_at_convergence_and_keeps_the_last_epoch():
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    head = LinearHead(max_epochs=50, weight_decay=1e-2).fit(X, np.arange(40) % 2)
    assert head.best_epoch_ == len(head.history_) < 50  # converged: a strongly convex problem in 3 dimensions


def test_mlp3_is_the_seed_three_layer_head_with_dropout_after_each_hidden_layer():
    X = np.random.default_rng(0).normal(size=(20, 384)).astype(np.float32)
    head = MLP3Head(max_epochs=1, dropout=0.3).fit(X, np.arange(20) % 4)
    linears = [m for m in head.network_ if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(384, 256), (256, 256), (256, 4)]
    assert [type(m).__name__ for m in head.network_][1:3] == ["ReLU", "Dropout"]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in head.network_) == 2
    seed = MLP3Head(max_epochs=1, dropout=0.0).fit(X, np.arange(20) % 4)
    assert [type(m).__name__ for m in seed.network_] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_fit_restores_the_callers_thread_count(data):
    before = torch.get_num_threads()
    LinearHead(max_epochs=2, n_threads=1).fit(*data[:2])
    assert torch.get_num_threads() == before


def test_logreg_records_convergence(data):
    assert LogRegHead().fit(*data[:2]).converged_ is True
    assert LogRegHead(max_iter=1).fit(*data[:2]).converged_ is False


def test_registry_lists_valid_names_and_small_grids():
    with pytest.raises(ConfigError, match=r"`head` must be one of \{'linear', 'mlp3', 'logreg'\}"):
        get_head_spec("svm")
    assert all(1 <= len(spec.grid) <= 4 for spec in HEADS.values())
    assert {frozenset(p) for p in HEADS["linear"].grid} == {frozenset({"weight_decay"})}
    assert {frozenset(p) for p in HEADS["mlp3"].grid} == {frozenset({"weight_decay", "dropout"})}
    assert {frozenset(p) for p in HEADS["logreg"].grid} == {frozenset({"C"})}


def test_make_head_drops_options_a_head_does_not_take():
    head = make_head("logreg", C=2.0, device="cpu", max_epochs=5)
    assert head.C == 2.0 and "device" not in head.get_params()


def test_fitted_heads_record_the_device_they_ran_on(data):
    """logreg is scikit-learn: CPU whatever was requested; torch heads train where they were told."""
    X, y, _, _ = data
    assert make_head("logreg", device="cuda").fit(X, y).device_ == "cpu"
    assert make_head("linear", device="cpu", **FAST).fit(X, y).device_ == "cpu"
    assert [name for name in HEADS if takes_device(name)] == ["linear", "mlp3"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_check_head_device_refuses_cuda_only_where_a_head_would_use_it():
    check_head_device(["logreg"], "cuda")  # nothing runs on it: nothing to refuse here (the runner decides)
    with pytest.raises(BackendUnavailableError, match=r"device 'cuda' was requested but torch sees no CUDA device"):
        check_head_device(["logreg", "mlp3"], "cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_an_error_not_a_cpu_run(data):
    with pytest.raises(BackendUnavailableError, match="no CUDA device"):
        LinearHead(device="cuda").fit(*data[:2])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("factory", [LinearHead, MLP3Head])
def test_cuda_training_matches_cpu_quality(factory, data):
    X, y, Xv, yv = data
    head = factory(device="cuda", **FAST).fit(X, y, Xv, yv)
    assert next(head.network_.parameters()).is_cuda
    assert np.mean(head.predict(Xv) == yv) >= 0.9


# ---------------------------------------------------------------- recipes reach the convex optimum


def _correlated_mixture(n: int, seed: int, dim: int = 8, n_classes: int = 3, nuisance: float = 30.0):
    """Gaussian classes (unit noise, means ~N(0, 1)) under two loud shared factors (std ``nuisance``)
    mixed into every dimension: standardising leaves it ill-conditioned, like pooled AudioSep features."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(123).normal(size=(2, dim))
    means = np.random.default_rng(321).normal(size=(n_classes, dim))
    y = rng.integers(0, n_classes, size=n)
    X = means[y] + rng.normal(size=(n, dim)) + nuisance * rng.normal(size=(n, 2)) @ mixing
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def mixture():
    """(train, validation, test) of the correlated mixture and logistic regression's test accuracy,
    its C chosen on validation from the registered grid as the protocols choose it."""
    (X, y), (Xv, yv), (Xt, yt) = (_correlated_mixture(n, seed) for n, seed in ((300, 0), (100, 1), (3000, 2)))
    best = max(
        (LogRegHead(**point).fit(X, y) for point in HEADS["logreg"].grid), key=lambda m: np.mean(m.predict(Xv) == yv)
    )
    return (X, y, Xv, yv, Xt, yt), float(np.mean(best.predict(Xt) == yt))


@pytest.mark.parametrize("name", ["linear", "mlp3"])
def test_default_recipes_reach_the_logistic_regression_optimum(mixture, name):
    (X, y, Xv, yv, Xt, yt), reference = mixture
    head = make_head(name).fit(X, y, Xv, yv)
    assert reference > 0.8  # a problem with a clear optimum (chance is 1/3)
    assert np.mean(head.predict(Xt) == yt) >= reference - 0.01


def test_whitening_is_what_lets_adamw_train_on_correlated_features(mixture):
    (X, y, Xv, yv, Xt, yt), reference = mixture
    whitened = LinearHead(optimizer="adamw").fit(X, y, Xv, yv)
    standardised = LinearHead(optimizer="adamw", whiten=None).fit(X, y, Xv, yv)
    assert np.mean(whitened.predict(Xt) == yt) >= reference - 0.05
    assert np.mean(standardised.predict(Xt) == yt) <= reference - 0.2  # stuck along the loud factors


def test_lbfgs_minimises_the_logistic_regression_objective(data):
    """weight_decay = 1 / (C·N) without whitening is LogisticRegression(C)'s objective: same probabilities."""
    X, y, Xv, _ = data
    C = 0.5
    head = LinearHead(whiten=None, weight_decay=1.0 / (C * len(X)), max_epochs=500, patience=None).fit(X, y)
    reference = LogisticRegression(C=C, tol=1e-8, max_iter=5000).fit(head.scaler_.transform(X), y)
    np.testing.assert_allclose(head.predict_proba(Xv), reference.predict_proba(head.scaler_.transform(Xv)), atol=1e-3)


def test_whitening_is_fitted_on_the_training_rows_only(data):
    X, y, Xv, yv = data
    head = LinearHead(whiten=1e-6, max_epochs=2).fit(X, y, Xv + 100.0, yv)
    np.testing.assert_allclose(np.cov(head._scale(X), rowvar=False), np.eye(X.shape[1]), atol=1e-3)
    assert LinearHead(whiten=None, max_epochs=2).fit(X, y).whitening_ is None
