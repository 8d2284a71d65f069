"""Early stopping as in the study: stop after `patience` epochs without a val-MSE improvement."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class EarlyStopping:
    """An epoch improves when its loss is below the best so far by more than `epsilon`.

    Feed one loss per epoch to :meth:`step`; it returns True when that epoch is the new best.
    :attr:`should_stop` turns True after `patience` consecutive epochs without improvement.
    """

    epsilon: float = 5e-6
    patience: int = 5
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def step(self, epoch: int, loss: float) -> bool:
        if loss < self.best_loss - self.epsilon:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
