"""The Tracker and its runs (colorize/tracking/store.py) on a real sqlite MLflow store."""

import pytest
from mlflow.tracking import MlflowClient

from colorize import names
from colorize.tracking.store import TrackedRun, Tracker
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
