"""Early stopping as in the study: stop after `patience` epochs without a val-MSE improvement (or
without one of another logged val metric, lower or higher being better)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from colorize import names


@dataclass
class EarlyStopping:
    """An epoch improves when its `monitor` value beats the best so far by more than `epsilon`
    (below it for mode "min", above it for "max").

    Feed one value per epoch to :meth:`step`; it returns True when that epoch is the new best.
    :attr:`should_stop` turns True after `patience` consecutive epochs without improvement.
    """

    epsilon: float = 5e-6
    patience: int = 5
    monitor: str = names.VAL_MSE
    mode: str = "min"
    best_loss: float = math.inf  # the best value so far, negated for mode "max" (lower is always better here)
    best_epoch: int = 0
    bad_epochs: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode={self.mode!r} is invalid: must be min or max")

    def step(self, epoch: int, value: float) -> bool:
        score = value if self.mode == "min" else -value
        if score < self.best_loss - self.epsilon:
            self.best_loss, self.best_epoch, self.bad_epochs = score, epoch, 0
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
