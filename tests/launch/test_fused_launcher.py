"""The fused launcher (colorize/launch/: hydra/launcher=fused): it groups only what can fuse, tracks
each trial as its own run with the numbers the basic launcher logs, and a SIGKILLed fused sweep
resumes without duplicates, and a SIGTERMed one leaves no run RUNNING. (The stacked model itself:
tests/training/test_fused.py.)"""

import signal

import pytest
from mlflow.tracking import MlflowClient

from colorize.launch.fusing import FUSIBLE, groups
from tests.conftest import hang_up, run_cli, run_until


def test_the_launcher_fuses_only_jobs_that_differ_in_fusible_keys(make_cfg):
    jobs = [make_cfg(*o) for o in (
        ["trainer.seed=0", "optimizer.lr=0.1"], ["trainer.seed=1", "optimizer=adam"], ["model.layers=3"],
        ["trainer.seed=2", "trainer.early_stopping.patience=3"], ["model.layers=3", "optimizer.lr=1"],
        ["trainer.batch_size=8"], ["data.limit=10"], ["loss=l1"],
    )]
    assert groups(jobs, max_size=0) == [[0, 1, 3], [2, 4], [5], [6], [7]]
    assert groups(jobs, max_size=2) == [[0, 1], [2, 4], [3], [5], [6], [7]]
    assert "trainer.seed" in FUSIBLE and not any(k.startswith(("model", "data", "loss")) for k in FUSIBLE)


@pytest.mark.parametrize("n_jobs,max_group,refused",
                         [(0, 4, "n_jobs=0"), (1, -1, "max_group=-1"), (-2, 0, "n_jobs=-2")])
def test_the_launcher_refuses_settings_it_cannot_run(n_jobs, max_group, refused):
    from colorize.launch.fused_launcher import FusedLauncher

    with pytest.raises(ValueError, match=rf"^hydra\.launcher\.{refused} is invalid: must be an integer >= "):
        FusedLauncher(n_jobs=n_jobs, max_group=max_group)
    FusedLauncher(n_jobs=None, max_group=0)  # auto groups at once, groups of any size


def test_auto_chooses_what_was_measured_fastest_on_each_device():
    """docs/gpu/README.md (a lent H200, 2026-12-04): on CUDA single trials as CUDA graphs, 16 at once,
    beat fused groups; on a CPU a group pays the start-up once. A value given is kept as given."""
    from colorize.launch.fusing import auto_settings

    assert auto_settings("cuda", 16, None, None) == (16, 1)
    assert auto_settings("cuda", 64, None, None) == (16, 1)
    assert auto_settings("cuda", 4, None, None) == (4, 1)  # no more processes than cores
    assert auto_settings("cuda", 16, 2, 8) == (2, 8)
    assert auto_settings("cpu", 2, None, None) == (1, 16)
    assert auto_settings("cpu", 2, 2, 0) == (2, 0)


def test_the_sweepers_n_jobs_follows_the_launchers_auto():
    """`${colorize.parallel_jobs:}` (an Optuna batch's size, each job's threads) reads auto as the
    launcher will: 16 at once where CUDA is present (fewer cores: as many as cores), else 1."""
    import torch

    from colorize.cores import auto_jobs, available_cores, parallel_jobs

    assert (auto_jobs(True, 16), auto_jobs(True, 64), auto_jobs(True, 4), auto_jobs(False, 16)) == (16, 16, 4, 1)
    assert parallel_jobs(None) == auto_jobs(torch.cuda.is_available(), available_cores())
    assert parallel_jobs(1) == 1 and parallel_jobs("x") == 1


