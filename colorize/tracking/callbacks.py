"""The training callback that tracks: per-epoch metrics into the job's MLflow run."""

from __future__ import annotations

from colorize import names
from colorize.training.callback import Callback, CallbackContext, TrainState

class MlflowMetrics(Callback):
    """Every epoch's metrics at step = epoch; the epochs a time budget fixed as a param."""

    def setup(self, job: CallbackContext) -> None:
        self.run = job.run

    def on_plan(self, epochs: int, measured: bool) -> None:
        if measured:
            self.run.log_params({names.BUDGET_EPOCHS: epochs})

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        self.run.log_metrics(metrics, step=epoch)
