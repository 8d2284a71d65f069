"""`hydra/launcher=ray`: sweeps whose trials are Ray tasks on a real local Ray instance (started by the
sweep itself, as `ray.init()` does), tracked in a real MLflow store; a trial's worker SIGKILLed, the
sweep interrupted, and the same command resuming both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from colorize import names
from colorize.launch.ray_launcher import Exited, RayLauncher, _run_job, settle
from colorize.paths import CONFIG_MODULE
from tests.conftest import METRICS, free_port, run_cli, runs_in, stop_process_group

LAUNCHER = ["hydra/launcher=ray", "hydra.launcher.ray.init.num_cpus=2"]
# one pytest-xdist worker runs the sweeps that start a Ray instance, one at a time
pytestmark = pytest.mark.xdist_group("ray")


def trials(uri: str, experiment: str):
    """(client, the parent runs, the trial runs) of an experiment."""
    client, runs = runs_in(uri, experiment)
    return (client, [r for r in runs if names.PARENT_TAG not in r.data.tags],
            [r for r in runs if names.PARENT_TAG in r.data.tags])


def test_the_ray_launcher_composes_with_ray_settings_and_refuses_bad_ones_in_one_line():
    with initialize_config_module(CONFIG_MODULE):
        cfg = compose("train", overrides=["sweep=search", "hydra/launcher=ray",
                                          "hydra.launcher.ray.remote.num_gpus=0.25",
                                          "+hydra.launcher.ray.init.runtime_env={env_vars:{A:b}}"],
                      return_hydra_config=True)
    settings = cfg.hydra.launcher.ray
    assert cfg.hydra.launcher._target_ == "colorize.launch.ray_launcher.RayLauncher"
    assert OmegaConf.to_container(settings.remote) == {"num_cpus": 1, "num_gpus": 0.25, "max_retries": 0}
    assert settings.init.address == "local" and settings.init.include_dashboard is False
    with pytest.raises(SystemExit, match=r"^colorize: error: hydra.launcher.ray.remote=\{.*'num_gpus': -1.*\} is "
                                         r"invalid: The quantity of resource num_gpus cannot be negative$"):
        RayLauncher(OmegaConf.create({"remote": {"num_gpus": -1}})).remote_function(ray)
    port = free_port()  # a cluster that is not there: one line at once, where Ray alone retries for minutes
    with pytest.raises(SystemExit, match=rf"^colorize: error: hydra.launcher.ray.init.address=127.0.0.1:{port}: "
                                         r"no Ray cluster answers there \(Connection refused\); start one with"):
        RayLauncher(OmegaConf.create({"init": {"address": f"127.0.0.1:{port}"}})).start(ray)
    assert not ray.is_initialized()


def test_a_lost_or_refused_trial_ends_the_batch_in_one_line_after_all_of_it():
    done = object()
    assert settle(ray, [done, done], ["trial #0 (a)", "trial #1 (b)"]) == [done, done]
    with pytest.raises(SystemExit) as lost:
        settle(ray, [done, ray.exceptions.WorkerCrashedError(), Exited("colorize: error: x")],
               ["trial #0 (a)", "trial #1 (optimizer.lr=0.1)", "trial #2 (c)"])
    assert str(lost.value.code) == (
        "colorize: error: Ray task of trial #1 (optimizer.lr=0.1) ended without a result: WorkerCrashedError. "
        "The trial's run keeps its last checkpoint: run the same command again to resume it")
    with pytest.raises(SystemExit, match=r"^colorize: error: x$"):
        settle(ray, [done, Exited("colorize: error: x")], ["trial #0 (a)", "trial #1 (b)"])


def test_a_trial_on_a_node_without_the_sweeps_folder_is_one_line(tmp_path):
    config = OmegaConf.create({"hydra": {"runtime": {"cwd": str(tmp_path / "elsewhere")}, "job": {"num": 3}}})
    assert _run_job(None, config, None, None) == Exited(
        f"colorize: error: trial #3 ran on a Ray node without the sweep's folder {tmp_path / 'elsewhere'}: it "
        "must be on a file system every node shares, at the same path")


@pytest.fixture
def ray_cluster(tmp_path):
    """A running Ray cluster of one node and 2 CPUs (`ray start --head`), started in a folder of its
    own, as a cluster's nodes are; its address. Token authentication off: a throw-away cluster on
    127.0.0.1 (Ray's CLI and its Python client disagree on the mode's default)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    address, home = f"127.0.0.1:{free_port()}", tmp_path / "ray_head"
    home.mkdir()
    ray_cli = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", f"--port={address.split(':')[1]}", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats", "--node-ip-address=127.0.0.1"],
                            cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([ray_cli, "status", f"--address={address}"], env=env, capture_output=True,
                             timeout=60).returncode != 0:
            assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(1)
        yield address
    finally:
        stop_process_group(head)
        # `ray start` names its cluster in /tmp/ray/ray_current_cluster, which a later ray.init() with
        # no address would try to join: gone with the cluster
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.is_file() and current.read_text().strip().endswith(":" + address.split(":")[1]):
            current.unlink()


