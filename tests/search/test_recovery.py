"""colorize/search/recovery.py: a search's trials left RUNNING by a dead worker on this host are
failed and queued again at once, with a real Optuna study and real processes."""

import subprocess
import sys
import time

import optuna

from colorize.search.recovery import recover_orphans
from colorize.search.storage import open_storage
from colorize.tracking.owners import owner_tags, started


def test_trials_whose_worker_is_gone_or_whose_pid_is_reused_are_queued_again(tmp_path):
    """Three RUNNING trials: this live process's; one whose worker ended; one whose pid this process
    holds now but which a process that started earlier recorded (a restarted container's pid 1). The
    last two are failed and queued again with their parameters; the live one is left alone."""
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(study_name="orphans", storage=storage)
    lr = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}
    live, gone, reused = (study.ask(lr) for _ in range(3))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = owner_tags()
    boot, ticks = mine["pid_start"].split("/")
    owners = {live: mine,
              gone: {**mine, "pid": ended.stdout.strip(), "pid_start": started(int(ended.stdout))},  # ('' once ended)
              reused: {**mine, "pid_start": f"{boot}/{int(ticks) - 100}"}}  # this pid, an earlier process's
    for trial, owner in owners.items():
        for key, value in owner.items():
            trial.set_user_attr(key, value)

    assert recover_orphans(storage, "orphans") == [gone.number, reused.number]
    trials = optuna.load_study(study_name="orphans", storage=storage).trials
    states = [t.state for t in trials]
    assert states[:3] == [optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.FAIL]
    queued = trials[3:]
    assert [t.state for t in queued] == [optuna.trial.TrialState.WAITING] * 2
    assert [(t.system_attrs["fixed_params"], t.user_attrs["retry_of"]) for t in queued] == [
        (gone.params, gone.number), (reused.params, reused.number)]  # (asked, they get these parameters)


def test_an_asked_trial_is_its_askers_until_its_job_names_its_own(tmp_path):
    """A sweep's process asks for trials (one queued again, one new) and dies before their jobs start:
    each trial names that process as its owner from the moment it runs, so both are failed and queued
    again at once. (Before, such trials had no owner and no heartbeat: RUNNING for good.)"""
    url = f"sqlite:///{tmp_path}/optuna.db"
    asker = ("import optuna, sys\n"
             "from colorize.search.storage import open_storage\n"
             "study = optuna.create_study(study_name='asked', storage=open_storage(sys.argv[1]))\n"
             "study.enqueue_trial({'lr': 0.01})\n"
             "lr = {'lr': optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}\n"
             "print(study.ask(lr).number, study.ask(lr).number, os.getpid())\n")
    asked = subprocess.run([sys.executable, "-c", "import os\n" + asker, url], capture_output=True, text=True,
                           check=True)
    first, second, pid = asked.stdout.split()
    assert (first, second) == ("0", "1")  # the queued trial, then a new one
    storage = open_storage(url)
    owners = [t.user_attrs for t in optuna.load_study(study_name="asked", storage=storage).trials]
    assert [(o["host"], o["pid"]) for o in owners] == [(owner_tags()["host"], pid)] * 2
    assert recover_orphans(storage, "asked") == [0, 1]


def test_stopping_a_batchs_heartbeats_is_not_held_up_by_beats_stuck_on_a_locked_store(tmp_path):
    """Another process holds the sqlite file's write lock (the store's connections wait up to 120 s
    for it). Stopping a batch's heartbeats, as the sweeper does when it asks for the next batch or
    stops, returns all the same; the beats under way land once the lock is released, and then
    their threads end: no beat starts after the stop."""
    import sqlite3

    from colorize.search.recovery import Heartbeat

    path = tmp_path / "optuna.db"
    storage = open_storage(f"sqlite:///{path}", heartbeat_interval=1)
    study = optuna.create_study(study_name="locked", storage=storage)
    lr = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}
    trial_ids = [study.ask(lr)._trial_id for _ in range(3)]
    writer = sqlite3.connect(path, isolation_level=None)  # as another process writing to the store
    writer.execute("BEGIN EXCLUSIVE")
    beats = [Heartbeat(storage, trial_id) for trial_id in trial_ids]

    Heartbeat.stop_all(beats, wait=0.2)  # each beat is stuck on the lock: 120 s before

    assert writer.execute("SELECT COUNT(*) FROM trial_heartbeats").fetchone() == (0,)  # none landed yet
    writer.execute("COMMIT")
    for _ in range(600):  # the lock is gone: each beat under way lands, and its thread sees the stop
        if not any(beat.beating for beat in beats):
            break
        time.sleep(0.1)
    assert [beat.beating for beat in beats] == [False] * 3
    landed = sqlite3.connect(path).execute("SELECT trial_id FROM trial_heartbeats ORDER BY trial_id").fetchall()
    assert landed == [(trial_id,) for trial_id in trial_ids]
