"""Classifier heads trained on frozen features, following the scikit-learn estimator contract.

Every head records where it ran in ``device_`` once fitted: torch heads on the device they were
given, scikit-learn's logistic regression always on the CPU (reports must say what ran, not what was
asked for). Every head standardises its input with a ``StandardScaler`` fitted in ``fit`` on the
training rows only, so no caller can fit it on validation or test data by mistake. Torch heads choose
their epoch on the validation rows passed to ``fit`` (best validation accuracy, optional patience);
which rows those are is decided by the protocol, never by the head.

Why the torch heads also *whiten* (``whiten=1e-3``, PCA on the standardised training rows, each
eigenvalue λ rescaled by 1/sqrt(λ + 1e-3)): standardising scales each dimension but leaves them
correlated, and AudioSep's pooled features are extremely so. On the seed ESC-50 features two
principal components hold 90 % of the standardised variance and the condition number is ~1e9, so
first-order optimisers (Adam, AdamW) barely move along the low-variance directions that separate
the classes and early stopping freezes them there. Measured on those features (evar protocol, 5 folds,
seed 0, test accuracy): AdamW ``mlp3`` 42.9 % standardised → 63.2 % whitened; AdamW ``linear`` 48.4 %
→ 57.5 %. The ε floor keeps float noise (λ ~ 1e-7) from being blown up to unit variance (ε = 1e-6
cost mlp3 7 points on folds 1-2). Logistic regression (second-order lbfgs) needs no whitening and keeps
its L2 penalty in the standardised space, as the reference probe everyone reports.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
from threadpoolctl import threadpool_limits
from torch import nn

from audiosep_kit._devices import torch_device
from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate._training import TrainSettings, train_lbfgs, train_minibatch


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Cap torch's and BLAS's thread pools for a head's tiny matmuls, then restore them.

    Why: on a shared 2-core machine a 2-thread pool made a 20-epoch MLP fit 20x slower than one
    thread (1.9 s vs 43 s) and lbfgs 80x slower; small heads gain nothing from threads anyway.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _store(head: BaseEstimator, params: dict) -> None:
    """``__init__`` only stores its keyword arguments (scikit-learn contract); validation is in ``fit``."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(head, name, value)


def _whitening(Xs: np.ndarray, eps: float) -> np.ndarray:
    """(D, D) matrix W with ``Xs @ W`` decorrelated: eigenvectors of the covariance of the (centred,
    standardised) rows ``Xs`` (N, D), each scaled by 1/sqrt(λ + eps)."""
    cov = np.cov(Xs.astype(np.float64), rowvar=False).reshape(Xs.shape[1], Xs.shape[1])
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors / np.sqrt(np.clip(eigenvalues, 0.0, None) + eps)).astype(np.float32)


