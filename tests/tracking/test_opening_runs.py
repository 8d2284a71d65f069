"""A run is opened whole: an interrupt that comes while it is created or reopened waits until the
run has its params and will end KILLED (colorize/tracking/store.py, job.py, sweep_callback.py).

Real SIGTERMs, sent from a real hook of SQLAlchemy's engine inside MLflow's INSERT of the run, into
a real sqlite store; real Hydra composition and real faces for the jobs. (Before, a run interrupted
there was left RUNNING, or KILLED without its params: CI saw a loky worker's trial run without
`trainer.seed` after a SIGTERM.)"""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from colorize.interrupts import install
from colorize.job import JobContext, run_jobs
from colorize.tracking.store import Tracker
from colorize.tracking.sweep_callback import PARENT_FILE, MlflowSweepCallback
from tests.conftest import runs_in, sigterm_inside


def test_a_sigterm_as_a_run_is_created_ends_it_killed_with_its_params_and_files(handlers, mlflow_uri, tmp_path):
    install()
    config = tmp_path / "config.yaml"
    config.write_text("model: {layers: 2}\n")
    tracker = Tracker(mlflow_uri, "open_interrupted")
    with sigterm_inside("INSERT INTO runs") as sent, pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        with tracker.start_run("interrupted", params={"model.layers": 2}, files=[config]):
            pytest.fail("the interrupt follows the opening at once")
    assert sent  # the signal came inside the run's creation
    client, runs = runs_in(mlflow_uri, "open_interrupted")
    assert [r.info.status for r in runs] == ["KILLED"]
    assert runs[0].data.params == {"model.layers": "2"}
    assert [a.path for a in client.list_artifacts(runs[0].info.run_id)] == ["config.yaml"]


def test_a_sigterm_as_a_run_is_reopened_ends_it_killed_again(handlers, mlflow_uri):
    install()
    tracker = Tracker(mlflow_uri, "reopen_interrupted")
    killed = tracker.create_run("killed")
    killed.end("KILLED")
    with sigterm_inside("UPDATE runs") as sent, pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        with tracker.resume_run(killed.run_id, tags={"resumed": "yes"}):
            pytest.fail("the interrupt follows the reopening at once")
    assert sent
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(killed.run_id)
    assert run.info.status == "KILLED" and run.data.tags["resumed"] == "yes"


def test_a_sigterm_while_a_fused_groups_runs_open_ends_each_killed_with_its_params(
        handlers, make_cfg, faces, mlflow_uri, tmp_path):
    """Two jobs trained as one group (as a loky worker does): the signal comes while the second's run
    is created, after the first's was. Both end KILLED, each with its params and config.yaml."""
    install()
    cfgs = [make_cfg("data=faces", f"data.root={faces}", "data.limit=16", "model.layers=2", "trainer.max_epochs=1",
                     f"trainer.seed={seed}", f"tracking.uri={mlflow_uri}", "tracking.experiment=group_interrupted")
            for seed in (0, 1)]
    ctxs = [JobContext(tmp_path / str(seed)) for seed in (0, 1)]
    with sigterm_inside("INSERT INTO runs", nth=2) as sent, pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        run_jobs(cfgs, ctxs)
    assert sent
    client, runs = runs_in(mlflow_uri, "group_interrupted")
    ended = sorted((r.info.status, r.data.params.get("trainer.seed")) for r in runs)
    assert ended == [("KILLED", "0"), ("KILLED", "1")]
    for run in runs:
        assert run.data.params["data.name"] == "faces" and run.data.params["model.layers"] == "2"
        assert "config.yaml" in [a.path for a in client.list_artifacts(run.info.run_id)]


def test_a_sigterm_as_a_sweeps_parent_run_is_created_ends_it_killed(handlers, make_cfg, mlflow_uri, tmp_path):
    """The parent run of a multirun, opened by the callback as Hydra's multirun does: the signal comes
    inside its creation. The run is known by then, so the sweep's end (Hydra's `finally`) ends it
    KILLED, with its summary in the folder."""
    cfg = make_cfg(f"tracking.uri={mlflow_uri}", "tracking.experiment=parent_interrupted",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", return_hydra_config=True)
    callback = MlflowSweepCallback()
    with sigterm_inside("INSERT INTO runs") as sent, pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        try:
            callback.on_multirun_start(cfg)
        finally:
            callback.on_multirun_end(cfg)
    assert sent
    _, runs = runs_in(mlflow_uri, "parent_interrupted")
    assert [r.info.status for r in runs] == ["KILLED"]
    sweep = Path(cfg.hydra.sweep.dir)
    assert (sweep / PARENT_FILE).read_text() == runs[0].info.run_id
    assert (sweep / "summary.csv").is_file()
