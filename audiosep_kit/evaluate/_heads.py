"""Classifier heads trained on frozen features, following the scikit-learn estimator contract.

Every head records where it ran in ``device_`` once fitted: torch heads on the device they were
given, scikit-learn's logistic regression always on the CPU (reports must say what ran, not what was
asked for). Every head standardises its input with a ``StandardScaler`` fitted in ``fit`` on the training rows
only, so no caller can fit the scaler on validation or test data by mistake. Torch heads choose
their epoch on the validation rows passed to ``fit`` (best validation accuracy, optional patience);
which rows those are is decided by the protocol, never by the head.
"""

from __future__ import annotations

import copy
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


class _StandardizingHead(ClassifierMixin, BaseEstimator):
    """Shared plumbing: input checks, a scaler fitted on the training rows only, thread limits.

    Subclasses implement ``_check_params``, ``_fit_scaled`` (on standardised rows) and ``_proba``.
    """

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> _StandardizingHead:
        """Fit on (X, y). (X_val, y_val), if given, is scaled with the training statistics and
        only ever scored (torch heads keep their best validation epoch), never trained on."""
        self._check_params()
        Xs, y_index = self._fit_input(X, y)
        val = self._val_input(X_val, y_val)
        with _threads(self.n_threads):
            self._fit_scaled(Xs, y_index, val)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, n_classes) class probabilities, columns in ``classes_`` order."""
        Xs = self._predict_input(X)
        with _threads(self.n_threads):
            return self._proba(Xs)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (values of ``classes_``) of the rows of X."""
        proba = self.predict_proba(X)  # checks fitted before classes_ is touched
        return self.classes_[np.argmax(proba, axis=1)]

    def _check_params(self) -> None:
        if self.n_threads is not None and not (isinstance(self.n_threads, int) and self.n_threads >= 1):
            raise ConfigError(f"`n_threads` must be None or an integer >= 1; got {self.n_threads!r}.")

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
        return self.scaler_.transform(X).astype(np.float32, copy=False)

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
    """Minibatch Adam training with best-validation-epoch selection; subclasses build the network."""

    def __init__(
        self,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int | None = 20,
        standardize: bool = True,
        random_state: int = 0,
        device: str = "cpu",
        n_threads: int | None = 1,
    ):
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.standardize = standardize
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"`lr` must be a positive number; got {self.lr!r}.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"`weight_decay` must be a number >= 0; got {self.weight_decay!r}.")
        for name in ("batch_size", "max_epochs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"`{name}` must be an integer >= 1; got {value!r}.")
        if self.patience is not None and not (isinstance(self.patience, int) and self.patience >= 1):
            raise ConfigError(f"`patience` must be None or an integer >= 1; got {self.patience!r}.")
        torch_device(self.device)  # 'cuda' without CUDA is an error here, never a silent CPU run

    def _fit_scaled(self, Xs: np.ndarray, y_index: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> None:
        dev = torch_device(self.device)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(self.random_state)
            net = self._build(Xs.shape[1], len(self.classes_)).to(dev)
        val_t = None if val is None else (torch.from_numpy(val[0]).to(dev), torch.from_numpy(val[1]).to(dev))
        X_t, y_t = torch.from_numpy(Xs).to(dev), torch.from_numpy(y_index).to(dev)
        self.history_, self.best_epoch_ = _train(net, X_t, y_t, val_t, self)
        self.network_ = net.eval()
        self.device_ = str(dev)  # where it trained: what reports record
        scores = [h["val_accuracy"] for h in self.history_ if "val_accuracy" in h]
        self.best_val_accuracy_ = max(scores) if scores else None

    def _proba(self, Xs: np.ndarray) -> np.ndarray:
        dev = next(self.network_.parameters()).device
        with torch.no_grad():
            logits = self.network_(torch.from_numpy(Xs).to(dev))
        return torch.softmax(logits, dim=1).cpu().numpy()


def _train(
    net: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    val: tuple[torch.Tensor, torch.Tensor] | None,
    head: _TorchHead,
) -> tuple[list[dict], int]:
    """Adam minibatch epochs; returns the per-epoch history and the epoch whose weights ``net`` keeps.

    Ties keep the earliest best epoch; with ``patience`` training stops that many epochs after it.
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=head.lr, weight_decay=head.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(head.random_state)
    history: list[dict] = []
    best_acc, best_epoch, best_state = -1.0, head.max_epochs, None
    for epoch in range(1, head.max_epochs + 1):
        net.train()
        order = torch.randperm(X.shape[0], generator=generator).to(X.device)
        total = 0.0
        for start in range(0, X.shape[0], head.batch_size):
            batch = order[start : start + head.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(net(X[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.numel()
        record = {"epoch": epoch, "train_loss": total / X.shape[0]}
        if val is not None:
            net.eval()
            with torch.no_grad():
                record["val_accuracy"] = float((net(val[0]).argmax(1) == val[1]).float().mean())
            if record["val_accuracy"] > best_acc:
                best_acc, best_epoch = record["val_accuracy"], epoch
                best_state = copy.deepcopy(net.state_dict())
        history.append(record)
        if val is not None and head.patience is not None and epoch - best_epoch >= head.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return history, best_epoch


class LinearHead(_TorchHead):
    """One Linear layer on standardised features: the plainest probe of what the features hold."""

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        return nn.Linear(n_features, n_classes)


class MLP3Head(_TorchHead):
    """The seed project's head: D → hidden → hidden → C with ReLU (384→256→256→C by default)."""

    def __init__(
        self,
        *,
        hidden: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int | None = 20,
        standardize: bool = True,
        random_state: int = 0,
        device: str = "cpu",
        n_threads: int | None = 1,
    ):
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            standardize=standardize,
            random_state=random_state,
            device=device,
            n_threads=n_threads,
        )
        self.hidden = hidden

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.hidden, int) and self.hidden >= 1):
            raise ConfigError(f"`hidden` must be an integer >= 1; got {self.hidden!r}.")

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        h = self.hidden
        return nn.Sequential(nn.Linear(n_features, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, n_classes))


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
        self.C = C
        self.max_iter = max_iter
        self.standardize = standardize
        self.random_state = random_state
        self.n_threads = n_threads

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


_TORCH_GRID = tuple({"lr": lr, "weight_decay": wd} for lr in (1e-3, 3e-3) for wd in (0.0, 1e-3))

HEADS: dict[str, HeadSpec] = {
    "linear": HeadSpec(LinearHead, _TORCH_GRID),
    "mlp3": HeadSpec(MLP3Head, _TORCH_GRID),
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
