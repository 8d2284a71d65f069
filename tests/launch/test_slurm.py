"""Sweeps on a real SLURM cluster (`source .ci/slurm.sh start`: slurmctld, slurmd, slurmdbd on a
throw-away MariaDB, munge): every trial an `sbatch` array task submitted by Hydra's submitit launcher
with the shipped `hydra/launcher=slurm`, its state read from `sacct` as submitit reads it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from colorize import names
from colorize.config.launcher import check_time_limit
from colorize.cores import available_cores
from colorize.launch.slurm_launcher import cancelled_batch, said
from colorize.tracking.parent_run import ending_status
from colorize.tracking.provenance import scheduler_tags
from tests.conftest import METRICS, run_cli, runs_in
from tests.launch.test_scaleout import postgres_url  # noqa: F401  (the PostgreSQL fixture)

LAUNCHER = "hydra/launcher=slurm"
# one pytest-xdist worker runs the tests that share the PostgreSQL server and the SLURM cluster, one at a time
pytestmark = pytest.mark.xdist_group("services")


@pytest.fixture(scope="module")
def slurm():
    """The test cluster's SLURM_CONF; skip (locally) or fail (in CI) without one."""
    conf = os.environ.get("SLURM_CONF")
    if not (os.environ.get("COLORIZE_TEST_SLURM") and conf and Path(conf).is_file()):
        message = "no SLURM test cluster: start one with `source .ci/slurm.sh start`"
        if os.environ.get("COLORIZE_REQUIRE_SLURM"):
            pytest.fail(message)
        pytest.skip(message)
    return conf


def sacct(job_ids) -> dict[str, str]:
    """Each job's state as SLURM's accounting records it (what submitit reads)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def ended(job_ids, timeout: float = 60) -> dict[str, str]:
    """`sacct` of the jobs once none is still pending, running or completing. The sweep returns when
    submitit has read a job's result file, which the job writes just before it exits: SLURM records
    the end a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        states = sacct(job_ids)
        if not {"PENDING", "RUNNING", "COMPLETING"} & set(states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def queued(job_ids) -> set[str]:
    """Those of `job_ids` still pending or running (an array task as squeue prints it, 12_3)."""
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    return set(out.split()) & set(job_ids)


def trials(uri: str, experiment: str):
    """(client, the parent runs, the trial runs) of an experiment."""
    client, runs = runs_in(uri, experiment)
    parents = [r for r in runs if names.PARENT_TAG not in r.data.tags]
    return client, parents, [r for r in runs if names.PARENT_TAG in r.data.tags]


def faces_args(faces, uri: str, experiment: str, limit: int, epochs: int) -> list[str]:
    return ["data=faces", f"data.root={faces}", f"data.limit={limit}", f"trainer.max_epochs={epochs}",
            LAUNCHER, f"tracking.uri={uri}", f"tracking.experiment={experiment}"]


def test_a_run_names_its_slurm_job_as_squeue_and_sacct_do():
    assert scheduler_tags({"SLURM_JOB_ID": "41", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "1",
                           "SLURM_CLUSTER_NAME": "hpc"}) == {names.SLURM_JOB_TAG: "40_1", "slurm_cluster": "hpc"}
    assert scheduler_tags({"SLURM_JOB_ID": "41"}) == {names.SLURM_JOB_TAG: "41"}
    assert scheduler_tags({"HOME": "/root"}) == {}


def test_a_slurm_task_uses_the_cpus_slurm_gave_it():
    cores = available_cores({})
    assert available_cores({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert available_cores({"SLURM_CPUS_PER_TASK": str(cores + 8)}) == cores  # never more than the mask
    assert available_cores({"SLURM_CPUS_PER_TASK": "bogus"}) == cores


def test_a_sweep_that_stops_on_an_error_ends_its_parent_run_resumable():
    assert ending_status(None) == "FINISHED"
    assert ending_status(SystemExit("colorize: error: SLURM job 3_1 ... ended CANCELLED")) == "KILLED"
    assert ending_status(KeyboardInterrupt()) == "KILLED"
    assert ending_status(RuntimeError("store gone")) == "FAILED"


def test_a_lost_job_is_named_with_the_last_thing_its_trial_said():
    log = ("submitit WARNING - Caught signal SIGUSR2: this job is timed-out.\n"
           "colorize: interrupted (SIGUSR2); the last checkpoint is kept\n"
           "colorize: Job not requeued because: timed-out too many times.\nsrun: error: task 0: Exited\n")
    assert said(log) == " (Job not requeued because: timed-out too many times)"
    assert said("srun: error: task 0: Exited with exit code 1\n") == ""


@pytest.mark.e2e
def test_a_preset_sweep_runs_each_trial_as_a_slurm_job_under_one_parent_run(slurm, faces, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_cli("sweep=layers", *faces_args(faces, uri, "slurm", 32, 2), f"hydra.sweep.dir={tmp_path}/sweep",
                   cwd=tmp_path, timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    _, parents, children = trials(uri, "slurm")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 3 and {c.data.tags[names.PARENT_TAG] for c in children} == {parents[0].info.run_id}
    assert sorted(c.data.params["model.layers"] for c in children) == ["1", "2", "4"]
    jobs = [c.data.tags[names.SLURM_JOB_TAG] for c in children]
    assert len(set(jobs)) == 3 and all(re.fullmatch(r"\d+_[0-2]", j) for j in jobs)  # one array, 3 tasks
    assert ended(jobs) == {j: "COMPLETED" for j in jobs}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert queued(jobs) == set()


@pytest.mark.e2e
def test_an_optuna_search_on_postgres_runs_two_slurm_jobs_at_once_with_pruning(
    slurm, faces, postgres_url, tmp_path  # noqa: F811
):
    uri, study_name = f"sqlite:///{tmp_path}/mlflow.db", f"slurm-{os.getpid()}"
    proc = run_cli(
        "sweep=search", "pruner=median", "pruner.n_startup_trials=1", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2", f"hydra.sweeper.storage={postgres_url}", f"hydra.sweeper.study_name={study_name}",
        *faces_args(faces, uri, "slurm_search", 32, 3), f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, timeout=400,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert all(t.intermediate_values for t in study.trials)  # each job reported its epochs to the pruner
    _, parents, children = trials(uri, "slurm_search")
    assert len(parents) == 1 and len(children) == 4
    jobs = {int(c.data.params[names.TRIAL_KEY]): c.data.tags[names.SLURM_JOB_TAG] for c in children}
    arrays = {j.split("_")[0] for j in jobs.values()}
    assert len(arrays) == 2  # two batches of n_jobs=2 trials, each one array of 2 SLURM jobs
    assert set(ended(list(jobs.values())).values()) == {"COMPLETED"}
    pruned = {c.data.params[names.TRIAL_KEY] for c in children if c.data.tags.get("pruned") == "true"}
    assert pruned == {str(t.number) for t in study.trials if t.state == TrialState.PRUNED}
    starts = job_times(list(jobs.values()))
    for array in arrays:  # the two jobs of a batch ran side by side: each started before the other ended
        (s1, e1), (s2, e2) = [t for j, t in starts.items() if j.startswith(array + "_")]
        assert s1 <= e2 and s2 <= e1


def job_times(job_ids) -> dict[str, tuple[str, str]]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,Start,End", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return {job: (start, end) for job, start, end in (line.split("|") for line in out.splitlines() if line)}


def wait_for_epoch(sweep_dir: Path, epoch: int, proc, timeout: float = 240) -> str:
    """The SLURM job id of the first trial whose log shows `epoch` done."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf"epoch +{epoch}/")
    while time.monotonic() < deadline:
        for log in sweep_dir.glob(".submitit/*/*_log.out"):
            if pattern.search(log.read_text(errors="replace")):
                return log.parent.name
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no trial reached epoch {epoch} in {timeout} s")


@pytest.mark.e2e
def test_a_scancelled_trial_ends_the_sweep_and_the_same_command_resumes_it(slurm, faces, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["sweep=layers", *faces_args(faces, uri, "slurm_cancel", 32, 30), "trainer.early_stopping.patience=100"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "colorize.train", *args, f"hydra.sweep.dir={tmp_path}/first"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        job = wait_for_epoch(tmp_path / "first", 3, proc)
        subprocess.run(["scancel", job], check=True, timeout=30)
        out = proc.communicate(timeout=300)[0]  # no hang: the sweep sees the cancelled job and ends
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out[-3000:]
    last = out.strip().splitlines()[-1]  # one line: the job, its state, its trial, what to do
    assert last.startswith(f"colorize: error: SLURM job {job} (trial #") and "ended CANCELLED" in last, out[-3000:]
    assert "without a result (interrupted (SIGTERM); the last checkpoint is kept)." in last  # what the job said
    assert "run the same command again" in last and "Traceback" not in out, out[-3000:]
    assert ended([job]) == {job: "CANCELLED by 0"}
    client, parents, children = trials(uri, "slurm_cancel")
    assert [p.info.status for p in parents] == ["KILLED"]  # the sweep stopped: its parent is resumable
    cancelled = next(c for c in children if c.data.tags[names.SLURM_JOB_TAG] == job)
    assert cancelled.info.status == "KILLED"  # scancel's SIGTERM: the run ended, its last.pt kept
    stopped_at = len(client.get_metric_history(cancelled.info.run_id, names.VAL_MSE))

    again = run_cli(*args, f"hydra.sweep.dir={tmp_path}/second", cwd=tmp_path, timeout=400)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    logs = "".join(p.read_text() for p in (tmp_path / "second").glob(".submitit/*/*_log.out"))
    resumed_at = re.search(rf"resuming interrupted run {cancelled.info.run_id} at epoch (\d+)", logs)
    # from its last.pt, which is written before the epoch's metrics are logged: SIGTERM may fall
    # between the two, and the resumed run backfills that epoch (the step check below)
    assert resumed_at and int(resumed_at[1]) - 1 in (stopped_at, stopped_at + 1), logs[-3000:]
    _, parents, children = trials(uri, "slurm_cancel")
    assert len(parents) == 1 and len(children) == 3  # the same parent run, no trial twice
    assert {c.info.status for c in children} == {"FINISHED"}
    resumed = client.get_run(cancelled.info.run_id)
    assert resumed.data.tags[names.SLURM_JOB_TAG] != job  # it finished in a job of the second sweep
    for key in METRICS:
        assert [m.step for m in client.get_metric_history(resumed.info.run_id, key)] == list(range(1, 31))
    last_jobs = [c.data.tags[names.SLURM_JOB_TAG] for c in children]
    ended(last_jobs)  # (their ends recorded)
    assert queued(last_jobs) == set()


def start_sweep(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "colorize.train", "-m", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_pending(job: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
        if out.stdout.strip() == "PENDING":
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job} was not requeued within {timeout} s")


@pytest.mark.e2e
def test_a_preempted_trial_is_requeued_and_resumes_its_run_within_the_same_sweep(slurm, faces, tmp_path):
    """SLURM's preemption notice (USR2, as `scancel --signal=USR2` sends it): the run ends KILLED with
    its last.pt, submitit requeues the job, and the requeued job resumes the run; the sweep never stops."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [*faces_args(faces, uri, "slurm_preempt", 32, 30), "model.layers=2", "trainer.early_stopping.patience=100",
            f"hydra.sweep.dir={tmp_path}/sweep"]
    proc = start_sweep(args, tmp_path)
    try:
        job = wait_for_epoch(tmp_path / "sweep", 3, proc)
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
        wait_pending(job)
        # SLURM holds a requeued job for ~2 minutes (its BeginTime): the test's cluster lets it go at once
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    client, parents, children = trials(uri, "slurm_preempt")
    assert [p.info.status for p in parents] == ["FINISHED"] and len(children) == 1
    run = children[0]
    assert run.info.status == "FINISHED" and run.data.tags[names.SLURM_JOB_TAG] == job  # one run, one job
    log = "".join(p.read_text() for p in (tmp_path / "sweep").glob(f".submitit/{job}/*_log.out"))
    assert f"interrupted: resume with trainer.resume={run.info.run_id}" in log, log[-3000:]
    resumed_at = re.search(rf"resuming interrupted run {run.info.run_id} at epoch (\d+)", log)
    assert resumed_at and 4 <= int(resumed_at[1]) < 30, log[-3000:]  # from its last.pt, not from epoch 1
    for key in METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, 31)), key
    states = subprocess.run(["sacct", "-n", "-X", "-P", "-D", "-o", "State", "-j", job], capture_output=True,
                            text=True, check=True, timeout=30).stdout.split()
    assert states[0] == "REQUEUED" and states[-1] in ("COMPLETED", "RUNNING", "COMPLETING"), states


@pytest.mark.e2e
def test_a_trial_out_of_requeues_ends_its_run_resumable_and_the_sweep_in_one_line(slurm, faces, tmp_path):
    """The time limit's notice with no requeue left (`max_num_timeout=0`; submitit counts any notice to
    a 1-minute job as its time limit): the run ends KILLED, not FAILED, so the same command resumes it."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [*faces_args(faces, uri, "slurm_timeout", 32, 30), "model.layers=2", "trainer.early_stopping.patience=100",
            # SLURM's own notice 5 s before the 1-minute limit, not 120 s (which is at once: CI d02b706)
            "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=5", "hydra.launcher.max_num_timeout=0",
            f"hydra.sweep.dir={tmp_path}/sweep"]
    proc = start_sweep(args, tmp_path)
    try:
        job = wait_for_epoch(tmp_path / "sweep", 2, proc)
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    last = out.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert last.startswith(f"colorize: error: SLURM job {job} (trial #0: ") and "run the same command again" in last
    assert "without a result (Job not requeued because: timed-out too many times)." in last  # why, from its log
    errors = "".join(p.read_text() for p in (tmp_path / "sweep").glob(f".submitit/{job}/*_log.err"))
    assert "colorize: Job not requeued because: timed-out too many times." in errors, errors[-3000:]
    _, parents, children = trials(uri, "slurm_timeout")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert [c.info.status for c in children] == ["KILLED"]  # resumable: its last.pt kept
    assert (tmp_path / "sweep" / "0" / "last.pt").is_file()


@pytest.mark.parametrize("minutes, delay, ok", [(1, 5, True), (3, 120, True), (2, 120, False), (1, 120, False)])
def test_a_time_limit_within_slurms_notice_is_refused_before_submitting(minutes, delay, ok):
    params = {"timeout_min": minutes, "signal_delay_s": delay}
    if ok:
        check_time_limit(params)
        return
    with pytest.raises(SystemExit) as err:
        check_time_limit(params)
    line = str(err.value)
    assert line.startswith(f"colorize: error: hydra.launcher.timeout_min={minutes} is invalid: ") and "\n" not in line
    assert f"signal_delay_s={delay} s before its time limit" in line and "more than 2 minutes" in line


def refused_sweep(tmp_path, experiment: str, setting: str):
    """A two-trial SLURM sweep with `setting`, which must stop in one line, no traceback: (that line,
    the experiment's runs)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_cli("-m", "model.layers=1,2", "data.limit=8", "trainer.max_epochs=1", LAUNCHER, setting,
                   f"tracking.uri={uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={tmp_path}/sweep",
                   cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.stderr.strip().splitlines()[-1], runs_in(uri, experiment)[1]


@pytest.mark.e2e
def test_a_sweep_with_such_a_time_limit_submits_nothing_and_says_so_in_one_line(tmp_path):
    """No cluster needed: the line comes before sbatch would run."""
    last, runs = refused_sweep(tmp_path, "short", "hydra.launcher.timeout_min=1")
    assert last.startswith("colorize: error: hydra.launcher.timeout_min=1 is invalid"), last
    assert not (tmp_path / "sweep" / ".submitit").exists()  # nothing submitted
    assert runs == []  # refused as the multirun starts: not even its parent run was opened


def test_a_refused_batch_is_named_by_sbatchs_last_line():
    from colorize.launch.slurm_launcher import refused_batch

    says = "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    assert refused_batch("sbatch: warning: x\n" + says) == (
        "colorize: error: SLURM refused the batch (sbatch: error: Batch job submission failed: Invalid partition "
        "name specified): none of its trials was submitted; rerun the same command once sbatch works (the sweep "
        "continues)")
    assert "(no reason given)" in refused_batch("")


@pytest.mark.e2e
def test_a_batch_sbatch_refuses_is_one_line_and_its_parent_run_ends_not_running(slurm, tmp_path):
    """An unknown partition: sbatch refuses the job array at once (once a FailedJobError traceback)."""
    last, runs = refused_sweep(tmp_path, "refused", "hydra.launcher.partition=nowhere")
    assert last.startswith("colorize: error: SLURM refused the batch (sbatch: error: "), last
    assert last.endswith("none of its trials was submitted; rerun the same command once sbatch works (the sweep "
                         "continues)"), last
    assert [r.info.status for r in runs] == ["KILLED"]  # the parent alone: no trial ran


@pytest.mark.e2e
def test_a_sigtermed_sweep_cancels_its_slurm_jobs_and_ends_its_parent_run_in_one_line(slurm, tmp_path):
    """The sweep's process only waits (its trials are SLURM jobs, held here, so none runs): SIGTERM
    there is an interrupt still (the sweep callback's), which cancels the batch, ends the parent run
    KILLED and says so in one line. (Before, the process died at once and left both behind.)"""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["sweep=layers", "data.limit=8", "trainer.max_epochs=1", LAUNCHER,
            "+hydra.launcher.additional_parameters.hold=true", f"tracking.uri={uri}",
            "tracking.experiment=slurm_sigterm", f"hydra.sweep.dir={tmp_path}/sweep"]
    proc = subprocess.Popen([sys.executable, "-m", "colorize.train", *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, jobs = time.monotonic() + 120, []
        while len(jobs) < 3:  # submitit writes each job's `<id>_submitted.pkl` once sbatch has taken it
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            jobs = [p.name[: -len("_submitted.pkl")] for p in (tmp_path / "sweep").glob(".submitit/*/*_submitted.pkl")]
            time.sleep(0.2)
        assert queued(jobs) == set(jobs)  # held: pending
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    last = out.strip().splitlines()[-1]
    assert proc.returncode == 1 and last == (
        "colorize: interrupted (SIGTERM): the sweep's 3 unfinished SLURM jobs are cancelled, their trials' runs "
        "KILLED with their last checkpoints; run the same command again to resume them"), out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    # sacct keeps an array that never ran as one record, named `16` or `16_[0-2%3]` (its throttle)
    (array,) = {j.split("_")[0] for j in jobs}
    states = ended([array])
    assert states and set(states.values()) == {"CANCELLED by 0"}, states
    assert all(record == array or record.startswith(f"{array}_[") for record in states), states
    assert queued(jobs) == set()
    _, parents, children = trials(uri, "slurm_sigterm")
    assert [p.info.status for p in parents] == ["KILLED"] and children == []  # no trial ran


SLOW_SBATCH = """#!/bin/sh
# sbatch as the test drives it: say it started, wait for the test's go, then submit and keep its answer
touch "{marks}/started"
while [ ! -e "{marks}/go" ]; do sleep 0.05; done
answer=$({sbatch} "$@") || exit $?
echo "$answer" > "{marks}/submitted"
echo "$answer"
"""


def test_an_interrupt_before_sbatch_took_the_batch_says_nothing_was_submitted():
    """Ctrl-C reaches sbatch too: killed before it answered, it leaves no job ids to cancel."""
    assert cancelled_batch([], "SIGINT") == (
        "colorize: interrupted (SIGINT) before SLURM took the batch: none of its trials was submitted; run the "
        "same command again to continue the sweep")


@pytest.mark.e2e
def test_a_sigterm_while_sbatch_submits_waits_for_the_batch_and_cancels_it(slurm, tmp_path):
    """SIGTERM while sbatch is submitting: the interrupt waits for sbatch's job id, then cancels the
    batch. (Before, the sweep left at once and sbatch, a child it did not wait for, submitted the
    batch on its own: jobs queued with no sweep to collect or cancel them.)"""
    marks, bin_dir = tmp_path / "marks", tmp_path / "bin"
    marks.mkdir(), bin_dir.mkdir()
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(SLOW_SBATCH.format(marks=marks, sbatch=shutil.which("sbatch")))
    wrapper.chmod(0o755)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["sweep=layers", "data.limit=8", "trainer.max_epochs=1", LAUNCHER,
            "+hydra.launcher.additional_parameters.hold=true", f"tracking.uri={uri}",
            "tracking.experiment=slurm_submitting", f"hydra.sweep.dir={tmp_path}/sweep"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "-m", "colorize.train", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (marks / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        (marks / "go").touch()
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    array = re.search(r"job (\d+)", (marks / "submitted").read_text()).group(1)
    last = out.strip().splitlines()[-1]
    assert proc.returncode == 1 and last == (
        "colorize: interrupted (SIGTERM): the sweep's 3 unfinished SLURM jobs are cancelled, their trials' runs "
        "KILLED with their last checkpoints; run the same command again to resume them"), out[-3000:]
    states = ended([array])
    assert states and set(states.values()) == {"CANCELLED by 0"}, states
    assert queued([f"{array}_{task}" for task in range(3)]) == set()
    _, parents, children = trials(uri, "slurm_submitting")
    assert [p.info.status for p in parents] == ["KILLED"] and children == []


@pytest.mark.e2e
def test_a_sweep_killed_while_its_jobs_run_is_refused_until_they_end_then_continues(slurm, faces, tmp_path):
    """The sweep's own process SIGKILLed (a login node's OOM killer; a closed terminal's SIGHUP is an
    interrupt instead, which cancels the jobs): its SLURM jobs train on. The same command again says
    so in one line and changes nothing, rather than train each trial a second time beside them into
    the same folder; once they are cancelled (each ends its run KILLED with last.pt), it continues the
    sweep in place."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["model.layers=1,2", *faces_args(faces, uri, "slurm_outlived", 300, 60),
            "trainer.early_stopping.patience=100",
            f"hydra.sweep.dir={tmp_path}/sweep"]
    proc = start_sweep(args, tmp_path)
    try:
        job = wait_for_epoch(tmp_path / "sweep", 2, proc)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    jobs = sorted(queued([f"{job.split('_')[0]}_{i}" for i in range(2)]))
    assert job in jobs  # the sweep is gone; its jobs are not
    refused = run_cli("-m", *args, cwd=tmp_path, timeout=300)
    line = (refused.stdout + refused.stderr).strip().splitlines()[-1]
    assert refused.returncode == 1, (refused.stdout + refused.stderr)[-3000:]
    _, parents, children = trials(uri, "slurm_outlived")  # (two jobs on the cluster's 2 CPUs)
    assert len(parents) == 1 and {c.info.status for c in children} <= {"RUNNING", "FINISHED"}  # none ended by it
    named = re.findall(r"run ([0-9a-f]{32}) \(", line)  # (a job may finish between the line and this read)
    assert named and line.startswith(f"colorize: error: this sweep's earlier attempt still trains {len(named)} trial"
                                     + "s" * (len(named) > 1) + ": run "), line
    by_id = {c.info.run_id: c for c in children}
    for run_id in named:  # each a trial of the sweep, named with its job and how to stop it
        job_id = by_id[run_id].data.tags[names.SLURM_JOB_TAG]
        assert f": SLURM job {job_id})" in line and f"`scancel {job_id}`" in line, line
    assert line.endswith("then run the same command again to continue") and "Traceback" not in refused.stderr, line
    subprocess.run(["scancel", *jobs], check=True, timeout=30)
    ended(jobs)
    again = run_cli("-m", *args, cwd=tmp_path, timeout=400)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    _, parents, after = trials(uri, "slurm_outlived")
    assert len(parents) == 1 and len(after) == 2 and {c.info.status for c in after} == {"FINISHED"}
    assert {c.info.run_id for c in children} <= {c.info.run_id for c in after}  # resumed in place, none twice


def test_a_run_counts_as_trained_while_its_slurm_job_is_queued(slurm, tmp_path):
    """A RUNNING run opened on another host is judged by its SLURM job: live while squeue lists it
    (a job held pending here), not once it has ended or where it names no job."""
    from colorize.tracking.owners import still_trained
    from colorize.tracking.store import Tracker

    held = subprocess.run(["sbatch", "--parsable", "--hold", "--wrap", "sleep 600"], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()
    try:
        tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "owners")
        runs = {}
        for name, job in [("queued", held), ("ended", "999999"), ("no job", None)]:
            tags = {"host": "node-elsewhere", "pid": "12345", names.RUN_NAME_TAG: name}
            runs[name] = tracker.create_run(name, tags=tags | ({names.SLURM_JOB_TAG: job} if job else {})).run_id
        assert still_trained([tracker.get_run(r) for r in runs.values()]) == (
            [f"run {runs['queued']} (queued: SLURM job {held})"], [f"scancel {held}"])
    finally:
        subprocess.run(["scancel", held], timeout=30)
