"""Optuna pruning for trials launched by Hydra's Optuna sweeper.

Hydra's sweeper asks Optuna for a trial, launches a job with the trial's overrides and tells the
returned value. Pruning needs two more pieces, both thin layers over Optuna's own machinery:

* in the job, :class:`TrialReporter` (a training callback) reopens the study from its RDB storage,
  reports the val error after every epoch and asks the configured Optuna pruner whether to stop; a
  pruned trial is marked with the user attribute ``pruned`` and the job stops early;
* in the sweeper, :class:`colorize.search.storage.PruningAwareStorage` turns the sweeper's
  "complete" for such a trial into Optuna's PRUNED state, with the last reported value, exactly as
  ``study.tell(trial, state=PRUNED)`` would.
"""

from __future__ import annotations

from typing import Optional

import optuna

from colorize import names
from colorize.config import build
from colorize.interrupts import uninterrupted
from colorize.search.recovery import Heartbeat
from colorize.search.storage import open_storage, trial_of
from colorize.tracking.owners import owner_tags
from colorize.training.callback import Callback, CallbackContext, StopTraining, TrainState


class Pruned(StopTraining):
    """Raised from an epoch callback when the pruner stops the trial."""

    tag = names.PRUNED

    def __init__(self, trial_number: int, epoch: int) -> None:
        super().__init__(f"trial {trial_number} pruned after epoch {epoch}")
        self.trial_number, self.epoch = trial_number, epoch


class TrialReporter(Callback):
    """Training callback (the `callbacks` group's `optuna`): in a job that evaluates an Optuna trial
    (`optuna_trial` set by the sweeper), report the objective after every epoch and raise
    :class:`Pruned` when the configured pruner says so; in any other job it does nothing."""

    def __init__(self, objective: str = names.VAL_ERROR) -> None:
        self.objective = objective
        self.trial: Optional[optuna.trial.Trial] = None
        self.quarters: Optional[int] = None  # a time-budgeted run reports at quarters of its N epochs
        self.reported = 0
        self.heartbeat: Optional[Heartbeat] = None

    def setup(self, job: CallbackContext) -> None:
        number = job.cfg.get(names.TRIAL_KEY)
        if number is None:
            return
        storage = open_storage(job.sweeper["storage"])
        with uninterrupted():  # (see on_epoch_end)
            study = optuna.load_study(study_name=job.sweeper["study_name"], storage=storage,
                                      pruner=build(job.cfg.pruner))
            self.trial, trial_id = trial_of(study, number)
            for key, value in owner_tags().items():  # lets a restarted sweep on this host recognise orphans at once
                self.trial.set_user_attr(key, value)
        self.number = number
        self.heartbeat = Heartbeat(storage, trial_id)  # and one on any host, once it falls silent

    def teardown(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def on_plan(self, epochs: int, measured: bool) -> None:
        """A time budget fixed N: epochs mean different amounts of time in different trials (a wide
        net fits fewer), so report at the same fractions of the budget instead -- steps 1..4, the
        quarters -- where the pruner can compare them."""
        if measured:
            self.quarters = epochs

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        if self.trial is None:
            return
        step = epoch
        n = self.quarters or state.budget_epochs  # a budget's N (a resumed run's from its checkpoint)
        if n:
            step = 4 * epoch // n
            if step <= self.reported:  # not yet at the next quarter
                return
            self.reported = step
        with uninterrupted():  # Optuna's writes, as MLflow's: an interrupt waits for the write under way
            self.trial.report(metrics[self.objective], step=step)
            pruned = self.trial.should_prune()
            if pruned:
                self.trial.set_user_attr(names.PRUNED, True)
        if pruned:
            raise Pruned(self.number, epoch)
