"""The Optuna storage of a search: an RDB storage that waits for sqlite's lock, records pruned trials
as PRUNED, writes an asked trial with its owner, and beats Optuna's heartbeat. Where Optuna has no
public API (a trial's id; the creation of a trial, which its cached storage calls), the private
access lives here and nowhere else."""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any, Optional, Sequence

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from colorize import names
from colorize.interrupts import uninterrupted
from colorize.paths import creation_lock, resolve_sqlite_uri
from colorize.tracking.owners import owner_tags

# A trial's job records a heartbeat this often; one silent for GRACE_S has lost its worker, on whichever
# host it ran, and the next sweep to start fails it and queues it again (Optuna's RDB heartbeat).
HEARTBEAT_S, GRACE_S = 20, 120
MAX_RETRY = 3


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
    """Finishes trials whose job was pruned as PRUNED, whatever state the sweeper tells; and names
    the process that starts a trial (an ask) as its owner in the same store call, until
    the trial's job names its own (search/pruning.py). Before, the trials of a batch whose jobs had
    not started when the sweep was interrupted, or killed, had no owner and no heartbeat: RUNNING for
    good, never tried again."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _create_new_trial(self, study_id: int, template_trial: Optional[FrozenTrial] = None) -> FrozenTrial:
        # (Optuna's cached storage, which a study wraps this one in, calls this private method)
        if template_trial is None:  # an ask: RUNNING, with its owner, in one transaction
            template_trial = FrozenTrial(
                number=0, trial_id=0, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                datetime_complete=None, params={}, distributions={}, user_attrs=owner_tags(), system_attrs={},
                intermediate_values={},
            )
        return super()._create_new_trial(study_id, template_trial)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Optional[Sequence[float]] = None
    ) -> bool:
        with uninterrupted():
            if state.is_finished() and state != TrialState.PRUNED:
                trial = self.get_trial(trial_id)
                if trial.user_attrs.get(names.PRUNED):
                    last = trial.last_step
                    state = TrialState.PRUNED
                    values = None if last is None else [trial.intermediate_values[last]]
            taken = super().set_trial_state_values(trial_id, state, values)
            if taken and state == TrialState.RUNNING:  # a queued trial (a retry) that an ask took
                self._own(trial_id)
            return taken

    def _own(self, trial_id: int) -> None:
        for key, value in owner_tags().items():
            self.set_trial_user_attr(trial_id, key, value)


def existing_study(storage: Any, study_name: Optional[str]) -> Optional[optuna.Study]:
    """The named study in an RDB storage; None when there is none yet (or no storage/name)."""
    if storage is None or study_name is None:
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None


def trial_id(trial: optuna.trial.Trial) -> int:
    """An asked trial's id in its storage (Optuna keeps it private)."""
    return trial._trial_id


def keeps_heartbeat(storage: Any) -> bool:
    """Whether `storage` keeps Optuna's heartbeat (an RDB storage with an interval)."""
    return isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None


def trial_of(study: optuna.Study, number: int) -> tuple[optuna.trial.Trial, int]:
    """The running trial `number` of `study` as an Optuna Trial (what a job reports to), and its id.
    Optuna has no public way from a number to a trial's id."""
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id), trial_id
