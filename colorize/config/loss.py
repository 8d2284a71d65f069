"""The `loss` group: conf/loss/*.yaml (colorize/training/losses.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from colorize.config.checks import Checked


@dataclass
class MseLossConfig(Checked):
    """Mean squared error: the study's loss (it pulls each value to the conditional mean)."""

    GROUP = "loss"
    _target_: str = "colorize.training.losses.mse"
    _partial_: bool = True


@dataclass
class L1LossConfig(Checked):
    """Mean absolute error (the conditional median)."""

    GROUP = "loss"
    _target_: str = "colorize.training.losses.l1"
    _partial_: bool = True


@dataclass
class CharbonnierLossConfig(Checked):
    """Mean of sqrt(e^2 + epsilon^2): a smooth L1."""

    GROUP = "loss"
    _target_: str = "colorize.training.losses.charbonnier"
    _partial_: bool = True
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        self.require(self.epsilon > 0, "epsilon", "must be > 0")


@dataclass
class CastSplitLossConfig(Checked):
    """Charbonnier on each image's local error + cast_weight x Charbonnier on its mean error (cast),
    and on each b x b block's mean error less the coarser one's, for b in blocks."""

    GROUP = "loss"
    _target_: str = "colorize.training.losses.cast_split"
    _partial_: bool = True
    epsilon: float = 1e-3
    cast_weight: float = 1.0
    # block sides whose mean errors are split off too ([] for the cast alone); these four gave the
    # recipe's best figures (docs/stronger-model.md)
    blocks: list[int] = field(default_factory=lambda: [40, 20, 10, 5])

    def __post_init__(self) -> None:
        self.require(self.epsilon > 0, "epsilon", "must be > 0")
        self.require(self.cast_weight >= 0, "cast_weight", "must be >= 0")
        self.require(all(side > 0 for side in self.blocks), "blocks", "must hold block sides > 0")


@dataclass
class MarginLossConfig(Checked):
    """A smooth 12-margin error: mean of 1 - exp(-(e/sigma)^2), plus mse_weight x MSE."""

    GROUP = "loss"
    _target_: str = "colorize.training.losses.margin"
    _partial_: bool = True
    sigma: float = 12 / 127.5  # the metric's margin in [-1, 1] units
    mse_weight: float = 0.0

    def __post_init__(self) -> None:
        self.require(self.sigma > 0, "sigma", "must be > 0")
        self.require(self.mse_weight >= 0, "mse_weight", "must be >= 0")


OPTIONS = {"mse": MseLossConfig, "l1": L1LossConfig, "charbonnier": CharbonnierLossConfig,
           "cast_split": CastSplitLossConfig, "margin": MarginLossConfig}