def test_a_job_shares_the_cores_with_the_jobs_its_launcher_runs_at_once(make_cfg):
    """A job's threads: the cores over its launcher's n_jobs; for auto, as resolved on the job's own
    device (a CPU job of a fused sweep runs alone, with every core, even where CUDA is present)."""
    from omegaconf import OmegaConf

    from colorize.launch.context import peers

    cpu_job = make_cfg("trainer.device=cpu")
    assert peers(cpu_job, OmegaConf.create({"n_jobs": None, "max_group": None})) == 1
    assert peers(cpu_job, OmegaConf.create({"n_jobs": 1})) == 1
    assert peers(cpu_job, OmegaConf.create({})) == 1  # the basic launcher has no n_jobs


def test_auto_on_a_cpu_fuses_the_sweep_into_one_group(faces, mlflow_uri, tmp_path):
    """A real fused sweep left at auto on the CPU: its 4 seeds x lr jobs train as one group of 4."""
    result = run_cli(*sweep_args(faces, mlflow_uri, "fused_auto", tmp_path / "auto", "hydra/launcher=fused",
                                 "trainer.device=cpu", "trainer.max_epochs=1", "data.limit=16"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fused launcher: 4 jobs in 1 groups of 4, 1 at a time" in result.stdout + result.stderr


def sweep_args(faces, uri, experiment, folder, *extra):
    return ["-m", "data=faces", f"data.root={faces}", "data.limit=100", "trainer.max_epochs=6",
            "model.layers=2", "model.kernel_size=5", "model.channels=8", "trainer.early_stopping.patience=1",
            "trainer.seed=0,1", "optimizer.lr=0.1,1", f"tracking.uri={uri}", f"tracking.experiment={experiment}",
            f"hydra.sweep.dir={folder}", *extra]


def trials(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {(r.data.params["trainer.seed"], r.data.params["optimizer.lr"]): r
                for r in runs if "mlflow.parentRunId" in r.data.tags}
    return parents, children, len(runs)


def history(client, run, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


@pytest.mark.e2e
def test_a_sigkilled_fused_sweep_resumes_and_logs_what_the_basic_launcher_logs(faces, mlflow_uri, tmp_path):
    basic = run_cli(*sweep_args(faces, mlflow_uri, "fused_basic", tmp_path / "basic"))
    assert basic.returncode == 0, basic.stderr[-3000:]
    args = sweep_args(faces, mlflow_uri, "fused", tmp_path / "fused", "hydra/launcher=fused")
    code, out = run_until(args, ["fused launcher: 4 jobs in 1 groups of 4", "epoch   3/6"], signal.SIGKILL)
    assert code == -signal.SIGKILL
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    _, expected, _ = trials(client, "fused_basic")
    parents, children, total = trials(client, "fused")
    assert len(parents) == 1 and len(children) == 4 and total == 5  # resumed in place: no run twice
    assert {c.info.status for c in [*parents, *children.values()]} <= {"FINISHED", "FAILED"}
    assert len({c.data.tags["fused_group"] for c in children.values()}) == 1
    assert {c.data.tags["fused_size"] for c in children.values()} == {"4"}
    for key, run in children.items():
        alone = expected[key]
        assert run.info.status == alone.info.status, key  # an lr-1 trial diverges exactly when alone
        assert run.data.tags.get("diverged_epoch") == alone.data.tags.get("diverged_epoch"), key
        for metric in ("train_mse", "val_mse", "val_margin12_accuracy"):
            got, want = history(client, run, metric), history(client, alone, metric)
            assert [s for s, _ in got] == [s for s, _ in want] == list(range(1, len(want) + 1)), (key, metric)
            if key[1] == "0.1":  # lr 1 is chaotic: status and epochs only
                assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-5), (key, metric)


@pytest.mark.e2e
@pytest.mark.timeout(300)  # (a worker that trains on holds the output open: without the fix, a hang)
def test_a_sigkilled_sweeps_loky_workers_end_their_runs_and_the_same_command_resumes_them(faces, mlflow_uri, tmp_path):
    """SIGKILL to the sweep's process while two loky workers train: nothing is passed on, yet each
    worker sees it was re-parented, ends its group's runs KILLED with their last.pt, and ends. The
    same command then resumes every run in place. (Before, the orphans trained on to the end beside
    the new command, which started every trial again as a new run: each trained twice at once.)"""
    args = ["-m", "data=faces", f"data.root={faces}", "data.limit=400", "trainer.max_epochs=8",
            "trainer.early_stopping.patience=100", "trainer.seed=0,1", "optimizer.lr=0.01,0.02",
            "hydra/launcher=fused", "hydra.launcher.n_jobs=2", "hydra.launcher.max_group=2",
            f"tracking.uri={mlflow_uri}", "tracking.experiment=fused_orphans", f"hydra.sweep.dir={tmp_path}"]
    code, out = run_until(args, ["fused launcher: 4 jobs in 2 groups of 2/2, 2 at a time", "epoch   2/8"],
                          signal.SIGKILL)  # (returns once the workers, which share its output, ended too)
    assert code == -signal.SIGKILL, out[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    _, children, _ = trials(client, "fused_orphans")
    assert children and {c.info.status for c in children.values()} == {"KILLED"}, out[-3000:]
    assert [c.data.tags.get("failure") for c in children.values()] == [None] * len(children), out[-3000:]  # by them
    epochs = {k: len(history(client, c, "val_mse")) for k, c in children.items()}
    assert all(n < 8 for n in epochs.values()), (epochs, out[-3000:])  # stopped, not trained on
    again = run_cli(*args[:-1], f"hydra.sweep.dir={tmp_path}")
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    parents, resumed, total = trials(client, "fused_orphans")
    assert len(parents) == 1 and len(resumed) == 4 and total == 5, again.stderr[-3000:]  # in place: none twice
    assert all(resumed[k].info.run_id == c.info.run_id for k, c in children.items())  # the same runs
    assert all(r.info.status == "FINISHED" and [s for s, _ in history(client, r, "val_mse")] == list(range(1, 9))
               for r in resumed.values())


@pytest.mark.e2e
@pytest.mark.parametrize("sig,group", [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["sigterm", "ctrl-c"])
def test_an_interrupt_while_loky_workers_train_ends_every_run_killed_by_its_own_worker(
        faces, mlflow_uri, tmp_path, sig, group):
    """Two groups in two loky workers; SIGTERM to the sweep's process alone (which waits and runs no
    trial), or SIGINT to every process of the command, as Ctrl-C in a terminal. Either way the sweep
    passes the interrupt on once and waits: each worker ends its trials' runs KILLED with their
    last.pt, the parent run ends KILLED, and colorize's one line is the last. (Before, joblib killed
    the workers: their runs were ended by recovery, `failure=process_gone`, and Python's resource
    tracker warned of leaked semaphores after colorize's line.)"""
    experiment = f"fused_{sig.name}"
    args = ["-m", "data=faces", f"data.root={faces}", "data.limit=400", "trainer.max_epochs=40",
            "trainer.early_stopping.patience=100", "trainer.seed=0,1", "optimizer.lr=0.01,0.02",
            "hydra/launcher=fused", "hydra.launcher.n_jobs=2", "hydra.launcher.max_group=2",
            f"tracking.uri={mlflow_uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={tmp_path}"]
    code, out = run_until(args, ["fused launcher: 4 jobs in 2 groups of 2/2, 2 at a time", "epoch   2/40"],
                          sig, group=group)
    last = out.strip().splitlines()[-1]
    assert code == 1 and last.startswith(f"colorize: interrupted ({sig.name}): the sweep's parent run"), out[-3000:]
    assert "Traceback" not in out and "leaked semaphore" not in out, out[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    parents, children, _ = trials(client, experiment)
    assert [p.info.status for p in parents] == ["KILLED"]
    assert len(children) == 4 and {c.info.status for c in children.values()} == {"KILLED"}, \
        {k: c.info.status for k, c in children.items()}
    assert [c.data.tags.get("failure") for c in children.values()] == [None] * 4  # each ended by its worker
    # a run with an epoch logged keeps its last.pt (written first; the other group may be in its first epoch)
    kept = [("last.pt" in [a.path for a in client.list_artifacts(c.info.run_id)], "val_mse" in c.data.metrics)
            for c in children.values()]
    assert all(has_last or not has_epoch for has_last, has_epoch in kept) and sum(k for k, _ in kept) >= 2, kept


@pytest.mark.e2e
def test_a_hung_up_terminal_ends_every_run_killed_by_its_own_worker(faces, mlflow_uri, tmp_path):
    """The sweep above in a terminal that hangs up (an SSH connection dropped): SIGHUP to the sweep
    from the kernel, then to every process of the command from the shell, and every write to the
    terminal fails. It is one interrupt: each worker ends its trials' runs KILLED with their last.pt,
    the parent run ends KILLED, and the sweep exits 1. (Before, SIGHUP ended every process at once:
    the parent run and four trial runs stayed RUNNING.)"""
    args = ["-m", "data=faces", f"data.root={faces}", "data.limit=400", "trainer.max_epochs=40",
            "trainer.early_stopping.patience=100", "trainer.seed=0,1", "optimizer.lr=0.01,0.02",
            "hydra/launcher=fused", "hydra.launcher.n_jobs=2", "hydra.launcher.max_group=2",
            f"tracking.uri={mlflow_uri}", "tracking.experiment=fused_hangup", f"hydra.sweep.dir={tmp_path}"]
    code, out = hang_up(args, ["fused launcher: 4 jobs in 2 groups of 2/2, 2 at a time", "epoch   2/40"])
    assert code == 1, out[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    parents, children, _ = trials(client, "fused_hangup")
    assert [p.info.status for p in parents] == ["KILLED"], out[-3000:]
    assert len(children) == 4 and {c.info.status for c in children.values()} == {"KILLED"}, \
        {k: c.info.status for k, c in children.items()}
    assert [c.data.tags.get("failure") for c in children.values()] == [None] * 4  # each ended by its worker
    assert sum("last.pt" in [a.path for a in client.list_artifacts(c.info.run_id)] for c in children.values()) >= 2


@pytest.mark.e2e
def test_a_worker_interrupted_on_its_own_stops_the_other_groups_too(faces, mlflow_uri, tmp_path):
    """SIGTERM to one loky worker alone (`kill` of its pid): its group's runs end KILLED, the sweep
    passes the interrupt on to the other group, which ends its runs KILLED too, and the sweep ends in
    its one line, as an interrupt in one process would."""
    import os
    import subprocess
    import sys
    import time

    args = ["-m", "data=faces", f"data.root={faces}", "data.limit=400", "trainer.max_epochs=40",
            "trainer.early_stopping.patience=100", "trainer.seed=0,1", "optimizer.lr=0.01,0.02",
            "hydra/launcher=fused", "hydra.launcher.n_jobs=2", "hydra.launcher.max_group=2",
            f"tracking.uri={mlflow_uri}", "tracking.experiment=fused_one_worker", f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.Popen([sys.executable, "-m", "colorize.train", *args], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines, deadline = [], time.monotonic() + 300
    for line in proc.stdout:
        lines.append(line)
        workers = list((tmp_path / ".workers").glob("*")) if (tmp_path / ".workers").is_dir() else []
        if len(workers) == 2 and sum("epoch   2/40" in seen for seen in lines) >= 2:
            os.kill(int(workers[0].name), signal.SIGTERM)
            break
        assert time.monotonic() < deadline, "".join(lines)[-3000:]
    out = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, out[-3000:]
    assert out.strip().splitlines()[-1].startswith("colorize: interrupted (SIGTERM): the sweep's parent run")
    parents, children, _ = trials(MlflowClient(tracking_uri=mlflow_uri), "fused_one_worker")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert {c.info.status for c in children.values()} == {"KILLED"} and len(children) == 4, out[-3000:]
    assert [c.data.tags.get("failure") for c in children.values()] == [None] * 4  # each ended by its worker
