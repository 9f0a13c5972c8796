"""The training loops of the torch heads: minibatch Adam/AdamW epochs, and full-batch L-BFGS.

Both loops keep the weights of the best validation epoch (ties: the earliest) and stop ``patience``
epochs after it; without validation rows they run every epoch and keep the last weights. For L-BFGS
an "epoch" is one optimiser step of :data:`LBFGS_ITERATIONS` full-batch iterations, so early stopping,
``best_epoch_`` and refit (retrain for the chosen number of epochs) mean the same for every solver.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from audiosep_kit.errors import ConfigError

#: Full-batch L-BFGS iterations per "epoch" (one ``LBFGS.step``): often enough to move, rare enough to
#: keep the per-epoch validation pass negligible.
LBFGS_ITERATIONS = 20
#: Relative change of the L-BFGS objective over one epoch below which it has converged (training stops).
LBFGS_TOLERANCE = 1e-7

Validation = tuple[torch.Tensor, torch.Tensor] | None


@dataclass(frozen=True)
class TrainSettings:
    """What a loop needs from its head: the optimiser and its schedule of epochs."""

    optimizer: str  # "adamw", "adam" or "lbfgs"
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int | None
    random_state: int


class _BestEpoch:
    """Remembers the best validation epoch and its weights; says when patience ran out."""

    def __init__(self, net: nn.Module, settings: TrainSettings):
        self.net, self.settings = net, settings
        self.accuracy, self.epoch = -1.0, 0
        self.state: dict[str, Any] | None = None

    def update(self, epoch: int, record: dict, val: Validation) -> bool:
        """Score epoch ``epoch`` on ``val`` into ``record``; True when training should stop."""
        if val is None:
            return False
        self.net.eval()
        with torch.no_grad():
            record["val_accuracy"] = float((self.net(val[0]).argmax(1) == val[1]).float().mean())
        if record["val_accuracy"] > self.accuracy:
            self.accuracy, self.epoch = record["val_accuracy"], epoch
            self.state = copy.deepcopy(self.net.state_dict())
        patience = self.settings.patience
        return patience is not None and epoch - self.epoch >= patience

    def restore(self, last_epoch: int) -> int:
        """Load the best epoch's weights and return that epoch; without validation, ``last_epoch``."""
        if self.state is None:
            return last_epoch
        self.net.load_state_dict(self.state)
        return self.epoch


def train_minibatch(
    net: nn.Module, X: torch.Tensor, y: torch.Tensor, val: Validation, settings: TrainSettings
) -> tuple[list[dict], int]:
    """Shuffled minibatch epochs of Adam or AdamW (decoupled weight decay); (history, kept epoch).

    X: (N, D) standardised features, y: (N,) class indices, val: ((M, D), (M,)) or None.
    """
    factory = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    # foreach: one fused update for all parameters; on the CPU torch defaults to a Python loop over them.
    optimizer = factory(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(settings.random_state)
    best, history = _BestEpoch(net, settings), []
    for epoch in range(1, settings.max_epochs + 1):
        net.train()
        order = torch.randperm(X.shape[0], generator=generator).to(X.device)
        total = 0.0
        for start in range(0, X.shape[0], settings.batch_size):
            batch = order[start : start + settings.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(net(X[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.numel()
        record = {"epoch": epoch, "train_loss": total / X.shape[0]}
        stop = best.update(epoch, record, val)
        history.append(record)
        if stop:
            break
    return history, best.restore(len(history))


def train_lbfgs(
    net: nn.Module, X: torch.Tensor, y: torch.Tensor, val: Validation, settings: TrainSettings
) -> tuple[list[dict], int]:
    """Full-batch L-BFGS (strong Wolfe line search) on mean cross-entropy + ``weight_decay``/2 · ‖W‖².

    ``net`` is one ``nn.Linear``; the penalty leaves its bias out, as scikit-learn does: with
    ``weight_decay = 1 / (C · N)`` this is ``LogisticRegression(C)``'s objective. Stops at convergence,
    at ``max_epochs`` or by patience.
    """
    if not isinstance(net, nn.Linear):
        raise ConfigError(f"L-BFGS trains a single nn.Linear (the linear head); got {type(net).__name__}.")
    optimizer = torch.optim.LBFGS(
        net.parameters(), lr=1.0, max_iter=LBFGS_ITERATIONS, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-7, tolerance_change=1e-10,
    )  # fmt: skip
    loss_fn = nn.CrossEntropyLoss()
    closure = _lbfgs_closure(net, X, y, loss_fn, optimizer, settings.weight_decay)
    best, history, previous = _BestEpoch(net, settings), [], None
    for epoch in range(1, settings.max_epochs + 1):
        net.train()
        loss = float(optimizer.step(closure).detach())
        record = {"epoch": epoch, "train_loss": loss}
        stop = best.update(epoch, record, val)
        history.append(record)
        converged = previous is not None and abs(previous - loss) <= LBFGS_TOLERANCE * max(1.0, abs(loss))
        if stop or converged:
            break
        previous = loss
    return history, best.restore(len(history))


def _lbfgs_closure(
    net: nn.Linear,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    weight_decay: float,
) -> Callable[[], torch.Tensor]:
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(net(X), y) + 0.5 * weight_decay * net.weight.pow(2).sum()
        loss.backward()
        return loss

    return closure
