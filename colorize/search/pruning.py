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

import logging
import threading
import warnings
from typing import Any, Optional, Sequence

import optuna
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import TrialState

from colorize import names
from colorize.paths import creation_lock, resolve_sqlite_uri
from colorize.tracking.store import owner_gone, owner_tags
from colorize.training.loop import Callback, StopTraining, TrainState

PRUNED_ATTR = "pruned"
# A trial's job records a heartbeat this often; one silent for GRACE_S has lost its worker, on whichever
# host it ran, and the next sweep to start fails it and queues it again (Optuna's RDB heartbeat).
HEARTBEAT_S, GRACE_S = 20, 120
MAX_RETRY = 3
log = logging.getLogger(__name__)


class Pruned(StopTraining):
    """Raised from an epoch callback when the pruner stops the trial."""

    tag = PRUNED_ATTR

    def __init__(self, trial_number: int, epoch: int) -> None:
        super().__init__(f"trial {trial_number} pruned after epoch {epoch}")
        self.trial_number, self.epoch = trial_number, epoch


def open_storage(url: str, attempts: int = 5, heartbeat_interval: int = HEARTBEAT_S,
                 grace_period: int = GRACE_S) -> RDBStorage:
    """An RDB storage that waits for sqlite's lock instead of failing under parallel jobs, with
    Optuna's heartbeat on: a stale trial is failed by :func:`fail_stale` and retried (up to
    MAX_RETRY times) with the same parameters.

    Workers started together on a fresh database would race to create Optuna's schema: a sqlite
    file is created under a file lock, a server database (PostgreSQL) by retrying.
    """
    import time

    from sqlalchemy.exc import DBAPIError

    url = resolve_sqlite_uri(url)
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            with creation_lock(url), warnings.catch_warnings():  # a fresh sqlite file: one process makes it
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return PruningAwareStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period, heartbeat_stale_trial_callback=_retry(MAX_RETRY),
                )
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _retry(max_retry: int) -> Any:
    """Optuna's callback that queues a stale trial again with its parameters (renamed in Optuna 4.9)."""
    try:
        from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
    except ImportError:  # Optuna < 4.9
        from optuna.storages import RetryFailedTrialCallback as Retry
    return Retry(max_retry)


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


class TrialReporter(Callback):
    """Training callback: report the objective to an Optuna trial and raise :class:`Pruned` on cue."""

    def __init__(self, storage: str, study_name: str, trial_number: int, pruner: Any,
                 objective: str = names.VAL_ERROR) -> None:
        self.study = optuna.load_study(study_name=study_name, storage=open_storage(storage), pruner=pruner)
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, trial_number
        )
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.number, self.objective = trial_number, objective
        self.quarters: Optional[int] = None  # a time-budgeted run reports at quarters of its N epochs
        self.reported = 0
        for key, value in owner_tags().items():  # lets a restarted sweep on this host recognise orphans at once
            self.trial.set_user_attr(key, value)
        self.heartbeat = Heartbeat(self.study._storage, trial_id)  # and one on any host, once it falls silent

    def teardown(self) -> None:
        self.heartbeat.stop()

    def on_plan(self, epochs: int, measured: bool) -> None:
        """A time budget fixed N: epochs mean different amounts of time in different trials (a wide
        net fits fewer), so report at the same fractions of the budget instead -- steps 1..4, the
        quarters -- where the pruner can compare them."""
        if measured:
            self.quarters = epochs

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        step = epoch
        if self.quarters is not None or state.budget_epochs:
            n = self.quarters or state.budget_epochs
            step = 4 * epoch // n
            if step <= self.reported:  # not yet at the next quarter
                return
            self.reported = step
        self.trial.report(metrics[self.objective], step=step)
        if self.trial.should_prune():
            self.trial.set_user_attr(PRUNED_ATTR, True)
            raise Pruned(self.number, epoch)


class Heartbeat:
    """Records a trial's heartbeat from a daemon thread until stopped (Optuna's own optimize loop
    does this for its trials; the sweeper's ask-and-tell trials run in other processes)."""

    def __init__(self, storage: Any, trial_id: int, interval: Optional[float] = None) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval = interval or storage.get_heartbeat_interval() or HEARTBEAT_S
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as exc:  # a missed beat is retried; the grace period allows several
                log.debug("heartbeat of trial %d not recorded: %s", self.trial_id, exc)
            if self._stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def existing_study(storage: Any, study_name: Optional[str]) -> Optional[optuna.Study]:
    """The named study in an RDB storage; None when there is none yet (or no storage/name)."""
    if storage is None or study_name is None:
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None


def fail_stale(storage: Any, study_name: Optional[str]) -> list[int]:
    """Fail the RUNNING trials whose job stopped beating (its worker died, on any host); the storage's
    retry callback queues each again with the same parameters. Returns their numbers."""
    study = existing_study(storage, study_name)
    if study is None:
        return []
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)
    return sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in running)


def recover_orphans(storage: Any, study_name: Optional[str]) -> list[int]:
    """Fail RUNNING trials whose job died on this host (SIGKILL, crash) and queue them again, at once
    (:func:`fail_stale` covers every host, once the heartbeat's grace period has passed).

    The retried trial gets the same parameters, so its job finds the interrupted MLflow run and
    resumes it from its last checkpoint. Returns the numbers of the recovered trials.
    """
    study = existing_study(storage, study_name)
    if study is None:
        return []
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_gone(trial.user_attrs):
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            recovered.append(trial.number)
    return recovered
