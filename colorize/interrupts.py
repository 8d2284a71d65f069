"""Ctrl-C, SIGTERM and a hung-up terminal (SIGHUP): a KeyboardInterrupt at once, except during a call
to the tracking store or to a trial's Optuna study, which is let finish first (the interrupt follows
as soon as it returns; a second signal meanwhile does not wait).

A terminal that hangs up (an SSH connection dropped, a window closed) sends SIGHUP twice to the
command in its foreground: the shell passes its own on, and the kernel sends one more as the shell
exits. It is one interrupt: a SIGHUP after a signal was taken is ignored, or it would cut the first
one's store calls short. The terminal is gone by then, and every write to it fails (EIO): the
handler points stdout and stderr at /dev/null first (`quiet_if_hung_up`), so that the runs still end
KILLED with their checkpoints, and nothing fails on a log line or a progress bar. Under `nohup`,
SIGHUP stays ignored and the command trains on.

Why: an interrupt raised inside MLflow's own code (a SQLAlchemy session, its connection pool, a lock
it holds) can leave the store unusable for the rest of the process, and then the run it should end
KILLED stays RUNNING, as does its sweep's parent run (seen once in CI, after a SIGTERM mid-epoch).

The handler is an :class:`Interrupter` object; the signal module holds it, so the process state it
keeps (a call under way, an interrupt waiting) lives where the signal handlers live, not in a
module global.
"""

from __future__ import annotations

import errno
import os
import queue
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import ContextManager, Iterator, Literal, Optional, overload


class Interrupter:
    """The SIGTERM (SIGINT, SIGHUP) handler: raises KeyboardInterrupt(<signal name>), or, inside
    :meth:`deferred`, when the deferred block ends."""

    def __init__(self) -> None:
        self.depth = 0  # deferred blocks under way (nested store calls)
        self.pending: Optional[str] = None  # the signal that arrived during one
        self.seen: Optional[str] = None  # the first signal's name, once one came
        self.absorb = False  # the next signal is one already taken (passed on by the sweep first)
        self.taken = False  # an interrupt was raised, or waits for a store call to return
        self.again: queue.SimpleQueue[int] = queue.SimpleQueue()  # signals to send once more (redeliver)
        self.sender: Optional[threading.Thread] = None

    def __call__(self, signum: int, frame: Optional[FrameType]) -> None:
        quiet_if_hung_up()
        name = signal.Signals(signum).name
        self.seen = self.seen or name
        if self.absorb:
            self.absorb = False
            return
        if signum == signal.SIGHUP and self.taken:
            return  # the same hang-up again (the shell's, then the kernel's), or one after an interrupt
        if self.depth and self.pending is None:
            self.pending, self.taken = name, True  # raised when the store call returns
            return
        self.pending = None  # not in a store call, or a second signal: at once, and only this one
        if in_finalizer(frame):
            self.redeliver(signum)
            return
        self.taken = True
        raise KeyboardInterrupt(name)

    def forwarded(self, signum: int, frame: Optional[FrameType]) -> None:
        """An interrupt a sweep passed on to its worker as `signum` (colorize/launch/worker_interrupts.py):
        taken as SIGTERM, unless this process had a signal already (a terminal's Ctrl-C reaches every
        process of the command); and a signal that follows it is that same interrupt, taken once."""
        if self.seen is None:
            if in_finalizer(frame):
                self.redeliver(signum)
                return
            try:
                self(signal.SIGTERM, None)
            finally:
                self.absorb = True

    def redeliver(self, signum: int) -> None:
        """The signal again, soon, from a thread (started once; SimpleQueue is safe in a handler): the
        main thread takes it at its next step, once out of the finalizer (still in it, it asks again)."""
        self.again.put(signum)
        if self.sender is None:
            self.sender = threading.Thread(target=self._send, name="colorize-interrupt-again", daemon=True)
            self.sender.start()

    def _send(self) -> None:
        while True:
            signum = self.again.get()
            time.sleep(0.01)  # (for the finalizer to return)
            os.kill(os.getpid(), signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending:
                name, self.pending = self.pending, None
                raise KeyboardInterrupt(name)


@overload
def install(replace: Literal[True] = ...) -> Interrupter: ...


@overload
def install(replace: bool) -> Optional[Interrupter]: ...


def install(replace: bool = True) -> Optional[Interrupter]:
    """Make SIGTERM and SIGHUP behave like Ctrl-C (checkpoints kept, runs marked KILLED, non-zero
    exit), all through one Interrupter, which is returned. One per process: an installed one is kept. With
    `replace` False, a SIGTERM handler someone else installed is left alone (None is returned). SIGINT
    is taken only from Python's default handler (a background job started with SIGINT ignored keeps
    ignoring it), and SIGHUP only from the default (`nohup` set it ignored)."""
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, Interrupter):
        return current
    if not replace and current not in (signal.SIG_DFL, None):
        return None
    interrupter = Interrupter()
    signal.signal(signal.SIGTERM, interrupter)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupter)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:  # (`nohup` leaves it ignored)
        signal.signal(signal.SIGHUP, interrupter)
    return interrupter


def quiet_if_hung_up(fds: tuple[int, ...] = (1, 2)) -> None:
    """Point each of `fds` (stdout and stderr) at /dev/null if it is a terminal that hung up: a write
    to it fails with EIO, a zero-byte one too, which writes nothing elsewhere. A file or a pipe is
    left as it is."""
    for fd in fds:
        try:
            os.write(fd, b"")
        except OSError as exc:
            if exc.errno == errno.EIO:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)


def uninterrupted() -> ContextManager[None]:
    """A block that an interrupt waits for (a store call), where the installed Interrupter handles
    signals; otherwise nothing changes. Signal handlers run in the main thread: other threads' blocks
    are not deferred."""
    handler = signal.getsignal(signal.SIGTERM)
    if isinstance(handler, Interrupter) and threading.current_thread() is threading.main_thread():
        return handler.deferred()
    return nullcontext()


def in_finalizer(frame: Optional[FrameType]) -> bool:
    """Whether the code a signal interrupted runs inside a `__del__` (tqdm's bar, say, collected in
    the middle of a step): an exception raised there is printed ("Exception ignored in ...") and
    dropped, so an interrupt raised there would be lost, and the run would train on."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False

