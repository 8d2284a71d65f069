"""The primary config (conf/train.yaml) and the registry of every group's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from omegaconf import MISSING

from colorize.config import data, loss, model, optimizer, pruner, scheduler, trainer, tracking
from colorize.config.tracking import MlflowConfig
from colorize.config.trainer import TrainerConfig


@dataclass
class TrainConfig:
    model: Any = MISSING
    optimizer: Any = MISSING
    loss: Any = MISSING
    data: Any = MISSING
    trainer: TrainerConfig = MISSING
    tracking: MlflowConfig = MISSING
    scheduler: Any = MISSING
    # Optuna pruner for trials of the `search` sweep (only used when `optuna_trial` is set)
    pruner: Any = MISSING
    # set by the colorize_optuna sweeper: the Optuna trial number this job evaluates (names.TRIAL_KEY)
    optuna_trial: Optional[int] = None
    # what watches training (colorize.training.callback.Callback), name -> {_target_: ...}, in order
    callbacks: dict[str, Any] = field(default_factory=dict)


# group -> option -> schema: conf/<group>/<option>.yaml names `<option>_schema` first in its defaults
GROUPS: dict[str, Mapping[str, type]] = {
    "model": model.OPTIONS, "optimizer": optimizer.OPTIONS, "loss": loss.OPTIONS, "data": data.OPTIONS,
    "trainer": trainer.OPTIONS, "tracking": tracking.OPTIONS, "scheduler": scheduler.OPTIONS, "pruner": pruner.OPTIONS,
}
