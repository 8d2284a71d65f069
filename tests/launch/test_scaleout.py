"""Scale-out on real engines: one Optuna study on PostgreSQL shared by 3 worker processes, runs
logged over HTTP to an `mlflow server` on 127.0.0.1 (and the best trial shipped through its Model
Registry), and the shipped cluster launcher configs."""

import os
import subprocess
import sys

import optuna
import pytest
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient

from colorize.paths import CONFIG_MODULE
from colorize.register import main as register
from colorize.tracking.registry import parse_model_uri, resolve
from colorize.tracking.store import Tracker
from tests.conftest import ROOT, start_mlflow_server, stop_process_group

# one pytest-xdist worker runs the tests that share the PostgreSQL server and the SLURM cluster, one at a time
pytestmark = pytest.mark.xdist_group("services")


@pytest.fixture(scope="module")
def postgres_url():
    url = os.environ.get("COLORIZE_TEST_POSTGRES_URL")
    if not url:
        message = "no PostgreSQL server: start one with `source .ci/postgres.sh start`"
        if os.environ.get("COLORIZE_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    proc, uri = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    yield uri
    stop_process_group(proc)


def run_concurrently(common: list[str], sweep_dirs: list, cwd, timeout: int) -> list[str]:
    """Start one `colorize.train` per sweep dir at once, with the same overrides; wait for all,
    assert each exited with 0, and return their outputs."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "colorize.train", *common, f"hydra.sweep.dir={d}"],
                         cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for d in sweep_dirs
    ]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    return outputs


@pytest.mark.e2e
def test_three_workers_share_one_study_on_postgres_and_log_to_an_mlflow_server(
    faces, postgres_url, mlflow_server, tmp_path
):
    study_name = f"shared-{os.getpid()}"
    common = [
        "-m", "sweep=search", "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={postgres_url}",
        f"hydra.sweeper.study_name={study_name}", "data=faces", f"data.root={faces}", "data.limit=32",
        "trainer.max_epochs=1", f"tracking.uri={mlflow_server}", "tracking.experiment=scaleout",
    ]
    run_concurrently(common, [tmp_path / f"w{i}" for i in range(3)], cwd=ROOT, timeout=900)

    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(9))  # 9 trials, none twice
    assert all(t.state.is_finished() for t in study.trials)

    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("scaleout")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 9 and len(runs) == 9 + 3  # a parent run per worker
    assert sorted(int(c.data.params["optuna_trial"]) for c in children) == list(range(9))
    assert {c.info.status for c in children} <= {"FINISHED", "FAILED"}
    # each worker took its own trials: its parent's children are the ones it launched
    per_worker = [len([c for c in children if c.data.tags["mlflow.parentRunId"] == p.info.run_id])
                  for p in runs if "mlflow.parentRunId" not in p.data.tags]
    assert per_worker == [3, 3, 3]
    # the best trial shipped through the server's Model Registry, and its checkpoint read back over HTTP
    parent = next(p for p in runs if "best_run_id" in p.data.tags)
    assert register([parent.info.run_id, "scaleout", "--alias", "champion", "--uri", mlflow_server]) == 0
    tracker = Tracker(mlflow_server, None, create=False)
    shipped = resolve(tracker, parse_model_uri("models:/scaleout@champion"))
    assert (shipped.run_id, shipped.artifact) == (parent.data.tags["best_run_id"], "best.pt")
    assert tracker.download(shipped.run_id, shipped.artifact, tmp_path / "shipped").stat().st_size > 0


@pytest.mark.parametrize(
    "launcher,target",
    [
        ("slurm", "colorize.launch.slurm_launcher.SlurmLauncher"),
        ("local_submitit", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
        ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ],
)
def test_cluster_launcher_configs_compose_and_validate(launcher, target):
    with initialize_config_module(CONFIG_MODULE):
        cfg = compose("train", overrides=["sweep=search", f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    if launcher == "slurm":
        assert cfg.hydra.launcher.timeout_min == 120 and cfg.hydra.launcher.cpus_per_task == 1
        assert "partition" in cfg.hydra.launcher
    with pytest.raises(Exception, match="partitionz"):
        with initialize_config_module(CONFIG_MODULE):
            compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partitionz=x"],
                    return_hydra_config=True)


@pytest.mark.e2e
def test_two_sweeps_started_at_once_on_a_fresh_sqlite_store_both_track_every_trial(faces, tmp_path):
    """Neither store exists yet: MLflow's and Optuna's schemas are created under a file lock, so
    both sweeps keep their parent run and every trial (the race lost one of them before)."""
    mlflow_uri, optuna_uri = f"sqlite:///{tmp_path}/mlflow.db", f"sqlite:///{tmp_path}/optuna.db"
    common = [
        "sweep=search", "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={optuna_uri}",
        "hydra.sweeper.study_name=fresh", "data=faces", f"data.root={faces}", "data.limit=16",
        "trainer.max_epochs=1", f"tracking.uri={mlflow_uri}", "tracking.experiment=fresh",
    ]
    for out in run_concurrently(common, [tmp_path / f"s{i}" for i in range(2)], cwd=tmp_path, timeout=600):
        assert "raised" not in out, out[-3000:]
    study = optuna.load_study(study_name="fresh", storage=optuna_uri)
    assert len(study.trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    client = MlflowClient(tracking_uri=mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("fresh").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(int(r.data.params["optuna_trial"]) for r in trials) == [0, 1, 2, 3]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {p.info.run_id for p in parents}
