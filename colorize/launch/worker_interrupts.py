"""Ctrl-C, SIGTERM or a hung-up terminal (SIGHUP) at a sweep whose groups train in loky workers
(`hydra/launcher=fused` with n_jobs > 1, the CUDA default): the workers end their own trials' runs
KILLED, and the sweep waits.

joblib, interrupted, kills its workers at once. Their trials' runs were then ended KILLED only later,
by recovery (`failure=process_gone`); a worker that had the Ctrl-C too (the terminal sends it to
every process of the command) was killed while ending its own run; and Python's resource tracker
warned of leaked semaphores after colorize's last line. Here, while the groups train:

- the sweep's process takes the first signal without raising (`Forwarder`): it marks the sweep
  stopped (`STOP_FILE` in the sweep's folder: a group not yet started returns at once), passes the
  interrupt on to each worker that has a group under way (`FORWARDED`, SIGUSR1), and joblib goes on
  waiting until every group has returned; then the launcher raises, and the sweep ends KILLED in one
  line as before;
- a worker takes the interrupt once, whether the terminal's or the sweep's comes first
  (`Interrupter.forwarded`): its trials end their runs KILLED with their last checkpoints, and
  `run_group_in_worker` returns instead of raising, so that joblib does not kill the other workers
  meanwhile;
- between groups a worker ignores Ctrl-C, SIGTERM and SIGHUP (there is nothing of its own to stop, and a
  worker that died would make loky kill the others), unless the sweep is gone (SIGKILLed, so the
  worker was re-parented): then the signal ends it as by default, and `kill` clears an orphan
  instead of leaving it idle until loky's timeout;
- a second signal at the sweep raises at once: joblib kills the workers, as before (for a hang);
- a worker whose sweep is gone (SIGKILLed, so the worker was re-parented) interrupts its own group
  (`watch_sweep`), so its runs end KILLED with their last checkpoints and the same command, run
  again, resumes them instead of training each trial twice beside an orphan that trains on; then
  the worker ends, as does an idle one: nobody waits for a result or gives a next group (before,
  orphans outlived loky's idle timeout).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator, Optional

from colorize.interrupts import Interrupter, quiet_if_hung_up

FORWARDED = signal.SIGUSR1  # the sweep to its workers: "interrupt your group" (default action: end)
STOP_FILE = ".interrupted"  # in the sweep's folder: the sweep was interrupted, start no group
WORKERS = ".workers"  # in the sweep's folder: one empty file per worker process with a group under way
WATCH_S = 0.5  # how often a worker checks that its sweep lives
WATCHER = "colorize-watch-sweep"  # the name of the thread that does (one per worker process)


class Forwarder:
    """The sweep's SIGINT, SIGTERM and SIGHUP handler while its workers train."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.signal: Optional[str] = None  # the first signal's name, once one came

    def __call__(self, signum: int, frame: Any) -> None:
        quiet_if_hung_up()
        name = signal.Signals(signum).name
        if self.signal is not None:
            if signum == signal.SIGHUP:
                return  # the same hang-up again (colorize/interrupts.py), not a second interrupt
            raise KeyboardInterrupt(name)  # a second one: at once
        self.stop(name)

    def stop(self, name: str) -> None:
        """Stop the sweep's groups: a signal's doing, or the launcher's when a worker was interrupted
        on its own (`kill` of its pid): the other groups stop too, as they would in one process."""
        if self.signal is not None:
            return
        self.signal = name
        (self.folder / STOP_FILE).touch()
        for worker in (self.folder / WORKERS).glob("*"):
            try:
                os.kill(int(worker.name), FORWARDED)
            except (ProcessLookupError, ValueError):
                pass  # its group has ended (or not a pid)


@contextmanager
def forwarding(folder: Path) -> Iterator[Forwarder]:
    """Inside, the sweep's first Ctrl-C, SIGTERM or SIGHUP reaches its workers' groups and waits for them;
    the caller raises KeyboardInterrupt(`forwarder.signal`) after the block, and the process's
    Interrupter counts it as taken (a hang-up's second SIGHUP is then ignored there too). Outside the
    main thread, or where SIGINT or SIGHUP is ignored (a background job, `nohup`), the handlers stay
    as they were for that signal."""
    forwarder = Forwarder(folder)
    (folder / WORKERS).mkdir(parents=True, exist_ok=True)
    (folder / STOP_FILE).unlink(missing_ok=True)
    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
                 if s == signal.SIGTERM or signal.getsignal(s) not in (signal.SIG_IGN, None)}
    for s in saved:
        signal.signal(s, forwarder)
    try:
        yield forwarder
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
            if forwarder.signal is not None and isinstance(handler, Interrupter):
                handler.taken = True


@contextmanager
def worker_group(folder: Path) -> Iterator[bool]:
    """In a loky worker, around one group: yields False if the sweep was already interrupted (the
    group is not to start), else True, with this process's interrupts taken (`interrupts()` and the
    sweep's FORWARDED, one interrupt in all) until the group returns; then ignored until the next
    (`between_groups`)."""
    interrupter, sweep, taken = Interrupter(), os.getppid(), interrupts()
    for s in taken:
        signal.signal(s, interrupter)
    signal.signal(FORWARDED, interrupter.forwarded)
    registered = folder / WORKERS / str(os.getpid())
    registered.touch()  # before the check: a sweep interrupted after it signals this process
    watch_sweep(sweep)
    try:
        yield not (folder / STOP_FILE).exists()
    finally:
        registered.unlink(missing_ok=True)
        signal.signal(FORWARDED, signal.SIG_IGN)
        for s in taken:
            signal.signal(s, between_groups(sweep))
        if os.getppid() != sweep:  # the group's runs are ended: end this orphan, as a signal would
            os.kill(os.getpid(), signal.SIGTERM)


def interrupts() -> tuple[signal.Signals, ...]:
    """The signals a worker takes as interrupts: SIGINT, SIGTERM, and SIGHUP unless it is ignored (a
    sweep started under `nohup`, whose workers inherit that)."""
    hangup = signal.getsignal(signal.SIGHUP) not in (signal.SIG_IGN, None)
    return (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hangup else ())


def watch_sweep(sweep: int) -> None:
    """Start, once in this worker process, a thread that sends it SIGTERM once its sweep (its parent,
    pid `sweep`) is gone: a group under way is interrupted (its runs end KILLED), and then the worker
    ends (`worker_group`); an idle worker ends at once (`between_groups`)."""
    if not any(t.name == WATCHER for t in threading.enumerate()):
        threading.Thread(target=_watch, args=(sweep,), name=WATCHER, daemon=True).start()


def _watch(sweep: int) -> None:
    while os.getppid() == sweep:
        time.sleep(WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)


def between_groups(sweep: int) -> Callable[[int, Optional[FrameType]], None]:
    """A worker's SIGINT, SIGTERM (and SIGHUP) handler while idle: ignored while the sweep (its parent `sweep`)
    lives; once it is gone, the signal's default action (the worker ends)."""

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        if os.getppid() != sweep:  # re-parented: nobody waits for this worker's next group
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler
