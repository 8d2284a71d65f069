"""The training callback that tracks: per-epoch metrics into the job's MLflow run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from colorize import names
from colorize.training.loop import Callback, TrainState

if TYPE_CHECKING:
    from colorize.job import Job



class MlflowMetrics(Callback):
    """Every epoch's metrics at step = epoch; the epochs a time budget fixed as a param."""

    def setup(self, job: Job) -> None:
        self.run = job.run

    def on_plan(self, epochs: int, measured: bool) -> None:
        if measured:
            self.run.log_params({names.BUDGET_EPOCHS: epochs})

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        self.run.log_metrics(metrics, step=epoch)
