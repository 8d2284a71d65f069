"""No run lost, none left damaged: folders of their own, resume on unfinished runs only, no run left
RUNNING by a store or disk failure, one line for each store and disk problem. Real processes, real
sqlite stores, real file systems (tmpfs where the machine can mount one)."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from colorize.folders import FolderInUse, take
from tests.conftest import METRICS, run_cli, run_until

SMALL = ["model.layers=2", "model.channels=8", "model.batch_norm=true", "optimizer.lr=0.05"]


def faces_args(faces, uri, experiment, limit=40, epochs=3):
    return ["data=faces", f"data.root={faces}", f"data.limit={limit}", f"trainer.max_epochs={epochs}", *SMALL,
            f"tracking.uri={uri}", f"tracking.experiment={experiment}"]


def one_line_error(proc) -> str:
    """The command failed with exit 1 and a single `colorize: error:` line, no traceback."""
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("colorize: error: "), proc.stderr[-3000:]
    return last


def runs(uri, experiment):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client, ([] if exp is None else client.search_runs([exp.experiment_id]))


def histories(client, run_id):
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in METRICS}


def snapshot(client, run_id):
    """Everything a command could damage: status, tags, every metric history, the artifact listing."""
    run = client.get_run(run_id)
    keys = list(run.data.metrics)
    return (run.info.status, run.info.end_time, dict(run.data.tags),
            {k: sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, k)) for k in keys},
            sorted((a.path, a.file_size) for a in client.list_artifacts(run_id)))


# ----------------------------------------------------------------------------- folders of their own
def test_a_folder_is_held_while_live_and_free_once_released(tmp_path):
    fd = take(tmp_path / "run", "hydra.run.dir")
    assert f"pid {os.getpid()}" in (tmp_path / "run" / ".colorize.lock").read_text()
    with pytest.raises(FolderInUse, match=r"hydra.run.dir='.*run' is in use by a live run \(pid \d+ on "):
        take(tmp_path / "run", "hydra.run.dir")  # (a second descriptor: flock refuses it, as another process)
    os.close(fd)
    os.close(take(tmp_path / "run", "hydra.run.dir"))


def test_the_default_folders_end_in_a_random_suffix(make_cfg):
    cfg = make_cfg(return_hydra_config=True)
    run_dir, sweep_dir = str(cfg.hydra.run.dir), str(cfg.hydra.sweep.dir)
    assert run_dir.rsplit("-", 1)[1].isalnum() and len(run_dir.rsplit("-", 1)[1]) == 8
    again = make_cfg(return_hydra_config=True)
    assert str(again.hydra.run.dir) != run_dir and str(again.hydra.sweep.dir) != sweep_dir
    preset = make_cfg("sweep=lr", return_hydra_config=True)
    assert len(str(preset.hydra.sweep.dir).rsplit("-", 1)[1]) == 8


@pytest.mark.e2e
def test_two_runs_in_the_same_second_keep_their_folders_and_each_resumes_to_its_own_metrics(
        faces, mlflow_uri, tmp_path):
    """The issue's reproduction: A and B start together in one folder with the same timestamp (the
    time part pinned, as two commands in one second get it), SIGTERM to A after its epoch 2."""
    same_second = "hydra.run.dir=outputs/runs/2026-01-01/10-00-00-${colorize.unique:}"
    a_args = faces_args(faces, mlflow_uri, "same-second", limit=60, epochs=5)
    b_args = faces_args(faces, mlflow_uri, "same-second", limit=30, epochs=6)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    b = subprocess.Popen([sys.executable, "-m", "colorize.train", *b_args, same_second], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    code, out = run_until([*a_args, same_second], "epoch   2/5", signal.SIGTERM, cwd=tmp_path)
    b_out = b.communicate(timeout=300)[0]
    assert code != 0 and "interrupted (SIGTERM)" in out and b.returncode == 0, b_out[-3000:]
    folders = sorted((tmp_path / "outputs/runs/2026-01-01").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("10-00-00-") for f in folders)
    client, both = runs(mlflow_uri, "same-second")
    run_a = next(r for r in both if r.data.params["data.limit"] == "60")
    run_b = next(r for r in both if r.data.params["data.limit"] == "30")
    assert (run_a.info.status, run_b.info.status) == ("KILLED", "FINISHED")
    assert run_a.data.tags["output_dir"] != run_b.data.tags["output_dir"]
    for run in (run_a, run_b):  # each folder holds its own run's checkpoint
        from colorize.training.checkpoint import read_checkpoint

        assert read_checkpoint(Path(run.data.tags["output_dir"]) / "last.pt")["run_id"] == run.info.run_id
    b_before = snapshot(client, run_b.info.run_id)

    resumed = run_cli(f"trainer.resume={run_a.info.run_id}", f"tracking.uri={mlflow_uri}",
                      "tracking.experiment=same-second", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = run_cli(*faces_args(faces, mlflow_uri, "same-second-straight", limit=60, epochs=5),
                       f"hydra.run.dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    _, (reference,) = runs(mlflow_uri, "same-second-straight")
    got, want = histories(client, run_a.info.run_id), histories(client, reference.info.run_id)
    for key in METRICS:
        assert [s for s, _ in got[key]] == [1, 2, 3, 4, 5], key  # no duplicate steps
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in want[key]], abs=1e-6), key
    assert client.get_run(run_a.info.run_id).info.status == "FINISHED"
    assert snapshot(client, run_b.info.run_id) == b_before  # B untouched by A's resume


@pytest.mark.e2e
def test_a_folder_a_live_run_or_sweep_uses_is_refused_in_one_line(tmp_path):
    for flag, key in ((None, "hydra.run.dir"), ("-m", "hydra.sweep.dir")):
        args = [*([flag] if flag else []), "trainer.max_epochs=100000", f"{key}={tmp_path / key}",
                f"tracking.uri=sqlite:///{tmp_path}/store.db"]
        live = subprocess.Popen([sys.executable, "-m", "colorize.train", *args], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            for line in live.stdout:
                if "epoch   1/" in line:
                    break
            second = run_cli(*([flag] if flag else []), "trainer.max_epochs=1", f"{key}={tmp_path / key}",
                             f"tracking.uri=sqlite:///{tmp_path}/store.db", cwd=tmp_path)
        finally:  # (SIGTERM: a CI started in the background runs its tests with SIGINT ignored)
            live.send_signal(signal.SIGTERM)
            try:
                live.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                live.kill()
                raise
        last = one_line_error(second)
        assert f"{key}='{tmp_path / key}' is in use by a live run (pid {live.pid} on " in last
    _, all_runs = runs(f"sqlite:///{tmp_path}/store.db", "colorize")
    assert "RUNNING" not in {r.info.status for r in all_runs}  # the refused commands opened no run


# ----------------------------------------------------------------------------- resume
@pytest.mark.e2e
def test_resuming_a_finished_run_is_refused_and_leaves_it_exactly_as_it_was(faces, mlflow_uri, tmp_path):
    done = run_cli(*faces_args(faces, mlflow_uri, "finished", limit=30, epochs=2), f"hydra.run.dir={tmp_path / 'a'}")
    assert done.returncode == 0, done.stderr[-3000:]
    client, (run,) = runs(mlflow_uri, "finished")
    before = snapshot(client, run.info.run_id)
    again = run_cli(*faces_args(faces, mlflow_uri, "finished", limit=30, epochs=2),
                    f"trainer.resume={run.info.run_id}", f"hydra.run.dir={tmp_path / 'b'}")
    last = one_line_error(again)
    assert f"run {run.info.run_id} finished at epoch 2; nothing to resume" in last
    by_path = run_cli(f"trainer.resume={tmp_path / 'a' / 'last.pt'}", f"tracking.uri={mlflow_uri}",
                      "tracking.experiment=finished", f"hydra.run.dir={tmp_path / 'c'}")
    assert "nothing to resume" in one_line_error(by_path)
    assert snapshot(client, run.info.run_id) == before


# ----------------------------------------------------------------------------- stores and URIs
@pytest.mark.e2e
@pytest.mark.parametrize("uri,message", [
    ("://", "tracking URI '://' is not an MLflow store"),
    ("htp:/:bad uri", "tracking URI 'htp:/:bad uri' is not an MLflow store"),
    ("mysql+pymysql://u@127.0.0.1:1/db", "needs the database driver 'pymysql': pip install 'pymysql'"),
    ("postgresql+psycopg://u@127.0.0.1:1/db", "cannot reach the database of MLflow store "
                                              "'postgresql+psycopg://u@127.0.0.1:1/db' within 5 s"),
])
def test_a_bad_or_unreachable_store_uri_is_one_line(uri, message, tmp_path):
    proc = run_cli("trainer.max_epochs=1", "data.limit=8", f"tracking.uri='{uri}'", f"hydra.run.dir={tmp_path}/run",
                   cwd=tmp_path)
    assert message in one_line_error(proc)


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["corrupt", "readonly"])
def test_a_corrupt_or_read_only_store_is_one_line_and_untouched(case, tmp_path):
    db = tmp_path / "mlflow.db"
    args = ["trainer.max_epochs=1", "data.limit=8", f"tracking.uri=sqlite:///{db}"]
    if case == "corrupt":
        db.write_bytes(os.urandom(64 * 1024))
    else:
        assert run_cli(*args, f"hydra.run.dir={tmp_path}/first", cwd=tmp_path).returncode == 0
        if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not supported on this file system")
    before = db.read_bytes()
    try:
        proc = run_cli(*args, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True)
    expected = "is not an MLflow database" if case == "corrupt" else "is read-only: make it writable"
    assert f"'{db}' {expected}" in one_line_error(proc)
    assert db.read_bytes() == before


@pytest.mark.e2e
def test_reading_commands_never_create_a_store(tmp_path):
    report = run_cli(module="colorize.report", cwd=tmp_path)
    assert f"no MLflow store at '{tmp_path / 'mlflow.db'}'" in one_line_error(report)
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (8, 8)).save(images / "0.png")
    predict = run_cli("0123456789abcdef0123456789abcdef", str(images), module="colorize.predict", cwd=tmp_path)
    assert "no MLflow store at" in one_line_error(predict)
    registered = run_cli("models:/faces@champion", str(images), module="colorize.predict", cwd=tmp_path)
    assert "no MLflow store at" in one_line_error(registered)
    register = run_cli("0123456789abcdef0123456789abcdef", "faces", module="colorize.register", cwd=tmp_path)
    assert "no MLflow store at" in one_line_error(register)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # no mlflow.db, no lock, no outputs


# ----------------------------------------------------------------------------- full disks
@pytest.fixture
def small_fs(tmp_path):
    """A real small file system (a 4 MiB tmpfs), filled on demand; skips where mounting is not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")

    def fill(leave_kib: int = 0) -> None:
        """Write a filler file until only `leave_kib` KiB stay free."""
        free = shutil.disk_usage(mnt).free // 1024 - leave_kib
        with open(mnt / "filler", "wb") as fh:
            try:
                fh.write(b"\0" * max(0, free) * 1024)
            except OSError:
                pass

    yield mnt, fill
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.e2e
def test_a_full_disk_when_the_run_starts_is_one_line(small_fs, faces, mlflow_uri):
    mnt, fill = small_fs
    fill()
    proc = run_cli(*faces_args(faces, mlflow_uri, "full-start", limit=8, epochs=1), f"hydra.run.dir={mnt}/run")
    assert "no space left on device" in one_line_error(proc)
    assert runs(mlflow_uri, "full-start")[1] == []  # stopped before any run was opened


