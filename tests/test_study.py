"""`colorize-study` (colorize/study.py): the presets in one command, then their report; a rerun skips."""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, hang_up, run_cli, runs_in


def test_by_default_the_study_runs_the_reference_experiments_then_the_search(make_cfg):
    """What one `colorize-study` runs, in order (each preset composes; the e2e test below runs two,
    test_progress counts their trials, test_sweeper checks their grids)."""
    from colorize.study import OPTUNA_PRESETS, PRESETS

    assert PRESETS == ("layers", "kernel_size", "kernels", "lr", "further", "search") and OPTUNA_PRESETS == ("search",)
    for preset in PRESETS:
        assert make_cfg(f"sweep={preset}", return_hydra_config=True).hydra.sweep.dir.startswith(
            f"outputs/multirun/{preset}/")


def test_study_splits_overrides_as_hydra_does_and_keeps_sweeper_settings_to_optuna_presets():
    from colorize.study import preset_overrides

    given = ["data=faces", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_trials=3",
             "trainer.max_epochs=1"]
    task, hydra = preset_overrides("layers", given)
    assert task == ["sweep=layers", "data=faces", "trainer.max_epochs=1"]  # what the parent's tag records
    assert hydra == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]  # the basic sweeper has no n_trials
    assert preset_overrides("search", given)[1] == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                                    "hydra.sweeper.n_trials=3"]


def test_study_gives_the_search_its_own_budget_replacing_the_common_keys():
    from colorize.study import preset_overrides

    given = ["data=faces", "trainer.max_epochs=20", "hydra/launcher=joblib"]
    own = ["trainer.max_epochs=6", "trainer.max_minutes=1.5", "hydra.sweeper.n_trials=12"]
    task, hydra = preset_overrides("search", given, own=own)
    assert task == ["sweep=search", "data=faces", "trainer.max_epochs=6", "trainer.max_minutes=1.5"]
    assert hydra == ["hydra/launcher=joblib", "hydra.sweeper.n_trials=12"]
    assert preset_overrides("layers", given)[0] == ["sweep=layers", "data=faces", "trainer.max_epochs=20"]


def test_every_presets_command_line_is_checked_before_any_runs(tmp_path, monkeypatch):
    """A setting only one preset's command carries (the search's own override here) is refused in one
    line naming the preset, as colorize-train would refuse it: before the grid presets run."""
    from colorize.errors import ColorizeError
    from colorize.study import main, plan_study

    monkeypatch.chdir(tmp_path)  # (had a study started, its store and outputs would be here)
    refused = ["--presets", "layers,search", "--search-override", "hydra.sweeper.n_jobs=0"]
    with pytest.raises(ColorizeError, match=r"^preset search: hydra\.sweeper\.n_jobs=0 is invalid: must be "):
        main(refused)
    with pytest.raises(ColorizeError, match=r"^preset layers: hydra\.launcher\.max_group=-1 is invalid"):
        main(["--presets", "layers", "hydra/launcher=fused", "hydra.launcher.max_group=-1"])
    args = argparse.Namespace(presets="layers,search", overrides=["data.limit=8"], seeds=2, search_trials=3,
                              search_override=["hydra.sweeper.n_jobs=2"])
    assert [c.preset for c in plan_study(args)] == ["layers", "search"]  # and good ones pass
    assert list(tmp_path.iterdir()) == []  # nothing was made


