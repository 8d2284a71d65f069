"""The `optimizer` group: conf/optimizer/*.yaml (torch's optimizers, built partially: fit gives the parameters)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from colorize.config.checks import Checked


class _Optimizer(Checked):
    GROUP = "optimizer"
    lr: float  # the subclasses' fields, declared for the check below
    weight_decay: float

    def check_lr_and_decay(self) -> None:
        self.require(math.isfinite(self.lr) and self.lr > 0, "lr", "must be a finite number > 0")
        self.require(self.weight_decay >= 0, "weight_decay", "must be >= 0")


@dataclass
class SGDConfig(_Optimizer):
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = 0.001
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        self.check_lr_and_decay()
        self.require(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")


@dataclass
class AdamConfig(_Optimizer):
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 0.001
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        self.check_lr_and_decay()


@dataclass
class AdamWConfig(AdamConfig):
    """Adam with decoupled weight decay (torch.optim.AdamW): regularisation for a small dataset."""

    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


OPTIONS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig}
