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
from colorize.tracking import owner_gone, owner_tags
from colorize.trainer import StopTraining

PRUNED_ATTR = "pruned"


class Pruned(StopTraining):
    """Raised from an epoch callback when the pruner stops the trial."""

    tag = PRUNED_ATTR

    def __init__(self, trial_number: int, epoch: int) -> None:
        super().__init__(f"trial {trial_number} pruned after epoch {epoch}")
        self.trial_number, self.epoch = trial_number, epoch


def open_storage(url: str, attempts: int = 5) -> RDBStorage:
    """An RDB storage that waits for sqlite's lock instead of failing under parallel jobs.

    Workers started together on a fresh database race to create Optuna's schema; the losers
    retry, by then the schema is there.
    """
    import time

    from sqlalchemy.exc import DBAPIError

    url = resolve_sqlite_uri(url)
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            return PruningAwareStorage(url, engine_kwargs=engine_kwargs)
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


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
        for key, value in owner_tags().items():  # lets a restarted sweep recognise orphans
            self.trial.set_user_attr(key, value)

    def __call__(self, epoch: int, metrics: dict) -> None:
        self.trial.report(metrics[self.objective], step=epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr(PRUNED_ATTR, True)
            raise Pruned(self.number, epoch)


def recover_orphans(storage: Any, study_name: Optional[str]) -> list[int]:
    """Fail RUNNING trials whose job died on this host (SIGKILL, crash) and queue them again.

    The retried trial gets the same parameters, so its job finds the interrupted MLflow run and
    resumes it from its last checkpoint. Returns the numbers of the recovered trials.
    """
    if storage is None or study_name is None:
        return []
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return []
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_gone(trial.user_attrs):
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            recovered.append(trial.number)
    return recovered
