"""colorize/launch/worker_interrupts.py with real signals and real processes: the sweep passes its
first interrupt on to the workers with a group under way and does not raise; a second raises; a
group that starts after the interrupt does not train."""

import contextlib
import os
import select
import signal
import subprocess
import sys

import pytest

from colorize.interrupts import install
from colorize.launch.worker_interrupts import STOP_FILE, forwarding

WORKER = """
import sys, time
from pathlib import Path
from colorize.launch.worker_interrupts import worker_group

with worker_group(Path(sys.argv[1])) as start:
    try:  # (the interrupt may come as soon as the line is out)
        print("start", start, flush=True)
        if start:
            time.sleep(120)
    except KeyboardInterrupt as exc:
        print("interrupted", exc, flush=True)
"""


def worker(folder):
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(folder)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_the_sweeps_first_signal_reaches_the_workers_groups_and_a_second_raises(handlers, tmp_path):
    with forwarding(tmp_path) as forwarder:
        proc, said = worker(tmp_path)
        assert said == "start True"
        assert [p.name for p in (tmp_path / ".workers").iterdir()] == [str(proc.pid)]  # to be signalled
        os.kill(os.getpid(), signal.SIGTERM)  # the sweep's first: no raise here
        assert forwarder.signal == "SIGTERM" and (tmp_path / STOP_FILE).exists()
        out = proc.communicate(timeout=60)[0]
        assert (proc.returncode, out.strip()) == (0, "interrupted SIGTERM")  # the worker's group stopped
        assert list((tmp_path / ".workers").iterdir()) == []  # its group ended: no longer to signal
        late, said = worker(tmp_path)  # a group that starts now does not train
        assert said == "start False" and late.wait(timeout=60) == 0
        with pytest.raises(KeyboardInterrupt, match="^SIGINT$"):
            os.kill(os.getpid(), signal.SIGINT)  # a second: at once
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the sweep's handlers again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_hang_up_at_the_sweep_is_one_interrupt_passed_on_once(handlers, tmp_path):
    """A hung-up terminal: the shell's SIGHUP, then the kernel's as the shell exits. The first is passed
    on to the worker's group; the second raises nothing, neither while the workers stop nor after,
    while the sweep ends its parent run; a SIGTERM after it is someone's, and raises."""
    interrupter = install()  # (the sweep callback's, as in a multirun)
    assert signal.getsignal(signal.SIGHUP) is interrupter  # (else a SIGHUP below would end pytest)
    with forwarding(tmp_path) as forwarder:
        proc, said = worker(tmp_path)
        assert said == "start True"
        os.kill(os.getpid(), signal.SIGHUP)
        assert forwarder.signal == "SIGHUP"
        os.kill(os.getpid(), signal.SIGHUP)  # the same hang-up: no raise
        assert (proc.communicate(timeout=60)[0].strip(), proc.returncode) == ("interrupted SIGTERM", 0)
    os.kill(os.getpid(), signal.SIGHUP)  # after the block: still the same hang-up
    with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
        os.kill(os.getpid(), signal.SIGTERM)


def sweep_with_worker(code, folder):
    """A sweep: a process that starts one worker (`python -c code folder`) sharing its pipes, and
    lives until it is killed. Returns the sweep's Popen and the worker's pid."""
    (folder / ".workers").mkdir(exist_ok=True)
    sweep = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; print(subprocess.Popen(sys.argv[1:]).pid, flush=True);"
         " import time; time.sleep(600)", sys.executable, "-c", code, str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))  # (as a terminal's job, not `nohup`'s)
    return sweep, int(sweep.stdout.readline())


IDLE = """
import subprocess, sys
from pathlib import Path
from colorize.launch.worker_interrupts import worker_group

with worker_group(Path(sys.argv[1])):
    pass  # one group, ended: the worker is idle now, as between loky's calls
print("idle", flush=True)
for line in sys.stdin:  # each line answered: the worker still lives
    print("alive", flush=True)
"""


def test_an_idle_worker_ignores_signals_while_the_sweep_lives_and_ends_once_it_is_gone(tmp_path):
    sweep, pid = sweep_with_worker(IDLE, tmp_path)
    try:
        assert sweep.stdout.readline() == "idle\n"
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # Ctrl-C, a `kill` of the group, a hang-up
            os.kill(pid, s)
            sweep.stdin.write("ping\n")
            sweep.stdin.flush()
            # (a bound on waiting for the answer: a worker the signal ended never answers, and the sweep
            # keeps the pipe open)
            assert select.select([sweep.stdout], [], [], 60)[0], f"the worker did not survive {s.name}"
            assert sweep.stdout.readline() == "alive\n"  # ignored: loky's pool stays whole
        sweep.kill()
        sweep.wait(timeout=60)
        assert sweep.stdout.read() == ""  # an orphan: it ended on its own (its end of the pipe closed)
    finally:
        sweep.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # (a failed run leaves no orphan)
        sweep.stdin.close()


def test_a_worker_whose_sweep_is_gone_interrupts_its_group_and_then_ends(tmp_path):
    sweep, pid = sweep_with_worker(WORKER, tmp_path)
    try:
        assert sweep.stdout.readline() == "start True\n"
        sweep.kill()  # SIGKILL: nothing is passed on; the worker notices it was re-parented
        sweep.wait(timeout=60)  # (re-parented before its parent's exit is reported)
        assert sweep.stdout.read() == "interrupted SIGTERM\n"  # its runs would end KILLED; then it ended
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
