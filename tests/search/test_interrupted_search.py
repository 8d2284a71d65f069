"""A search interrupted or killed while a batch of its trials waits for their jobs loses none of
them (colorize/search/storage.py: the asker owns a trial until its job does; optuna_sweep.py: the
sweep beats for its batch). Real commands, a real Optuna study and a real MLflow store."""

import signal
import time

import optuna
import pytest
from optuna.trial import TrialState

from colorize.search.recovery import fail_stale
from colorize.search.storage import open_storage
from colorize.tracking.store import Tracker
from tests.conftest import run_cli, run_until, runs_in


def search_args(faces, uri, experiment, folder, storage):
    """A batch of 3 trials that the basic launcher runs one after the other."""
    return ["-m", "sweep=search", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=3", "data=faces",
            f"data.root={faces}", "data.limit=32", "trainer.max_epochs=8", f"hydra.sweeper.storage={storage}",
            f"tracking.uri={uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={folder}"]


@pytest.mark.e2e
def test_an_interrupted_search_queues_again_every_trial_of_its_batch(faces, mlflow_uri, tmp_path):
    """Ctrl-C while the first of a batch of 3 trains: the same command again fails and queues again all
    three, with their parameters, and resumes the first one's MLflow run in place. (Before, the two
    whose jobs had not started stayed RUNNING in the study for good, and were never tried.)"""
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = search_args(faces, mlflow_uri, "search_interrupted", tmp_path / "sweep", storage)
    code, out = run_until(args, "epoch   2/8", signal.SIGINT)
    assert code == 1, out[-3000:]
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trials [0, 1, 2] of an interrupted sweep failed and queued again" in again.stdout + again.stderr
    trials = optuna.load_study(study_name="colorize-search", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE] * 3
    assert [(t.user_attrs["retry_of"], t.params) for t in trials[3:]] == [(t.number, t.params) for t in trials[:3]]
    _, runs = runs_in(mlflow_uri, "search_interrupted")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 3 and {r.info.status for r in runs} == {"FINISHED"}  # the first resumed in place
    # each run is found by the trial that ran it last (a retry's number), as a silent trial's run is ended
    tracker = Tracker(mlflow_uri, "search_interrupted")
    for retry in trials[3:]:
        (run,) = tracker.trial_runs("colorize-search", retry.number, status="FINISHED")
        assert run.data.tags["optuna_trial"] == str(retry.number)
    first = next(r for r in children if r.data.params["optuna_trial"] == "0")
    assert first.data.tags["optuna_trial"] == "3"  # resumed by the retry of trial 0


@pytest.mark.e2e
def test_a_killed_searchs_waiting_trials_fall_silent_for_a_sweep_on_any_host(faces, mlflow_uri, tmp_path):
    """SIGKILL while the first of a batch of 3 trains: every trial of the batch stops beating (the
    sweep beat for them all), so a sweep on another host, which cannot judge this host's pids, finds
    all three by their silence. (Before, the two whose jobs had not started never beat: never found.)"""
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = search_args(faces, mlflow_uri, "search_killed", tmp_path / "sweep", storage)
    code, out = run_until(args, "epoch   2/8", signal.SIGKILL)
    assert code == -signal.SIGKILL, out[-3000:]
    time.sleep(2)  # past the grace period below, which the one who checks decides
    assert fail_stale(open_storage(storage, grace_period=1), "colorize-search") == [0, 1, 2]
