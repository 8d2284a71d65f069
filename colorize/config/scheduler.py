"""The `scheduler` group: conf/scheduler/*.yaml (colorize/training/schedules.py)."""

from __future__ import annotations

from dataclasses import dataclass

from colorize.config.checks import Checked


@dataclass
class NoSchedulerConfig(Checked):
    """A constant learning rate (the study's setting)."""

    GROUP = "scheduler"


@dataclass
class PlateauSchedulerConfig(Checked):
    """Multiply the learning rate by `factor` when val MSE has not improved for `patience` epochs."""

    GROUP = "scheduler"
    _target_: str = "colorize.training.schedules.plateau"
    _partial_: bool = True
    factor: float = 0.5
    patience: int = 1
    threshold: float = 1e-4

    def __post_init__(self) -> None:
        self.require(0 < self.factor < 1, "factor", "must be in (0, 1)")
        self.require(self.patience >= 0, "patience", "must be >= 0")


@dataclass
class CosineSchedulerConfig(Checked):
    """Anneal the lr along a half cosine from `optimizer.lr` (epoch 1) to `eta_min` (the run's last
    epoch): over `trainer.max_epochs`, or the epochs that fit `trainer.max_minutes`."""

    GROUP = "scheduler"
    _target_: str = "colorize.training.schedules.cosine"
    _partial_: bool = True
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        self.require(self.eta_min >= 0, "eta_min", "must be >= 0")


@dataclass
class LinearSchedulerConfig(CosineSchedulerConfig):
    """Decay the lr in a straight line from `optimizer.lr` (epoch 1) to `eta_min` (the last epoch)."""

    _target_: str = "colorize.training.schedules.linear"


OPTIONS = {"none": NoSchedulerConfig, "plateau": PlateauSchedulerConfig, "cosine": CosineSchedulerConfig,
           "linear": LinearSchedulerConfig}
