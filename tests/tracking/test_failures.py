"""Faults and bad input: nothing tracked is lost, runs resume, errors are one clear line."""

import errno
import os
import pickle
import shutil
import signal

import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from colorize.config import model_of
from colorize.training.checkpoint import load_weights, read_checkpoint, save_checkpoint
from colorize.errors import ColorizeError

from tests.conftest import (METRICS, free_port, hang_up, only_run, run_cli, run_until, start_mlflow_server,
                            stop_process_group)



def train_args(faces, uri, experiment, run_dir, epochs=5, limit=160):
    return ["data=faces", f"data.root={faces}", f"data.limit={limit}", "model.layers=2", "model.channels=8",
            "model.batch_norm=true", "optimizer.lr=0.05", f"trainer.max_epochs={epochs}",
            f"tracking.uri={uri}", f"tracking.experiment={experiment}", f"hydra.run.dir={run_dir}"]


def histories(client, run_id):
    return {k: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)]
            for k in METRICS}


@pytest.mark.e2e
def test_sigint_after_epoch_2_then_resume_matches_an_uninterrupted_run(faces, mlflow_uri, tmp_path):
    client = MlflowClient(tracking_uri=mlflow_uri)
    code, out = run_until(train_args(faces, mlflow_uri, "resume", tmp_path / "a"), "epoch   2/5", signal.SIGINT)
    assert code != 0 and "interrupted" in out and "Traceback" not in out
    run = only_run(client, "resume")
    assert run.info.status == "KILLED"
    assert len(client.get_metric_history(run.info.run_id, "val_mse")) >= 2  # epochs logged before stay
    state = read_checkpoint(tmp_path / "a" / "last.pt")["train_state"]
    assert state["epoch"] >= 2 and "optimizer" in state and "generator" in state and "early_stopping" in state

    resumed = run_cli(f"trainer.resume={run.info.run_id}", f"tracking.uri={mlflow_uri}",
                      "tracking.experiment=resume", f"hydra.run.dir={tmp_path / 'b'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = run_cli(*train_args(faces, mlflow_uri, "straight", tmp_path / "c"))
    assert straight.returncode == 0, straight.stderr[-3000:]

    run = only_run(client, "resume")  # still one run: the same one, finished
    assert run.info.status == "FINISHED"
    reference = only_run(client, "straight")
    got, want = histories(client, run.info.run_id), histories(client, reference.info.run_id)
    for key in METRICS:
        assert [s for s, _ in got[key]] == [1, 2, 3, 4, 5], key
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in want[key]], abs=1e-6), key
    for key in ("best_epoch", "best_val_mse", "best_val_margin12_accuracy"):
        assert run.data.metrics[key] == pytest.approx(reference.data.metrics[key], abs=1e-6)


@pytest.mark.e2e
def test_sigterm_marks_the_run_killed_and_keeps_the_last_checkpoint(faces, mlflow_uri, tmp_path):
    code, out = run_until(train_args(faces, mlflow_uri, "sigterm", tmp_path), "epoch   1/5", signal.SIGTERM)
    assert code != 0 and "interrupted (SIGTERM)" in out
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = only_run(client, "sigterm")
    assert run.info.status == "KILLED"
    assert "last.pt" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert read_checkpoint(tmp_path / "last.pt")["run_id"] == run.info.run_id


@pytest.mark.e2e
def test_a_hung_up_terminal_ends_the_run_killed_with_its_checkpoint(faces, mlflow_uri, tmp_path):
    """The terminal of a run hangs up (an SSH connection dropped): SIGHUP, twice, and every write to
    the terminal fails. The run ends KILLED with its last.pt, as after Ctrl-C, and says how to resume
    in its log. (Before, SIGHUP's default action ended the process at once: its run stayed RUNNING
    until a later command on this host found its process gone.)"""
    code, out = hang_up(train_args(faces, mlflow_uri, "hangup", tmp_path, epochs=40), "epoch   2/40")
    assert code == 1, out[-3000:]  # colorize's exit, not the signal's (-SIGHUP)
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = only_run(client, "hangup")
    assert run.info.status == "KILLED" and run.data.tags.get("failure") is None, (run.info.status, run.data.tags)
    assert "last.pt" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert read_checkpoint(tmp_path / "last.pt")["run_id"] == run.info.run_id
    assert f"interrupted: resume with trainer.resume={run.info.run_id}" in (tmp_path / "train.log").read_text()