class _StandardizingHead(ClassifierMixin, BaseEstimator):
    """Shared plumbing: input checks, a scaler (and whitening) fitted on the training rows only, thread limits.

    Subclasses implement ``_check_params``, ``_fit_scaled`` (on standardised rows) and ``_proba``.
    """

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> _StandardizingHead:
        """Fit on (X, y). (X_val, y_val), if given, is scaled with the training statistics and
        only ever scored (torch heads keep their best validation epoch), never trained on."""
        self._check_params()
        # The whitening's eigh too: 3.5 s with 2 BLAS threads on 2 busy cores, 0.1 s with 1.
        with _threads(self.n_threads):
            Xs, y_index = self._fit_input(X, y)
            val = self._val_input(X_val, y_val)
            self._fit_scaled(Xs, y_index, val)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, n_classes) class probabilities, columns in ``classes_`` order."""
        with _threads(self.n_threads):
            return self._proba(self._predict_input(X))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (values of ``classes_``) of the rows of X."""
        proba = self.predict_proba(X)  # checks fitted before classes_ is touched
        return self.classes_[np.argmax(proba, axis=1)]

    def _check_params(self) -> None:
        if self.n_threads is not None and not (isinstance(self.n_threads, int) and self.n_threads >= 1):
            raise ConfigError(f"`n_threads` must be None or an integer >= 1; got {self.n_threads!r}.")

    def _whiten_eps(self) -> float | None:
        """The whitening floor ε, or None to standardise only (the default; torch heads override)."""
        return None

    def _fit_scaled(self, Xs: np.ndarray, y_index: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> None:
        raise NotImplementedError

    def _proba(self, Xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fit_input(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = check_X_y(X, y, dtype=np.float32, y_numeric=True)
        if len(np.unique(y)) < 2:
            raise ConfigError(f"a head needs at least 2 classes in y; got {np.unique(y).tolist()}.")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self.n_features_in_ = X.shape[1]
        # Fitted here, on the training rows only; standardize=False makes it the identity.
        self.scaler_ = StandardScaler(with_mean=self.standardize, with_std=self.standardize).fit(X)
        eps = self._whiten_eps()
        self.whitening_ = None
        if eps is not None:
            self.whitening_ = _whitening(self.scaler_.transform(X), eps)
        return self._scale(X), y_index

    def _val_input(self, X_val: Any, y_val: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """Scaled validation rows and class indices (-1 for a class absent from training: never right)."""
        if X_val is None and y_val is None:
            return None
        if X_val is None or y_val is None:
            raise ConfigError("pass both X_val and y_val, or neither; got only one of them.")
        X_val, y_val = check_X_y(X_val, y_val, dtype=np.float32, y_numeric=True)
        if X_val.shape[1] != self.n_features_in_:
            raise ConfigError(f"X_val has {X_val.shape[1]} features; X has {self.n_features_in_}.")
        lookup = {c: i for i, c in enumerate(self.classes_)}
        return self._scale(X_val), np.array([lookup.get(v, -1) for v in y_val], dtype=np.int64)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        Xs = self.scaler_.transform(X).astype(np.float32, copy=False)
        # The training mean was removed by the scaler (or is kept, standardize=False): rotate only.
        return Xs if self.whitening_ is None else Xs @ self.whitening_

    def _predict_input(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = check_array(X, dtype=np.float32)
        if X.shape[1] != self.n_features_in_:
            raise ConfigError(
                f"X has {X.shape[1]} features but this head was fitted on {self.n_features_in_}; "
                "pass features from the same extractor configuration."
            )
        return self._scale(X)


class _TorchHead(_StandardizingHead):
    """Minibatch Adam/AdamW (or full-batch L-BFGS) training with best-validation-epoch selection.

    Subclasses store their parameters (``__init__``), name their ``_OPTIMIZERS`` and build the network.
    """

    _OPTIMIZERS: tuple[str, ...] = ("adamw", "adam")

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _whiten_eps(self) -> float | None:
        return self.whiten

    def _check_params(self) -> None:
        super()._check_params()
        check_choice("optimizer", self.optimizer, self._OPTIMIZERS)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"`lr` must be a positive number; got {self.lr!r}.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"`weight_decay` must be a number >= 0; got {self.weight_decay!r}.")
        if self.whiten is not None and not (isinstance(self.whiten, (int, float)) and self.whiten > 0):
            raise ConfigError(f"`whiten` must be None or a positive eigenvalue floor; got {self.whiten!r}.")
        for name in ("batch_size", "max_epochs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"`{name}` must be an integer >= 1; got {value!r}.")
        if self.patience is not None and not (isinstance(self.patience, int) and self.patience >= 1):
            raise ConfigError(f"`patience` must be None or an integer >= 1; got {self.patience!r}.")
        torch_device(self.device)  # 'cuda' without CUDA is an error here, never a silent CPU run

    def _fit_scaled(self, Xs: np.ndarray, y_index: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> None:
        dev = torch_device(self.device)
        val_t = None if val is None else (torch.from_numpy(val[0]).to(dev), torch.from_numpy(val[1]).to(dev))
        X_t, y_t = torch.from_numpy(Xs).to(dev), torch.from_numpy(y_index).to(dev)
        settings = TrainSettings(
            self.optimizer, self.lr, self.weight_decay, self.batch_size, self.max_epochs, self.patience,
            self.random_state,
        )  # fmt: skip
        loop = train_lbfgs if self.optimizer == "lbfgs" else train_minibatch
        # Initialisation and dropout masks draw from a generator seeded here, never the caller's global state.
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(self.random_state)
            net = self._build(Xs.shape[1], len(self.classes_)).to(dev)
            self.history_, self.best_epoch_ = loop(net, X_t, y_t, val_t, settings)
        self.network_ = net.eval()
        self.device_ = str(dev)  # where it trained: what reports record
        scores = [h["val_accuracy"] for h in self.history_ if "val_accuracy" in h]
        self.best_val_accuracy_ = max(scores) if scores else None

    def _proba(self, Xs: np.ndarray) -> np.ndarray:
        dev = next(self.network_.parameters()).device
        with torch.no_grad():
            logits = self.network_(torch.from_numpy(Xs).to(dev))
        return torch.softmax(logits, dim=1).cpu().numpy()


class LinearHead(_TorchHead):
    """One Linear layer on whitened features: the plainest probe of what the features hold.

    ``optimizer``: ``"lbfgs"`` (default) is full-batch L-BFGS on cross-entropy + ``weight_decay``/2·‖W‖²,
    where an epoch is 20 L-BFGS iterations; ``"adamw"`` / ``"adam"`` are minibatch epochs. Why L-BFGS is
    the default: on the seed ESC-50 features (evar, 5 folds, seed 0, whitened, each with its grid) it
    reached 58.4 ± 2.5 % against AdamW's 57.5 ± 3.4 % (lr {1e-3, 3e-3} x weight decay {1e-2, 1e-1}),
    converging in 2-4 epochs (about 1 s a fit) where AdamW needs 40-70: the problem is convex and
    small, so a second-order method finds its optimum where minibatch steps stop short of it.
    ``"adam"`` (standardised only) is the seed project's recipe.
    """

    _OPTIMIZERS = ("lbfgs", "adamw", "adam")

    def __init__(
        self,
        *,
        optimizer: str = "lbfgs",
        lr: float = 1e-3,
        weight_decay: float = 1e-3,
        batch_size: int = 128,
        max_epochs: int = 200,
        patience: int | None = 30,
        standardize: bool = True,
        whiten: float | None = 1e-3,
        random_state: int = 0,
        device: str = "cpu",
        n_threads: int | None = 1,
    ):
        _store(self, locals())

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        return nn.Linear(n_features, n_classes)


class MLP3Head(_TorchHead):
    """The seed project's head: D → hidden → hidden → C with ReLU (384→256→256→C by default).

    ``dropout`` > 0 adds a Dropout after each hidden ReLU (the seed had none: ``dropout=0`` is its shape).
    AdamW's decoupled ``weight_decay`` and the dropout are what the selection grid varies.
    """

    def __init__(
        self,
        *,
        hidden: int = 256,
        dropout: float = 0.5,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 128,
        max_epochs: int = 200,
        patience: int | None = 30,
        standardize: bool = True,
        whiten: float | None = 1e-3,
        random_state: int = 0,
        device: str = "cpu",
        n_threads: int | None = 1,
    ):
        _store(self, locals())

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.hidden, int) and self.hidden >= 1):
            raise ConfigError(f"`hidden` must be an integer >= 1; got {self.hidden!r}.")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"`dropout` must be a number in [0, 1); got {self.dropout!r}.")

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        h = self.hidden
        drop = [nn.Dropout(self.dropout)] if self.dropout > 0 else []
        return nn.Sequential(
            nn.Linear(n_features, h), nn.ReLU(), *drop, nn.Linear(h, h), nn.ReLU(), *drop, nn.Linear(h, n_classes)
        )


class LogRegHead(_StandardizingHead):
    """Multinomial logistic regression (lbfgs): a convex probe with no epochs and no seed dependence.

    ``X_val``/``y_val`` are accepted for a uniform ``fit`` signature and only scored (``best_val_accuracy_``).
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        max_iter: int = 1000,
        standardize: bool = True,
        random_state: int = 0,
        n_threads: int | None = 1,
    ):
        _store(self, locals())

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ConfigError(f"`C` must be a positive number; got {self.C!r}.")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ConfigError(f"`max_iter` must be an integer >= 1; got {self.max_iter!r}.")

    def _fit_scaled(self, Xs: np.ndarray, y_index: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> None:
        model = LogisticRegression(C=self.C, solver="lbfgs", max_iter=self.max_iter, random_state=self.random_state)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(Xs, y_index)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.model_ = model
        self.device_ = "cpu"  # scikit-learn runs on the CPU whatever device the evaluation asked for
        self.best_epoch_ = None
        self.history_: list[dict] = []
        self.best_val_accuracy_ = None if val is None else float(np.mean(model.predict(val[0]) == val[1]))

    def _proba(self, Xs: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(Xs)


@dataclass(frozen=True)
class HeadSpec:
    """A registered head: its class, its small selection grid, and whether it trains by epochs."""

    factory: type[Any]
    grid: tuple[dict, ...] = field(default_factory=lambda: ({},))
    by_epoch: bool = True


#: The seed project's recipe (its head defaults: Adam, lr 1e-3, no weight decay, no dropout, standardised
#: only, 100 epochs): what ``--protocol seed`` trains every head with. Nothing else uses it.
SEED_RECIPE: dict[str, Any] = {
    "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "dropout": 0.0, "whiten": None, "batch_size": 64,
    "max_epochs": 100, "patience": None, "C": 1.0,
}  # fmt: skip

#: Grids are sized so that ESC-50 (evar, 5 folds, seed 0, all three heads) takes about 6 min on 2 shared
#: cores. linear (L-BFGS: no learning rate) varies its L2 penalty; mlp3 varies AdamW's weight decay and
#: dropout at a fixed lr 1e-3 (a second learning rate would double mlp3's cost, the largest of the three);
#: logreg varies C (the seed features want little regularisation: C = 10 or 100 wins every fold).
HEADS: dict[str, HeadSpec] = {
    "linear": HeadSpec(LinearHead, tuple({"weight_decay": wd} for wd in (1e-4, 1e-3, 1e-2))),
    "mlp3": HeadSpec(MLP3Head, tuple({"weight_decay": wd, "dropout": p} for wd in (1e-2, 1e-1) for p in (0.2, 0.5))),
    "logreg": HeadSpec(LogRegHead, tuple({"C": c} for c in (1.0, 10.0, 100.0)), by_epoch=False),
}


def get_head_spec(name: str) -> HeadSpec:
    """The registered head ``name``; an unknown name lists the valid ones."""
    return HEADS[check_choice("head", name, HEADS)]


def takes_device(name: str) -> bool:
    """Whether head ``name`` runs on the requested device (torch heads) or always on the CPU (logreg).

    Read from the head's parameters (sklearn's ``_get_param_names``), so a new head needs no flag.
    """
    return "device" in get_head_spec(name).factory._get_param_names()


def check_head_device(heads: Sequence[str], device: str) -> None:
    """Refuse, before any training, a device that the heads using it cannot have (cuda without CUDA)."""
    if any(takes_device(head) for head in heads):
        torch_device(device)


def make_head(name: str, **params: Any) -> _StandardizingHead:
    """A fresh, unfitted head ``name`` with ``params`` (only those its class accepts are passed).

    Options that do not apply to a head (``device`` for logreg, ``max_epochs`` ...) are dropped, so
    a protocol can pass one set of options to every head.
    """
    factory = get_head_spec(name).factory
    accepted = set(factory._get_param_names())
    return factory(**{k: v for k, v in params.items() if k in accepted})
