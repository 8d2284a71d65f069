"""The protocol of what watches training (MLflow metrics, checkpoints, the console log, Optuna
reporting): the hooks `fit` calls, what a hook gets, and the state a run resumes from. The built-in
callbacks that need no tracker are in `callbacks.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, runtime_checkable

from torch import Tensor, nn


class StopTraining(Exception):
    """Raised by an epoch callback to end training after the current epoch (e.g. pruning)."""

    tag = "stopped"  # the MLflow tag set to "true" on a run stopped this way


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped (after `epoch` epochs).

    Plain tensors, dicts and numbers only, so it loads with ``torch.load(weights_only=True)``.
    """

    epoch: int
    model: dict
    optimizer: dict
    generator: Tensor
    best_model: dict
    history: list
    early_stopping: Optional[dict] = None
    scheduler: Optional[dict] = None
    budget_epochs: Optional[int] = None  # N fixed by the time budget: a resumed run keeps it
    ema: Optional[dict] = None  # the averaged weights (trainer.ema)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, state: dict) -> "TrainState":
        return cls(**state)


@runtime_checkable
class RunRecord(Protocol):
    """What a callback may do with its job's run (colorize.tracking.store.TrackedRun is one)."""

    run_id: str

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...


@dataclass
class CallbackContext:
    """What a callback gets in `setup`, before training starts: the job's run, model, composed config
    (a DictConfig) and output folder; `label` names the trial in a fused group's shared log; `sweeper`
    holds an Optuna search's `storage` and `study_name` (empty otherwise)."""

    run: RunRecord
    model: nn.Module
    cfg: Any
    output_dir: Path
    label: str = ""
    sweeper: Mapping[str, Any] = field(default_factory=dict)


class Callback:
    """The one protocol of what watches training (MLflow metrics, checkpoints, the console log, Optuna
    reporting): override the hooks you need. Built from the `callbacks` config group, given the job's
    objects by `setup`, then called by `fit`."""

    def setup(self, job: CallbackContext) -> None:
        """The job's run, model, config and output folder, before training starts."""

    def on_plan(self, epochs: int, measured: bool) -> None:
        """The run's length N: known at the start, or `measured` from the first epoch's pace (a time
        budget), then called after epoch 1 and before its `on_epoch_end`."""

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        """After every epoch, in the callbacks' order; may raise StopTraining to end training here."""

    def teardown(self) -> None:
        """After training, however it ended (called by the job)."""