@pytest.mark.e2e
def test_study_with_a_launcher_override_finishes_and_skips_when_rerun(faces, mlflow_uri, tmp_path):
    """Options after overrides and Hydra overrides (launcher, sweeper) in any order; the parent run
    is found by its task overrides, so the study finishes and a re-run skips both presets, also with
    other speed settings. The launcher is the fused one: under the grid sweeper and under Optuna's."""
    common = [f"tracking.uri={mlflow_uri}", "tracking.experiment=study-fused"]
    args = ["data=faces", "--presets", "layers,search", f"data.root={faces}", "hydra/launcher=fused",
            "data.limit=16", "trainer.max_epochs=1", "hydra.sweeper.n_trials=2", "--name", "fused", *common]
    first = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "report: outputs/report/fused/report.md" in first.stdout
    shipped = re.search(r"^best: run ([0-9a-f]{32}) \(.*\); ship it: colorize-register \1 <name> --alias champion$",
                        first.stdout, re.MULTILINE)
    md = (tmp_path / "outputs/report/fused/report.md").read_text()
    assert shipped and f"Ship it: `colorize-register {shipped[1]} " in md  # the report's best, the same run
    assert "(sweep=layers)" in md and "(sweep=search)" in md
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("study-fused")
    runs = client.search_runs([exp.experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" in r.data.tags]) == 3 + 2  # n_trials reached search only
    # the same study with settings of how fast, not what (e.g. another machine's): nothing to run again
    second = run_cli(*args, "trainer.cuda_graphs=off", "trainer.num_threads=1", module="colorize.study", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stderr + second.stdout).count("skipping") == 2
    assert len(client.search_runs([exp.experiment_id])) == len(runs)


@pytest.mark.parametrize("trials,jobs,split", [
    ([9, 12, 18, 30, 24], 16, [2, 2, 3, 5, 4]),  # the grid as published, 3 seeds: 6 waves (max 30/5, 24/4, 18/3)
    ([3, 4], 3, [1, 2]),  # 2 waves: 3 on one job would be 3 waves
    ([3, 4], 16, [3, 4]),  # one wave each; no more jobs than trials
    ([5, 0], 2, [1, 1]),  # a preset of unknown size counts as one trial
    ([3, 4, 5], 2, None),  # fewer jobs than presets: none run at once
])
def test_split_jobs_gives_the_fewest_waves_with_the_fewest_jobs(trials, jobs, split):
    from colorize.study_runs import split_jobs

    assert split_jobs(trials, jobs) == split


def test_grid_presets_in_a_row_form_one_stage_and_each_search_its_own():
    from colorize.study import stages
    from colorize.study_runs import PresetCommand

    plan = [PresetCommand(p, [], [], 1) for p in ("layers", "lr", "search", "further", "kernels", "search")]
    assert [[c.preset for c in s] for s in stages(plan)] == [["layers", "lr"], ["search"], ["further", "kernels"],
                                                              ["search"]]


def test_a_preset_command_replaces_the_launchers_jobs_it_is_given():
    from colorize.study_runs import PresetCommand

    command = PresetCommand("lr", ["sweep=lr"], ["hydra/launcher=fused", "hydra.launcher.n_jobs=16"], 30)
    assert command.argv(["hydra.launcher.n_jobs=5"])[2:] == [
        "colorize.train", "-m", "sweep=lr", "hydra/launcher=fused", "hydra.launcher.n_jobs=5"]


def study_args(faces, mlflow_uri, experiment, *extra):
    return ["data=faces", f"data.root={faces}", "data.limit=16", "hydra/launcher=fused", "--presets",
            "layers,kernel_size", f"tracking.uri={mlflow_uri}", f"tracking.experiment={experiment}", *extra]


@pytest.mark.e2e
def test_grid_presets_run_at_once_with_the_jobs_split_and_a_log_each(faces, mlflow_uri, tmp_path):
    """--jobs 3 over layers (3 trials) and kernel_size (4): one job and two, each its own command
    with its parent run and log; the report covers both."""
    args = study_args(faces, mlflow_uri, "study-at-once", "trainer.max_epochs=1", "--jobs", "3", "--name", "once")
    proc = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stderr
    assert re.search(r"running at once \(1 of 3 jobs; log outputs/study/once/layers.log\): .*sweep=layers", said)
    assert re.search(r"running at once \(2 of 3 jobs; log outputs/study/once/kernel_size.log\): .*sweep=kernel_s", said)
    assert "study: 2/2 presets done (layers, kernel_size)" in said
    for preset, n_jobs in (("layers", 1), ("kernel_size", 2)):
        log = (tmp_path / f"outputs/study/once/{preset}.log").read_text()
        jobs = 3 if preset == "layers" else 4
        assert f"{jobs} jobs in {jobs} groups of" in log and f"{n_jobs} at a time" in log, log[-2000:]
    _, runs = runs_in(mlflow_uri, "study-at-once")
    parents = {r.data.tags.get("overrides", ""): r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(p.split()[0] for p in parents) == ["sweep=kernel_size", "sweep=layers"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 3 + 4 and {r.info.status for r in runs} == {"FINISHED"}
    md = (tmp_path / "outputs/report/once/report.md").read_text()
    assert "(sweep=layers)" in md and "(sweep=kernel_size)" in md


@pytest.mark.e2e
def test_an_interrupted_study_stops_the_presets_at_once_and_leaves_no_run_running(faces, mlflow_uri, tmp_path):
    """SIGINT to the study alone (its presets run in sessions of their own, as a scheduler's or a
    `timeout` would signal it): it forwards one to each preset, waits for their runs to end KILLED,
    and ends in one line with status 130. A rerun skips nothing: no preset completed."""
    # no trial may end on its own before the interrupt (early stopping, at its default patience of 5,
    # ended one in a CI run: 16 faces train in milliseconds an epoch)
    args = study_args(faces, mlflow_uri, "study-interrupted", "trainer.max_epochs=5000",
                      "trainer.early_stopping.patience=5000", "--jobs", "3", "--name", "stopped")
    proc = subprocess.Popen([sys.executable, "-m", "colorize.study", *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    logs = [tmp_path / f"outputs/study/stopped/{p}.log" for p in ("layers", "kernel_size")]
    deadline = time.monotonic() + 300  # (a bound on waiting for the presets to train, not a timing)
    while not all(f.exists() and "epoch   2/5000" in f.read_text() for f in logs):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("colorize: interrupted (SIGINT): the presets' runs ended KILLED")
    _, runs = runs_in(mlflow_uri, "study-interrupted")
    statuses = [r.info.status for r in runs]
    assert "RUNNING" not in statuses and statuses.count("KILLED") >= 2 + 2, statuses  # 2 parents, a trial each
    for f in logs:
        assert "interrupted" in f.read_text()


@pytest.mark.e2e
def test_a_study_whose_terminal_hangs_up_stops_its_preset_and_leaves_no_run_running(faces, mlflow_uri, tmp_path):
    """Presets one after another, the one running keeping the terminal, which hangs up (an SSH
    connection dropped): the study takes SIGHUP as an interrupt (once, though the shell and the kernel
    each send one), forwards it to the preset, whose runs end KILLED though its every write to the
    terminal now fails, and starts no other preset. (Before, the study died at once and its preset,
    in a session of its own, trained on with nobody to wait for it.)"""
    # (300 epochs: far more than the hang-up needs, and few enough that a preset left training by a
    # regression ends within seconds instead of loading the machine for the rest of the suite)
    args = study_args(faces, mlflow_uri, "study-hung-up", "trainer.max_epochs=300",
                      "trainer.early_stopping.patience=300", "--jobs", "1", "--name", "hungup")
    code, out = hang_up(args, "epoch   2/300", module="colorize.study", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert code == 130, out[-3000:]
    _, runs = runs_in(mlflow_uri, "study-hung-up")
    assert runs and {r.info.status for r in runs} == {"KILLED"}, [(r.info.run_name, r.info.status) for r in runs]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.data.tags.get("sweep") for p in parents] == ["layers"], [p.data.tags for p in parents]  # only


@pytest.mark.e2e
def test_a_failed_preset_lets_the_others_finish_then_the_study_stops_in_one_line(faces, mlflow_uri, tmp_path):
    """layers cannot make its sweep folder (a file is in the way); kernel_size, running beside it,
    completes and is skipped by the rerun that follows once the way is clear."""
    (tmp_path / "outputs/multirun").mkdir(parents=True)
    (tmp_path / "outputs/multirun/layers").write_text("in the way")
    args = study_args(faces, mlflow_uri, "study-failed", "trainer.max_epochs=1", "--jobs", "3", "--name", "failed")
    proc = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "colorize: error: preset layers failed (its log: outputs/study/failed/layers.log): rerun the same command "
        "to retry it (completed presets are skipped)")
    assert "study: 1/2 presets done (kernel_size)" in proc.stderr
    _, runs = runs_in(mlflow_uri, "study-failed")
    assert len(runs) == 1 + 4 and {r.info.status for r in runs} == {"FINISHED"}
    (tmp_path / "outputs/multirun/layers").unlink()
    rerun = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "skipping kernel_size" in rerun.stderr and "skipping layers" not in rerun.stderr


@pytest.mark.e2e
def test_with_fewer_jobs_than_presets_they_run_that_many_at_a_time(faces, mlflow_uri, tmp_path):
    """--jobs 2 over three presets: two start, one job each; the third starts only once one has ended."""
    args = study_args(faces, mlflow_uri, "study-rolling", "trainer.max_epochs=1", "--jobs", "2", "--name", "roll")
    args[args.index("layers,kernel_size")] = "layers,kernel_size,kernels"
    proc = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stderr
    assert "3 presets, 2 at a time (--jobs 2)" in said
    starts = [said.index(f"running at once (1 of 2 jobs; log outputs/study/roll/{p}.log)")
              for p in ("layers", "kernel_size", "kernels")]
    first_end = said.index("study: 1/3 presets done")
    assert starts[0] < first_end and starts[1] < first_end < starts[2]
    _, runs = runs_in(mlflow_uri, "study-rolling")
    assert len(runs) == 3 + (3 + 4 + 6) and {r.info.status for r in runs} == {"FINISHED"}


def test_the_studys_eta_counts_the_ended_trials_of_presets_still_running(mlflow_uri):
    """Presets at once: one completed now (3 trials), one running (2 of its 6 trials ended, 1 going,
    its parent found by its computed overrides: a speed setting may differ), one not started (4), one
    completed before this run (left out: its time is not on the study's clock)."""
    from colorize import names
    from colorize.study import trials_so_far
    from colorize.study_runs import PresetCommand
    from colorize.tracking.store import Tracker

    tracker = Tracker(mlflow_uri, "study-eta")

    def parent(preset, task, statuses, end=True):
        run = tracker.create_run(preset, tags={names.SWEEP_TAG: preset, names.OVERRIDES_TAG: " ".join(task)})
        for status in statuses:
            child = tracker.create_run("t", parent_run_id=run.run_id)
            if status != "RUNNING":
                child.end(status)
        if end:
            run.end("FINISHED")
        return run.run_id

    plan = [PresetCommand("layers", ["sweep=layers"], [], 3), PresetCommand("lr", ["sweep=lr", "data.limit=9"], [], 6),
            PresetCommand("further", ["sweep=further"], [], 4), PresetCommand("kernels", ["sweep=kernels"], [], 5)]
    done = {"layers": parent("layers", ["sweep=layers"], ["FINISHED"] * 3),
            "kernels": parent("kernels", ["sweep=kernels"], ["FINISHED"] * 5)}
    parent("lr", ["sweep=lr", "trainer.cuda_graphs=on", "data.limit=9"], ["FINISHED", "FAILED", "RUNNING"], end=False)
    parent("lr", ["sweep=lr", "data.limit=8"], ["FINISHED"] * 4, end=False)  # another command's sweep
    assert trials_so_far(tracker, plan, done, before=["kernels"]) == (3 + 2, (6 - 2) + 4)
    assert trials_so_far(tracker, plan, done) == (3 + 2 + 5, (6 - 2) + 4)
