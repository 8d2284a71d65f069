"""colorize/search/recovery.py: a search's trials left RUNNING by a dead worker on this host are
failed and queued again at once, with a real Optuna study and real processes."""

import subprocess
import sys

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