@pytest.mark.e2e
def test_a_search_on_a_ray_cluster_runs_its_trials_as_tasks_with_pruning_under_one_parent_run(
        faces, ray_cluster, tmp_path):
    uri, storage = f"sqlite:///{tmp_path}/mlflow.db", f"sqlite:///{tmp_path}/optuna.db"
    proc = run_cli("sweep=search", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={ray_cluster}",
                   "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "pruner=median",
                   "pruner.n_startup_trials=1", f"hydra.sweeper.storage={storage}", "data=faces", f"data.root={faces}",
                   "data.limit=32", "trainer.max_epochs=3", f"tracking.uri={uri}", "tracking.experiment=ray",
                   "hydra.sweep.dir=sweep", cwd=tmp_path, timeout=400, drop=["OMP_NUM_THREADS"],
                   env={"RAY_AUTH_MODE": "disabled"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    import optuna

    study = optuna.load_study(study_name="colorize-search", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3] and all(t.intermediate_values for t in study.trials)
    client, parents, children = trials(uri, "ray")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    assert len({c.data.tags[names.RAY_TASK_TAG] for c in children}) == 4  # each trial its own Ray task
    assert len({c.data.tags[names.RAY_NODE_TAG] for c in children}) == 1
    # a cluster's workers run where their node was started: each trial ran in the sweep's folder, relative here
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    assert not list((tmp_path / "ray_head").iterdir())
    assert {c.data.tags["pid"] for c in children}.isdisjoint({str(os.getpid())})  # in Ray's workers
    assert {c.data.tags["num_threads"] for c in children} == {"1"}  # ray.remote.num_cpus=1: Ray's OMP_NUM_THREADS
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, names.VAL_MSE)]
        assert steps == list(range(1, len(steps) + 1)) and steps
    assert "(_run_job pid=" in proc.stdout + proc.stderr  # the trials' own lines reach the sweep's output


def wait_for(sweep: Path, pattern: str, proc, timeout: float = 240) -> None:
    """Until some trial's log in the sweep folder has a line matching `pattern`."""
    deadline, regex = time.monotonic() + timeout, re.compile(pattern)
    while time.monotonic() < deadline:
        if any(regex.search(log.read_text(errors="replace")) for log in sweep.glob("*/*.log")):
            return
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no trial logged {pattern!r} in {timeout} s")


def sweep_until(args: list[str], sweep: Path, pattern: str, act) -> tuple[int, str]:
    """Run the sweep in `sweep` until a trial logs `pattern`, then `act(proc)`; its exit code and output.
    SIGINT as a terminal's foreground job has it (a background shell's children ignore it)."""
    proc = subprocess.Popen([sys.executable, "-m", "colorize.train", *args, f"hydra.sweep.dir={sweep}"],
                            cwd=sweep.parent, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(sweep, pattern, proc)
        act(proc)
        return proc.wait(timeout=300), proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.e2e
def test_an_interrupted_sweep_or_a_killed_worker_loses_no_run_and_the_same_command_resumes(faces, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["sweep=layers", *LAUNCHER, "data=faces", f"data.root={faces}", "data.limit=192", "trainer.max_epochs=10",
            "trainer.early_stopping.patience=100", f"tracking.uri={uri}", "tracking.experiment=ray_lost"]

    # Ctrl-C at the sweep: Ray cancels the running trials, each ends its run KILLED; the queued one never starts
    code, out = sweep_until(args, tmp_path / "first", r"epoch +3/", lambda proc: proc.send_signal(signal.SIGINT))
    assert code != 0 and out.strip().splitlines()[-1].startswith("colorize: interrupted; "), out[-3000:]
    assert "Traceback" not in out
    client, parents, children = trials(uri, "ray_lost")
    assert [p.info.status for p in parents] == ["KILLED"]
    # the trials that had opened their runs (one or two: num_cpus=2, and the second may still be
    # starting on a busy machine) ended them KILLED; the queued third never started
    assert len(children) in (1, 2) and {c.info.status for c in children} == {"KILLED"}
    done = {c.data.tags[names.TRIAL_TAG]: len(client.get_metric_history(c.info.run_id, names.VAL_MSE))
            for c in children}
    assert 2 <= max(done.values()) < 10, done  # stopped mid-run (its log said epoch 3: epochs 1, 2 are logged)
    for trial, epochs in done.items():  # each with the checkpoint of its last epoch done, if it did one
        assert epochs == 0 or (tmp_path / "first" / str(int(trial) - 1) / "last.pt").is_file(), done

    def kill_a_worker(proc) -> None:  # the process that owns a running trial: a Ray worker
        _, _, running = trials(uri, "ray_lost")
        victim = next(c for c in running if c.info.status == "RUNNING")
        os.kill(int(victim.data.tags["pid"]), signal.SIGKILL)

    # the same command: the two resume, the third starts; a trial's worker SIGKILLed meanwhile
    code, out = sweep_until(args, tmp_path / "second", r"epoch +\d+/", kill_a_worker)
    last = out.strip().splitlines()[-1]
    assert code != 0 and last.startswith("colorize: error: Ray task of trial #") and "Traceback" not in out, out[-3000:]
    assert "ended without a result: WorkerCrashedError" in last
    assert last.endswith("run the same command again to resume it")
    client, parents, children = trials(uri, "ray_lost")
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    # the killed trial's run, orphaned, is ended KILLED with the sweep: none is left RUNNING
    assert "RUNNING" not in {c.info.status for c in children} and "KILLED" in {c.info.status for c in children}

    again = run_cli(*args, f"hydra.sweep.dir={tmp_path}/third", cwd=tmp_path, timeout=400)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    client, parents, children = trials(uri, "ray_lost")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.params["model.layers"] for c in finished) == ["1", "2", "4"]  # each trial once, resumed
    for child in finished:
        for key in METRICS:
            assert [m.step for m in client.get_metric_history(child.info.run_id, key)] == list(range(1, 11)), key
    for child in children:  # any other run: a trial stopped before its first checkpoint, which started anew
        assert child in finished or not client.get_metric_history(child.info.run_id, names.VAL_MSE)
