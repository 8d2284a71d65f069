"""colorize/interrupts.py: Ctrl-C, SIGTERM and a hang-up wait for a store call under way, with real
signals, a real pseudo-terminal, a real MLflow store and a real Optuna study."""

import os
import signal
import threading
import time

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from colorize.interrupts import Interrupter, install, quiet_if_hung_up, uninterrupted
from colorize.search.pruning import TrialReporter
from colorize.search.storage import open_storage
from colorize.tracking.store import Tracker
from colorize.training.callback import CallbackContext
from tests.conftest import sigterm_inside


def test_a_signal_waits_for_a_deferred_block_and_a_second_one_does_not(handlers):
    interrupter = install()
    steps = []
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        with uninterrupted():
            signal.raise_signal(signal.SIGTERM)
            steps.append("the block went on")
        steps.append("never: the interrupt follows the block")
    assert steps == ["the block went on"]
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        with interrupter.deferred():
            signal.raise_signal(signal.SIGTERM)  # waits
            signal.raise_signal(signal.SIGTERM)  # the second: at once
            steps.append("never")
    assert steps == ["the block went on"] and interrupter.pending is None and interrupter.depth == 0
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        signal.raise_signal(signal.SIGTERM)  # outside a block: at once


def test_install_takes_sigterm_and_a_default_sigint_once_and_leaves_others_alone(handlers):
    interrupter = install()
    assert signal.getsignal(signal.SIGTERM) is interrupter and signal.getsignal(signal.SIGINT) is interrupter
    assert install() is interrupter  # one per process
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job: SIGINT stays ignored
    assert isinstance(install(), Interrupter) and signal.getsignal(signal.SIGINT) is signal.SIG_IGN

    def theirs(signum, frame):  # e.g. submitit's
        pass

    signal.signal(signal.SIGTERM, theirs)
    assert install(replace=False) is None and signal.getsignal(signal.SIGTERM) is theirs


def test_install_takes_a_default_sighup_and_leaves_nohups_ignored_one():
    import subprocess
    import sys

    check = ("import signal; from colorize.interrupts import Interrupter, install; install(); "
             "h = signal.getsignal(signal.SIGHUP); print('Interrupter' if isinstance(h, Interrupter) else h.name)")
    for disposition, want in [(signal.SIG_DFL, "Interrupter"), (signal.SIG_IGN, "SIG_IGN")]:
        out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True,
                             preexec_fn=lambda d=disposition: signal.signal(signal.SIGHUP, d)).stdout
        assert out.split() == [want], (disposition, out)


def test_a_hang_up_is_one_interrupt_however_many_sighups_come(handlers):
    """A hung-up terminal's command gets SIGHUP from the shell, then again from the kernel as the shell
    exits: the first interrupts (after a store call under way), the rest are ignored, and so is a
    SIGHUP that follows Ctrl-C; a SIGTERM after a hang-up is someone's, and interrupts at once."""
    interrupter = install()
    steps = []
    with pytest.raises(KeyboardInterrupt, match="^SIGHUP$"):
        with uninterrupted():
            signal.raise_signal(signal.SIGHUP)  # waits for the store call
            signal.raise_signal(signal.SIGHUP)  # the same hang-up: the store call still goes on
            steps.append("the block went on")
    assert steps == ["the block went on"] and interrupter.pending is None
    signal.raise_signal(signal.SIGHUP)  # the kernel's, while the run ends: ignored
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        signal.raise_signal(signal.SIGTERM)

    interrupter = Interrupter()
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, interrupter)
    with pytest.raises(KeyboardInterrupt, match="^SIGINT$"):
        signal.raise_signal(signal.SIGINT)
    signal.raise_signal(signal.SIGHUP)  # the terminal closed after Ctrl-C: nothing more


def test_a_hung_up_terminal_is_pointed_at_devnull_and_a_pipe_is_left_alone():
    """Every write to a terminal that hung up fails (EIO): a run's last log lines, its progress bar
    and colorize's last line would fail the interrupt's cleanup. A pipe (or file) still works."""
    master, terminal = os.openpty()
    read_end, pipe = os.pipe()
    try:
        os.close(master)  # the terminal hangs up
        with pytest.raises(OSError, match="Input/output error"):
            os.write(terminal, b"lost")
        quiet_if_hung_up((terminal, pipe))
        assert os.write(terminal, b"to /dev/null") == len(b"to /dev/null")
        os.write(pipe, b"still read")
        assert os.read(read_end, 100) == b"still read"
    finally:
        for fd in (terminal, read_end, pipe):
            os.close(fd)


