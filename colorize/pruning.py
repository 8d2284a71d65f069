"""Optuna pruning for trials launched by Hydra's Optuna sweeper.

Hydra's sweeper asks Optuna for a trial, launches a job with the trial's overrides and tells the
returned value. Pruning needs two more pieces, both thin layers over Optuna's own machinery:

* in the job, :class:`TrialReporter` reopens the study from its RDB storage, reports the val error
  after every epoch and asks the configured Optuna pruner whether to stop; a pruned trial is marked
  with the user attribute ``pruned`` and the job stops early;
* in the sweeper, :class:`PruningAwareStorage` (an Optuna ``RDBStorage``) turns the sweeper's
  "complete" for such a trial into Optuna's PRUNED state, with the last reported value, exactly as
  ``study.tell(trial, state=PRUNED)`` would.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from colorize.paths import resolve_sqlite_uri
from colorize.trainer import StopTraining

PRUNED_ATTR = "pruned"


class Pruned(StopTraining):
    """Raised from an epoch callback when the pruner stops the trial."""

    tag = PRUNED_ATTR

    def __init__(self, trial_number: int, epoch: int) -> None:
        super().__init__(f"trial {trial_number} pruned after epoch {epoch}")
        self.trial_number, self.epoch = trial_number, epoch


def open_storage(url: str) -> RDBStorage:
    """An RDB storage that waits for sqlite's lock instead of failing under parallel jobs."""
    url = resolve_sqlite_uri(url)
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    return PruningAwareStorage(url, engine_kwargs=engine_kwargs)


class PruningAwareStorage(RDBStorage):
    """Finishes trials whose job was pruned as PRUNED, whatever state the sweeper tells."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Optional[Sequence[float]] = None
    ) -> bool:
        if state.is_finished() and state != TrialState.PRUNED:
            trial = self.get_trial(trial_id)
            if trial.user_attrs.get(PRUNED_ATTR):
                last = trial.last_step
                state = TrialState.PRUNED
                values = None if last is None else [trial.intermediate_values[last]]
        return super().set_trial_state_values(trial_id, state, values)


class TrialReporter:
    """Epoch callback: report the objective to an Optuna trial and raise :class:`Pruned` on cue."""

    def __init__(self, storage: str, study_name: str, trial_number: int, pruner: Any, objective: str) -> None:
        self.study = optuna.load_study(study_name=study_name, storage=open_storage(storage), pruner=pruner)
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, trial_number
        )
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.number, self.objective = trial_number, objective

    def __call__(self, epoch: int, metrics: dict) -> None:
        self.trial.report(metrics[self.objective], step=epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr(PRUNED_ATTR, True)
            raise Pruned(self.number, epoch)
