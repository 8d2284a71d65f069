"""The Tracker and its runs (colorize/tracking/store.py) on a real sqlite MLflow store."""

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from colorize import names
from colorize.paths import creation_lock
from colorize.search.storage import open_storage
from colorize.tracking.store import PROGRESS_BAR_VARIABLE, TrackedRun, Tracker
from colorize.training.callback import RunRecord


def test_a_tracked_run_logs_what_it_is_given_and_ends_with_the_status_it_was_told(mlflow_uri):
    tracker = Tracker(mlflow_uri, "store-unit")
    run = tracker.create_run("unit", tags={"kind": "test"})
    assert isinstance(run, TrackedRun) and isinstance(run, RunRecord)  # what callbacks may use
    run.log_metrics({"a": 1.0, "b": 2}, step=3)
    run.log_metrics({"a": 0.5}, step=4)
    run.log_params({"x": 1, "y": "z"})
    run.fail(why="a test")  # FAILED when it ends, with the tags that say why
    run.end()
    stored = tracker.get_run(run.run_id)
    assert stored.info.status == "FAILED" and stored.info.run_name == "unit"
    assert stored.data.params == {"x": "1", "y": "z"} and stored.data.tags["why"] == "a test"
    assert tracker.metric_history(run.run_id, "a") == [(3, 1.0), (4, 0.5)]
    assert tracker.tracked_run(run.run_id).run_id == run.run_id  # the same run, to write into


@pytest.mark.parametrize("asked", [None, "true"])
def test_a_download_shows_mlflows_progress_bar_only_if_the_environment_asks(mlflow_uri, tmp_path, capfd,
                                                                             monkeypatch, asked):
    tracker = Tracker(mlflow_uri, "store-download")
    run = tracker.create_run("download")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "best.pt").write_bytes(b"weights")
    tracker.upload(run.run_id, tmp_path / "up", "")
    run.end()
    if asked is None:
        monkeypatch.delenv(PROGRESS_BAR_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_BAR_VARIABLE, asked)
    capfd.readouterr()
    path = tracker.download(run.run_id, "best.pt", tmp_path / "down")
    assert path.read_bytes() == b"weights"
    assert ("Downloading artifacts" in capfd.readouterr().err) == (asked == "true")
    assert os.environ.get(PROGRESS_BAR_VARIABLE) == asked  # the user's environment as it was


def test_a_tolerant_run_keeps_the_first_failure_and_skips_the_rest_a_strict_one_raises(mlflow_uri):
    client = MlflowClient(tracking_uri=mlflow_uri)
    gone = "0" * 32  # no such run: every write fails
    tolerant = TrackedRun(client, gone, tolerant=True)
    tolerant.log_metrics({"a": 1.0}, step=1)
    tolerant.log_params({"b": 2})
    assert len(tolerant.errors) == 1 and tolerant.errors[0].startswith(f"MLflow logging metrics failed for run {gone}")
    assert tolerant.failure  # the failure tag it ends with
    with pytest.raises(Exception):
        TrackedRun(client, gone).log_metrics({"a": 1.0}, step=1)


def test_the_trackers_queries_find_parents_children_and_trials(mlflow_uri):
    tracker = Tracker(mlflow_uri, "store-queries")
    parent = tracker.create_run("lr", tags={names.SWEEP_TAG: "lr"})
    trial = tracker.create_run("t0", tags={names.OPTUNA_STUDY_TAG: "s"}, parent_run_id=parent.run_id)
    trial.log_params({names.TRIAL_KEY: 7})
    assert [r.info.run_id for r in tracker.children(parent.run_id)] == [trial.run_id]
    assert [r.info.run_id for r in tracker.sweep_parents("lr")] == [parent.run_id]
    assert [r.info.run_id for r in tracker.trial_runs("s", 7)] == [trial.run_id]  # RUNNING by default
    trial.end("KILLED")
    assert tracker.trial_runs("s", 7) == []
    tracker.reopen(trial.run_id)
    assert tracker.get_run(trial.run_id).info.status == "RUNNING"


def lock_is_free(lock_file) -> bool:
    """Whether another process can take the lock file at once."""
    take = "import sys; from filelock import FileLock; FileLock(sys.argv[1], timeout=0).acquire()"
    return subprocess.run([sys.executable, "-c", take, str(lock_file)], capture_output=True).returncode == 0


def test_the_creation_lock_is_held_while_a_store_is_made_and_not_once_it_is(tmp_path):
    uri, lock = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "mlflow.db.lock"
    with creation_lock(uri):  # no store yet: this process makes it, the others wait
        assert not lock_is_free(lock)
        MlflowClient(tracking_uri=uri).search_experiments()  # MLflow makes its schema
    assert lock_is_free(lock)
    with creation_lock(uri):  # made: every process opens it at once
        assert lock_is_free(lock)
    url, lock = f"sqlite:///{tmp_path}/optuna.db", tmp_path / "optuna.db.lock"
    with sqlite3.connect(tmp_path / "optuna.db") as db:
        db.execute("CREATE TABLE other (x)")  # a file without a finished schema: still to be made
    with creation_lock(url):
        assert not lock_is_free(lock)
    open_storage(url)
    with creation_lock(url):
        assert lock_is_free(lock)


OPEN_TOGETHER = """
import pathlib, sys, time
from colorize.search.storage import open_storage
from colorize.tracking.store import Tracker
pathlib.Path(sys.argv[3] + "-" + sys.argv[4]).touch()
while not pathlib.Path(sys.argv[3]).exists():
    time.sleep(0.005)
Tracker(sys.argv[1], "together")
open_storage(sys.argv[2])
"""


@pytest.mark.e2e
def test_processes_started_together_make_a_fresh_store_once_and_all_open_it(tmp_path):
    uri, url, go = f"sqlite:///{tmp_path}/mlflow.db", f"sqlite:///{tmp_path}/optuna.db", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_TOGETHER, uri, url, str(go), str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(6)]
    while len(list(tmp_path.glob("go-*"))) < len(procs):  # all imported: released at once
        assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
        time.sleep(0.01)
    go.touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    client = MlflowClient(tracking_uri=uri)
    assert [e.name for e in client.search_experiments(filter_string="name = 'together'")] == ["together"]
    assert open_storage(url).get_all_studies() == []


def test_a_store_whose_folder_cannot_be_made_is_one_line_naming_it(tmp_path):
    """Once a FileNotFoundError traceback from the store's folder (colorize-train, colorize-study)."""
    from colorize.errors import ColorizeError

    (tmp_path / "a_file").write_text("in the way")
    uri = f"sqlite:///{tmp_path}/a_file/runs/mlflow.db"
    with pytest.raises(ColorizeError) as info:
        Tracker(uri, "x")
    assert str(info.value) == (f"cannot make the sqlite store '{uri}': its folder '{tmp_path}/a_file/runs' "
                               "cannot be made (Not a directory)")
    assert (tmp_path / "a_file").read_text() == "in the way"