def test_an_interrupt_passed_on_by_the_sweep_and_the_terminals_own_are_one_interrupt(handlers):
    """A loky worker gets the sweep's FORWARDED signal and, under Ctrl-C, the terminal's SIGINT too,
    in either order: the first interrupts, the other is that same interrupt; a further one is not."""
    interrupter = install()
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        interrupter.forwarded(signal.SIGUSR1, None)  # the sweep's first
    signal.raise_signal(signal.SIGINT)  # the terminal's: taken already
    with pytest.raises(KeyboardInterrupt, match="^SIGINT$"):
        signal.raise_signal(signal.SIGINT)  # a second Ctrl-C

    interrupter = Interrupter()  # the terminal's first, then the sweep's
    signal.signal(signal.SIGINT, interrupter)
    with pytest.raises(KeyboardInterrupt, match="^SIGINT$"):
        signal.raise_signal(signal.SIGINT)
    interrupter.forwarded(signal.SIGUSR1, None)  # nothing more

    interrupter = Interrupter()  # the sweep's inside a store call: after it, as a signal's would be
    steps = []
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        with interrupter.deferred():
            interrupter.forwarded(signal.SIGUSR1, None)
            steps.append("the store call went on")
    assert steps == ["the store call went on"]


class SignalledWhileCollected:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)  # its handler runs here, inside the finalizer


def test_an_interrupt_that_falls_in_a_finalizer_is_raised_once_out_of_it(handlers):
    """Seen in CI: a preset's SIGINT came while tqdm's bar was collected, and Python dropped the
    KeyboardInterrupt raised in its `__del__` ("Exception ignored in ..."): the trial trained on. The
    signal is sent again from a thread and raised once the finalizer has returned."""
    install()
    after = []
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        SignalledWhileCollected()  # dropped at once: its __del__ runs now
        after.append("the finalizer returned")
        for _ in range(5000):  # (a bound on waiting for the signal again, not a timing)
            time.sleep(0.001)
    assert after == ["the finalizer returned"]


def test_other_threads_are_not_deferred(handlers):
    install()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(type(uninterrupted()).__name__))
    thread.start()
    thread.join()
    assert seen == ["nullcontext"]


def test_a_sigterm_inside_a_store_write_lets_it_finish_and_the_run_ends_killed(handlers, tmp_path):
    """The signal arrives while SQLAlchemy executes MLflow's INSERT of a metric (a real hook of the
    real engine): the write completes, then the interrupt ends the run KILLED."""
    install()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "interrupts")
    with sigterm_inside("INSERT INTO metrics") as sent, pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        with tracker.start_run("interrupted") as run:
            run.log_metrics({"val_mse": 0.25}, step=1)
            pytest.fail("the interrupt follows the write at once")
    assert sent  # the signal came inside the write
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(run.run_id).info.status == "KILLED"
    assert [(m.step, m.value) for m in client.get_metric_history(run.run_id, "val_mse")] == [(1, 0.25)]


def test_a_sigterm_inside_an_optuna_report_lets_it_finish(handlers, tmp_path):
    """A trial's job reports its epoch to the Optuna study (TrialReporter, on a real sqlite storage);
    the signal arrives while SQLAlchemy executes Optuna's INSERT of the intermediate value: the value
    is stored, then the interrupt follows."""
    install()
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=open_storage(url), direction="minimize")
    trial = study.ask()
    reporter = TrialReporter("err")
    reporter.setup(CallbackContext(run=None, model=None, output_dir=Path("."),
                                   cfg=OmegaConf.create({"optuna_trial": trial.number,
                                                         "pruner": {"_target_": "optuna.pruners.NopPruner"}}),
                                   sweeper={"storage": url, "study_name": "s"}))
    try:
        with sigterm_inside("INSERT INTO trial_intermediate_values") as sent, \
                pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
            reporter.on_epoch_end(1, {"err": 0.25}, SimpleNamespace(budget_epochs=None))  # a TrainState's
    finally:
        reporter.teardown()
    assert sent  # the signal came inside the write
    assert optuna.load_study(study_name="s", storage=url).trials[0].intermediate_values == {1: 0.25}