@pytest.mark.e2e
def test_a_run_started_under_nohup_trains_on_through_a_sighup(faces, mlflow_uri, tmp_path):
    """`nohup colorize-train ... &` starts the run with SIGHUP ignored: colorize leaves it so, and the
    run finishes when its terminal hangs up."""
    code, out = run_until(train_args(faces, mlflow_uri, "nohup", tmp_path), "epoch   2/5", signal.SIGHUP, nohup=True)
    assert code == 0, out[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = only_run(client, "nohup")
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_mse")] == [1, 2, 3, 4, 5]


@pytest.mark.e2e
def test_sigkilled_sweep_continues_where_it_stopped(faces, mlflow_uri, tmp_path):
    args = ["-m", "optimizer.lr=0.1,0.05,0.02", *train_args(faces, mlflow_uri, "sigkill", tmp_path, epochs=4)[:-1],
            f"hydra.sweep.dir={tmp_path}"]
    args.remove("optimizer.lr=0.05")
    # killed during the second trial's third epoch
    code, out = run_until(args, ["lr0.05 on faces", "epoch   2/4"], signal.SIGKILL)
    assert code == -signal.SIGKILL
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("sigkill")
    before = client.search_runs([exp.experiment_id])
    orphans = [r for r in before if r.info.status == "RUNNING"]
    assert len(orphans) == 2  # the parent and the second trial: what a SIGKILL leaves behind
    second = next(r for r in orphans if "mlflow.parentRunId" in r.data.tags)

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished in this sweep" in again.stderr or "already finished in this sweep" in again.stdout
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(c.data.params["optimizer.lr"] for c in children) == ["0.02", "0.05", "0.1"]
    assert {c.info.status for c in runs} == {"FINISHED"}  # nothing left RUNNING, nothing duplicated
    for child in children:
        assert [m.step for m in sorted(client.get_metric_history(child.info.run_id, "val_mse"),
                                       key=lambda m: m.step)] == [1, 2, 3, 4]
    assert {r.info.run_id for r in before} <= {r.info.run_id for r in runs}  # the killed run was resumed
    assert len(runs) == len(before) + 1  # ... and only the third trial is new
    assert second.info.run_id in {c.info.run_id for c in children}


@pytest.mark.e2e
def test_unreachable_mlflow_server_fails_fast_before_training(faces, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    proc = run_cli(*train_args(faces, uri, "x", tmp_path), timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"colorize: error: cannot reach MLflow tracking server '{uri}'")
    assert "epoch" not in proc.stderr


@pytest.mark.e2e
def test_mlflow_server_going_away_mid_run_does_not_lose_the_training(faces, tmp_path):
    server, uri = start_mlflow_server(tmp_path / "server")
    try:
        import subprocess
        import sys

        proc = subprocess.Popen(
            [sys.executable, "-m", "colorize.train", *train_args(faces, uri, "away", tmp_path / "run", epochs=4)],
            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "epoch   1/4" in line:
                stop_process_group(server)
        proc.wait(timeout=300)
    finally:
        stop_process_group(server)
    out = "".join(lines)
    assert proc.returncode == 1, out[-3000:]
    assert "epoch   4/4" in out  # training went on to the end
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    assert "colorize: error: MLflow" in out.strip().splitlines()[-1] and "checkpoint at" in out


@pytest.mark.e2e
def test_four_parallel_trials_on_one_sqlite_store_lose_nothing(faces, tmp_path):
    uri = f"sqlite:///{tmp_path}/store.db"
    proc = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "optimizer.lr=0.1,0.05,0.02,0.01",
                   "data=faces", f"data.root={faces}", "data.limit=64", "trainer.max_epochs=3",
                   f"tracking.uri={uri}", "tracking.experiment=parallel", f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("parallel")
    children = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        for key in METRICS:
            assert sorted(m.step for m in client.get_metric_history(child.info.run_id, key)) == [1, 2, 3], key
        assert {"best.pt", "samples.png", "config.yaml"} <= {a.path for a in client.list_artifacts(child.info.run_id)}


@pytest.fixture
def layout(tmp_path, faces):
    root = tmp_path / "data"
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        for i in range(4):
            shutil.copy(faces / split / "images" / f"{i}.jpg", root / split / "images" / f"{i}.jpg")
    return root


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["corrupt", "not_an_image", "grayscale", "wrong_size"])
def test_bad_image_files_are_named_and_nothing_tracked_is_lost(case, layout, mlflow_uri, tmp_path):
    bad = layout / "train" / "images" / "9.jpg"
    good = layout / "train" / "images" / "0.jpg"
    if case == "corrupt":
        bad.write_bytes(good.read_bytes()[:200])
    elif case == "not_an_image":
        bad.write_text("hello")
    elif case == "grayscale":
        Image.open(good).convert("L").save(bad)
    else:
        Image.open(good).resize((40, 40)).save(bad)
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("e2e")
    before = {r.info.run_id: r.data.metrics for r in client.search_runs([exp.experiment_id])} if exp else {}
    proc = run_cli("data=faces", f"data.root={layout}", "trainer.max_epochs=1", f"tracking.uri={mlflow_uri}",
                   "tracking.experiment=e2e", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("colorize: error: ") and str(bad) in last
    exp = client.get_experiment_by_name("e2e")
    after = {r.info.run_id: r.data.metrics for r in client.search_runs([exp.experiment_id])} if exp else {}
    assert after == before


def test_checkpoint_of_another_model_config_names_the_mismatch(tmp_path):
    path = save_checkpoint(tmp_path / "two.pt", model_of("baseline", layers=2, channels=8), {"layers": 2})
    state = read_checkpoint(path)["state_dict"]
    with pytest.raises(ColorizeError, match=r"missing keys \['4.bias', '4.weight'\]"):
        load_weights(model_of("baseline", layers=3, channels=8), state, str(path))
    with pytest.raises(ColorizeError, match=r"shape mismatch 0.bias: checkpoint \(8,\) vs model \(16,\)"):
        load_weights(model_of("baseline", layers=2, channels=16), state, str(path))


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.e2e
def test_malicious_pickle_checkpoint_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Payload()
    evil.marker = marker
    path = tmp_path / "evil.pt"
    with path.open("wb") as fh:
        pickle.dump({"format": "colorize-checkpoint/1", "state_dict": evil}, fh)
    with pytest.raises(ColorizeError, match="was refused"):
        read_checkpoint(path)
    proc = run_cli(str(path), str(tmp_path), module="colorize.predict")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not marker.exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "override,key",
    [("model.layerz=2", "model.layerz"), ("model.layers=two", "model.layers"), ("trainer.device=tpu", "trainer.device"),
     ("model.kernel_size=4", "model.kernel_size=4 is invalid")],
)
def test_bad_overrides_name_the_key_without_a_traceback(override, key, tmp_path):
    proc = run_cli(override, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and key in proc.stderr


def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", model_of("baseline", layers=2), {"layers": 2}, epoch=1)
    before = path.read_bytes()

    def disk_full(obj, fh, *args, **kwargs):
        fh.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model_of("baseline", layers=4), {"layers": 4}, epoch=2)
    assert path.read_bytes() == before and read_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_a_trial_whose_worker_falls_silent_is_failed_retried_and_its_run_killed(tmp_path, mlflow_uri):
    """Its worker ran on another host (no pid to check): Optuna's heartbeat finds it instead."""
    import time

    import optuna

    from colorize import names
    from colorize.search.recovery import Heartbeat, fail_stale
    from colorize.search.storage import open_storage
    from colorize.search.recovery import end_trial_runs
    from colorize.tracking.store import Tracker

    # (a grace of 4 beats: the live trial's thread would have to be starved 3 s to fall silent; sqlite's
    # timestamps are whole seconds)
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=4)
    study = optuna.create_study(study_name="silent", storage=storage)
    alive = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    silent = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    tracker = Tracker(mlflow_uri, "heartbeat")
    runs = {}
    for trial in (alive, silent):
        run = tracker.create_run(f"trial {trial.number}", tags={"host": "elsewhere", "pid": "1",
                                                                 names.OPTUNA_STUDY_TAG: "silent"})
        run.log_params({"optuna_trial": trial.number})
        runs[trial.number] = run.run_id
    beating = Heartbeat(storage, alive._trial_id)
    Heartbeat(storage, silent._trial_id).stop()  # one beat, then its host goes away
    time.sleep(5.5)  # past the grace period

    assert fail_stale(storage, "silent") == [silent.number]
    assert end_trial_runs(tracker, "silent", [silent.number]) == [runs[silent.number]]
    beating.stop()
    trials = optuna.load_study(study_name="silent", storage=storage).trials
    assert trials[alive.number].state == optuna.trial.TrialState.RUNNING
    assert trials[silent.number].state == optuna.trial.TrialState.FAIL
    retry = trials[-1]  # queued again with the same parameters
    assert retry.state == optuna.trial.TrialState.WAITING and retry.params == silent.params
    assert retry.system_attrs["failed_trial"] == silent.number
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(runs[silent.number]).info.status == "KILLED"
    assert client.get_run(runs[alive.number]).info.status == "RUNNING"
