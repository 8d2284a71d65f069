"""Learning-rate schedules, built once the run knows how many epochs N it will train.

N is `trainer.max_epochs`, or, with a time budget (`trainer.max_minutes`), the number of epochs
that fit it at the first epoch's pace. Every `scheduler` config option is a factory
``(optimizer, epochs) -> scheduler``, so the loop builds whichever one the config names the same way.

`cosine` and `linear` span exactly N epochs: epoch 1 trains at `optimizer.lr`, epoch N at the floor
`eta_min` (torch's CosineAnnealingLR with T_max=N would end one step short of it). They are
:class:`EpochSchedule`\\ s, which tell the loop that the run is as long as its schedule, so early
stopping picks the best epoch but does not end the run early.
"""

from __future__ import annotations

import math
from typing import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau


def cosine_shape(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, along a half cosine."""
    return (1.0 + math.cos(math.pi * progress)) / 2.0


def linear_shape(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, in a straight line."""
    return 1.0 - progress


def lr_at(epoch: int, epochs: int, lr: float, eta_min: float, shape: Callable[[float], float]) -> float:
    """The lr epoch `epoch` (1..epochs) trains with: `lr` at epoch 1, `eta_min` at epoch `epochs`."""
    progress = min(1.0, (epoch - 1) / (epochs - 1)) if epochs > 1 else 0.0
    return eta_min + (lr - eta_min) * shape(progress)


class EpochSchedule(LambdaLR):
    """An lr schedule stepped once per epoch that spans exactly `epochs` epochs (see the module)."""

    def __init__(self, optimizer: Optimizer, epochs: int, eta_min: float, shape: Callable[[float], float]) -> None:
        if epochs < 1:
            raise ValueError(f"epochs={epochs} is invalid: a schedule spans at least 1 epoch")
        bases = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        # LambdaLR multiplies each group's base lr by the factor of the epoch index (0-based)
        def factor(base: float) -> Callable[[int], float]:
            return lambda i: lr_at(i + 1, epochs, base, eta_min, shape) / base

        super().__init__(optimizer, [factor(base) for base in bases])


def cosine(optimizer: Optimizer, epochs: int, eta_min: float = 0.0) -> EpochSchedule:
    return EpochSchedule(optimizer, epochs, eta_min, cosine_shape)


def linear(optimizer: Optimizer, epochs: int, eta_min: float = 0.0) -> EpochSchedule:
    return EpochSchedule(optimizer, epochs, eta_min, linear_shape)


def plateau(optimizer: Optimizer, epochs: int, factor: float = 0.5, patience: int = 1,
            threshold: float = 1e-4) -> ReduceLROnPlateau:
    """torch's ReduceLROnPlateau on val MSE (it has no horizon: `epochs` is not used)."""
    return ReduceLROnPlateau(optimizer, factor=factor, patience=patience, threshold=threshold)


ScheduleFactory = Callable[[Optimizer, int], LRScheduler]
