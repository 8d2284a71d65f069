"""The training callbacks that need no tracker: the checkpoint of every epoch and the console log."""

from __future__ import annotations

import logging
from colorize import names
from colorize.config import plain
from colorize.training.callback import Callback, CallbackContext, TrainState
from colorize.training.checkpoint import LAST, save_checkpoint

log = logging.getLogger("colorize")


class Checkpoint(Callback):
    """`last.pt` in the job's folder after every epoch: weights, optimizer, RNG, history, the config
    and the MLflow run id, written atomically, so a killed run resumes exactly."""

    def setup(self, job: CallbackContext) -> None:
        self.job = job

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        job = self.job
        save_checkpoint(job.output_dir / LAST, job.model, plain(job.cfg.model),
                        train_state=state.to_dict(), run_id=job.run.run_id, config=plain(job.cfg))


class ConsoleLog(Callback):
    """One line per epoch (`epoch 3/24 train_mse ... (5.1s)`), and the epochs a time budget fixed."""

    def setup(self, job: CallbackContext) -> None:
        self.max_minutes = job.cfg.trainer.max_minutes
        self.epochs = job.cfg.trainer.max_epochs
        self.prefix = f"{job.label}: " if job.label else ""

    def on_plan(self, epochs: int, measured: bool) -> None:
        self.epochs = epochs
        if measured:
            log.info("%s%g min budget: %d epochs fit at the first epoch's pace (replay with trainer.max_epochs=%d)",
                     self.prefix, self.max_minutes, epochs, epochs)

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        log.info("%sepoch %3d/%d  train_mse %.5f  val_mse %.5f  val_acc12 %.4f  (%.1fs)",
                 self.prefix, epoch, self.epochs, metrics[names.TRAIN_MSE], metrics[names.VAL_MSE],
                 metrics[names.VAL_ACCURACY], metrics[names.EPOCH_SECONDS])
