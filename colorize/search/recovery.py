"""Recovery of a search's trials whose worker died: at once on this host (its process is gone), on
any host once Optuna's heartbeat has been silent for its grace period. One entry point,
:func:`recover`, run by the sweeper before it asks for trials; the heartbeat is sent by each job."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Any, Optional, Sequence

import optuna
from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

from colorize.search.storage import HEARTBEAT_S, existing_study
from colorize.tracking.owners import owner_gone
from colorize.tracking.store import Tracker

log = logging.getLogger(__name__)
STOP_WAIT_S = 5.0  # how long stopping heartbeats waits for the beats under way (Heartbeat.stop_all)


def recover(storage: Any, study_name: Optional[str], tracker: Tracker) -> None:
    """Fail and queue again the trials an interrupted sweep left RUNNING (their retried jobs resume
    their MLflow runs from their last checkpoints); end KILLED the runs of trials that fell silent.
    Nothing without a storage and a study name: there is no study to find again."""
    if storage is None or study_name is None:
        return
    recovered = recover_orphans(storage, study_name)
    if recovered:
        log.info("trials %s of an interrupted sweep failed and queued again", recovered)
    stale = fail_stale(storage, study_name)
    if stale:  # their worker died, maybe on another host: their MLflow runs end KILLED
        killed = end_trial_runs(tracker, study_name, stale)
        log.info("trials %s fell silent (no heartbeat): failed and queued again; runs %s KILLED", stale, killed)


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

    @property
    def beating(self) -> bool:
        """Whether its thread still runs: until stopped, or a beat under way when it was."""
        return self._thread.is_alive()

    def stop(self) -> None:
        Heartbeat.stop_all([self])

    @staticmethod
    def stop_all(beats: Sequence[Heartbeat], wait: float = STOP_WAIT_S) -> None:
        """Stop these heartbeats: none starts another beat. The beats under way are waited for at
        most `wait` seconds in all: one stuck on a sqlite file another process holds locked waits
        for the connection's 120 s timeout, which held up the sweep's next batch, or its exit after
        Ctrl-C, as long. Past that such a beat finishes in its daemon thread, which never holds up
        the process's exit."""
        for beat in beats:
            beat._stopped.set()
        deadline = time.monotonic() + wait
        for beat in beats:
            beat._thread.join(max(0.0, deadline - time.monotonic()))


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


def end_trial_runs(tracker: Tracker, study_name: str, trial_numbers: list[int]) -> list[str]:
    """End KILLED the RUNNING runs of these trials of an Optuna study (their worker died, wherever it ran)."""
    killed = []
    for number in trial_numbers:
        for run in tracker.trial_runs(study_name, number, status="RUNNING"):
            tracker.tracked_run(run.info.run_id).end("KILLED")
            killed.append(run.info.run_id)
    return killed