@pytest.mark.e2e
def test_a_full_disk_while_the_samples_are_written_ends_the_run_failed(small_fs, faces, mlflow_uri):
    mnt, fill = small_fs
    fill(leave_kib=120)  # room for the checkpoints and logs, not for samples.png
    proc = run_cli(*faces_args(faces, mlflow_uri, "full-samples", limit=16, epochs=1), f"hydra.run.dir={mnt}/run")
    assert "no space left on device" in one_line_error(proc)
    _, (run,) = runs(mlflow_uri, "full-samples")
    assert run.info.status == "FAILED" and run.data.tags["failure"] == "disk_full"


@pytest.mark.e2e
def test_a_full_artifact_folder_ends_the_run_failed_and_resume_completes_it(small_fs, faces, tmp_path):
    """Training finishes, its artifacts cannot be stored: FAILED (failure=disk_full), not RUNNING; with
    space again, trainer.resume=<run> logs what was missing without training again."""
    mnt, fill = small_fs
    uri, experiment = f"sqlite:///{tmp_path}/store.db", "full-artifacts"
    args = [*faces_args(faces, uri, experiment, limit=16, epochs=2), f"tracking.artifact_location={mnt.as_uri()}"]
    fill()
    proc = run_cli(*args, f"hydra.run.dir={tmp_path}/run")
    assert "training finished, checkpoint at" in one_line_error(proc)
    client, (run,) = runs(uri, experiment)
    assert run.info.status == "FAILED" and run.data.tags["failure"] == "disk_full"
    (mnt / "filler").unlink()
    done = run_cli(f"trainer.resume={run.info.run_id}", f"tracking.uri={uri}", f"tracking.experiment={experiment}",
                   f"hydra.run.dir={tmp_path}/completed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch   " not in done.stderr  # nothing trained again
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["best_epoch"] >= 1
    assert {"best.pt", "last.pt", "samples.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert [s for s, _ in histories(client, run.info.run_id)["val_mse"]] == [1, 2]


@pytest.mark.e2e
def test_a_store_on_a_full_disk_leaves_no_run_running(small_fs, faces, tmp_path):
    """The sqlite store's disk fills mid-run: the store takes no write, not even FAILED. The run's
    folder says how it ended, and the next command that opens the store ends it so."""
    mnt, fill = small_fs
    uri, experiment = f"sqlite:///{mnt}/mlflow.db", "full-store"
    args = [*faces_args(faces, uri, experiment, limit=16, epochs=2), f"tracking.artifact_location={tmp_path.as_uri()}"]
    assert run_cli(*args, f"hydra.run.dir={tmp_path}/first").returncode == 0  # the store exists
    fill(leave_kib=24)  # room to open the run, not to log all it will
    proc = run_cli(*args, f"hydra.run.dir={tmp_path}/second")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("colorize: error: ") and "Traceback" not in proc.stderr
    (mnt / "filler").unlink()
    later = run_cli(*args, f"hydra.run.dir={tmp_path}/third")
    assert later.returncode == 0, later.stderr[-3000:]
    _, all_runs = runs(uri, experiment)
    assert "RUNNING" not in {r.info.status for r in all_runs}
    failed = [r for r in all_runs if r.info.status == "FAILED"]
    assert all(r.data.tags["failure"] == "disk_full" for r in failed)
    assert len(all_runs) == 2 + len(failed) and len(failed) <= 1  # the second run, if it opened, is FAILED


# ----------------------------------------------------------------------------- exit codes and words
@pytest.mark.e2e
def test_lr_inf_is_refused_before_any_data_is_read(tmp_path):
    proc = run_cli("optimizer.lr=inf", "data=faces", "data.root=/nonexistent", f"hydra.run.dir={tmp_path}")
    assert "optimizer.lr=inf is invalid: must be a finite number > 0" in one_line_error(proc)


@pytest.mark.e2e
def test_a_diverged_single_run_exits_non_zero_and_a_sweep_goes_on(faces, mlflow_uri, tmp_path):
    single = run_cli("data=faces", f"data.root={faces}", "data.limit=32", "trainer.max_epochs=2", "optimizer.lr=1e6",
                     f"tracking.uri={mlflow_uri}", "tracking.experiment=diverged", f"hydra.run.dir={tmp_path / 'one'}")
    last = one_line_error(single)
    assert "training diverged at epoch" in last and "try a lower optimizer.lr" in last
    sweep = run_cli("-m", "data=faces", f"data.root={faces}", "data.limit=100", "trainer.max_epochs=6",
                    "model.layers=2", "model.channels=8", "model.kernel_size=5", "trainer.seed=0,1",
                    "optimizer.lr=0.1,1", f"tracking.uri={mlflow_uri}", "tracking.experiment=diverging-sweep",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    client, trials = runs(mlflow_uri, "diverging-sweep")
    trials = [t for t in trials if "mlflow.parentRunId" in t.data.tags]
    assert len(trials) == 4
    for trial in trials:
        val = [v for _, v in histories(client, trial.info.run_id)["val_mse"]]
        if trial.info.status == "FINISHED":  # a finished trial has finite validation metrics and a real best epoch
            assert all(v == v and v != float("inf") for v in val) and trial.data.metrics["best_epoch"] >= 1
        else:
            assert trial.data.tags["diverged"] == "true" and trial.data.tags["failure"] == "diverged"
    assert "best epoch 0" not in sweep.stderr


@pytest.mark.e2e
def test_predict_refuses_a_name_with_a_line_break_and_composites_transparency(tmp_path, faces, mlflow_uri):
    run = run_cli(*faces_args(faces, mlflow_uri, "words", limit=8, epochs=1), f"hydra.run.dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr[-3000:]
    images = tmp_path / "images"
    images.mkdir()
    rgba = Image.open(faces / "val" / "images" / "0.jpg").convert("RGBA")
    rgba.putalpha(128)
    rgba.save(images / "0.png")
    ok = run_cli(str(tmp_path / "run" / "best.pt"), str(images), "--out", str(tmp_path / "est"),
                 module="colorize.predict")
    assert ok.returncode == 0 and "1 image(s) have transparency" in ok.stderr and "composited onto white" in ok.stderr
    shutil.copy(images / "0.png", images / "1\n.png")
    bad = run_cli(str(tmp_path / "run" / "best.pt"), str(images), "--out", str(tmp_path / "est2"),
                  module="colorize.predict")
    assert "holds a line break" in one_line_error(bad) and not (tmp_path / "est2").exists()


@pytest.mark.e2e
def test_evaluate_names_a_folder_and_colourless_ground_truth_for_what_they_are(tmp_path, faces):
    import numpy as np

    np.save(tmp_path / "est.npy", np.zeros((1, 80, 80, 3), np.uint8))
    folder = run_cli(str(tmp_path / "est.npy"), str(tmp_path), module="colorize.evaluate")
    assert f"'{tmp_path}' is a folder: expected the names file" in one_line_error(folder)
    gray = tmp_path / "gray.png"
    Image.open(faces / "val" / "images" / "0.jpg").convert("L").save(gray)
    (tmp_path / "names.txt").write_text(f"{gray}\n")
    colourless = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert "is grayscale: scoring needs the listed images' colour (ground truth)" in one_line_error(colourless)


@pytest.mark.e2e
@pytest.mark.parametrize("content", ["random", "pickle"])
def test_an_unsafe_checkpoint_never_gets_torchs_weights_only_advice(content, tmp_path):
    import pickle

    path = tmp_path / "x.pt"
    path.write_bytes(os.urandom(4096) if content == "random" else pickle.dumps({"a": Path("x")}))
    Image.new("L", (80, 80)).save(tmp_path / "0.png")
    proc = run_cli(str(path), str(tmp_path), module="colorize.predict")
    last = one_line_error(proc)
    assert "not a colorize checkpoint, or not a safe one" in last and "weights_only=False" not in proc.stderr


# ----------------------------------------------------------------------------- the report
@pytest.mark.e2e
def test_the_report_of_a_killed_sweep_says_it_is_incomplete_and_of_its_rerun_complete(faces, mlflow_uri, tmp_path):
    """SIGKILLed mid-trial: the report says what is undone. Then rerun on another machine that has the
    store but not the job folders or artifacts (a split GPU study carries the sqlite file only): the
    killed trial has nothing to resume from, so it starts over as a new run of the same job, and the
    report counts 3 trials, not 4, and calls the sweep complete."""
    common = [a for a in faces_args(faces, mlflow_uri, "killed-sweep", limit=32, epochs=3) if "lr=" not in a]
    args = ["-m", "optimizer.lr=0.1,0.05,0.02", *common, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    code, _ = run_until(args, ["lr0.05 on faces", "epoch   1/3"], signal.SIGKILL)
    assert code == -signal.SIGKILL
    client, all_runs = runs(mlflow_uri, "killed-sweep")
    parent = next(r for r in all_runs if "mlflow.parentRunId" not in r.data.tags)
    report_args = ["--uri", mlflow_uri, "--experiment", "killed-sweep", "--sweep", parent.info.run_id]
    proc = run_cli(*report_args, "--out", str(tmp_path / "report"), module="colorize.report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = next((tmp_path / "report").glob("*/report.md")).read_text()
    assert "Incomplete: the sweep is killed, 1 trial(s) killed, 1 of 3 planned trial(s) never started" in report
    assert "| running" not in report and " nan" not in report

    (killed,) = [r for r in all_runs if r.info.status == "RUNNING" and r is not parent]
    shutil.rmtree(tmp_path / "sweep")
    shutil.rmtree(Path(killed.info.artifact_uri.removeprefix("file://")))  # its last.pt with them
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, all_runs = runs(mlflow_uri, "killed-sweep")
    trials = {r.info.run_id: r.info.status for r in all_runs if r.info.run_id != parent.info.run_id}
    assert trials.pop(killed.info.run_id) == "KILLED" and sorted(trials.values()) == ["FINISHED"] * 3
    # the sweep's own summary leaves the killed attempt out too
    assert "sweep summary (3 trials; 1 killed attempt(s), each rerun to its end as a new run, left out)" in proc.stdout
    assert len((tmp_path / "sweep" / "summary.csv").read_text().splitlines()) == 1 + 3
    proc = run_cli(*report_args, "--out", str(tmp_path / "rerun"), module="colorize.report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = next((tmp_path / "rerun").glob("*/report.md")).read_text()
    assert "3 trials." in report and "Incomplete" not in report
    assert "1 killed attempt(s), each rerun to its end as a new run, are left out." in report


def test_the_next_command_ends_orphans_as_their_folder_says_else_killed(mlflow_uri, tmp_path):
    """Runs left RUNNING by dead processes on this host: one whose store refused its end left
    run_end.json (FAILED, disk_full); one simply killed left nothing (KILLED, process_gone). Opening
    the store ends both; a live process's run is left alone."""
    import json

    from colorize.tracking.failures import END_FILE
    from colorize.tracking.owners import owner_tags
    from colorize.tracking.store import Tracker

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    tracker = Tracker(mlflow_uri, "orphans")
    ids = {}
    for name in ("refused", "killed", "live"):
        folder = tmp_path / name
        folder.mkdir()
        owner = owner_tags() if name == "live" else {**owner_tags(), "pid": dead.stdout.strip()}
        ids[name] = tracker.create_run(name, tags={**owner, "output_dir": str(folder)}).run_id
    (tmp_path / "refused" / END_FILE).write_text(json.dumps({"run_id": ids["refused"], "status": "FAILED",
                                                             "failure": "disk_full"}))
    Tracker(mlflow_uri, "orphans")  # the next command that opens the store
    client = MlflowClient(tracking_uri=mlflow_uri)
    ended = {name: client.get_run(run_id) for name, run_id in ids.items()}
    assert (ended["refused"].info.status, ended["refused"].data.tags["failure"]) == ("FAILED", "disk_full")
    assert (ended["killed"].info.status, ended["killed"].data.tags["failure"]) == ("KILLED", "process_gone")
    assert ended["live"].info.status == "RUNNING"


# A container's command: pid 1 of a pid namespace of its own, killed with the container (SIGKILL to
# `unshare` reaches it: --kill-child), as the OOM killer or a node drain ends a pod's container.
CONTAINER = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")


@pytest.mark.e2e
def test_a_sweep_killed_with_its_container_continues_in_the_restarted_one(faces, mlflow_uri, tmp_path):
    """A container runs its command as pid 1, and so does the container restarted after it was killed,
    on a host of the same name (a pod keeps its name). The runs the killed sweep left RUNNING name
    pid 1 on this host, which lives: it is the restarted command itself. When the process started
    tells them apart, and the same command continues the sweep in place. (Before, the live pid 1 was
    taken for the owner still training them: the rerun was refused, `kill 1` its advice.)"""
    if subprocess.run([*CONTAINER, "true"], capture_output=True).returncode != 0:
        pytest.skip("no pid namespaces here (unshare needs root)")
    args = ["-m", "data=faces", f"data.root={faces}", "data.limit=400", "trainer.max_epochs=4",
            "optimizer.lr=0.01,0.02", f"tracking.uri={mlflow_uri}", "tracking.experiment=container",
            f"hydra.sweep.dir={tmp_path}"]
    code, out = run_until(args, ["lr0.02 on faces", "epoch   2/4"], signal.SIGKILL, wrap=CONTAINER)
    client = MlflowClient(tracking_uri=mlflow_uri)
    left = [r for r in client.search_runs([client.get_experiment_by_name("container").experiment_id])
            if r.info.status == "RUNNING"]
    assert code == -signal.SIGKILL and [r.data.tags["pid"] for r in left] == ["1", "1"], out[-3000:]  # parent, trial
    again = subprocess.run([*CONTAINER, sys.executable, "-m", "colorize.train", *args], cwd=tmp_path.parent,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    runs = client.search_runs([client.get_experiment_by_name("container").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}, [(r.info.run_name, r.info.status)
                                                                              for r in runs]
    assert {r.info.run_id for r in left} <= {r.info.run_id for r in runs}  # continued in place, none twice
