"""The `pruner` group: conf/pruner/*.yaml (Optuna's pruners, for the trials of a search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class NoPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    """Prune a trial whose val error at an epoch is worse than the median of earlier trials'."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 3  # trials that complete before any pruning
    n_warmup_steps: int = 1  # epochs of every trial that are never pruned
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3


OPTIONS = {"none": NoPrunerConfig, "median": MedianPrunerConfig, "hyperband": HyperbandPrunerConfig}
