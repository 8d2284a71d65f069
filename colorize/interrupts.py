"""Ctrl-C and SIGTERM: a KeyboardInterrupt at once, except during a call to the tracking store or to
a trial's Optuna study, which is let finish first (the interrupt follows as soon as it returns; a
second signal meanwhile does not wait).

Why: an interrupt raised inside MLflow's own code (a SQLAlchemy session, its connection pool, a lock
it holds) can leave the store unusable for the rest of the process, and then the run it should end
KILLED stays RUNNING, as does its sweep's parent run (seen once in CI, after a SIGTERM mid-epoch).

The handler is an :class:`Interrupter` object; the signal module holds it, so the process state it
keeps (a call under way, an interrupt waiting) lives where the signal handlers live, not in a
module global.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import ContextManager, Iterator, Literal, Optional, overload


class Interrupter:
    """The SIGTERM (and SIGINT) handler: raises KeyboardInterrupt(<signal name>), or, inside
    :meth:`deferred`, when the deferred block ends."""

    def __init__(self) -> None:
        self.depth = 0  # deferred blocks under way (nested store calls)
        self.pending: Optional[str] = None  # the signal that arrived during one
        self.seen: Optional[str] = None  # the first signal's name, once one came
        self.absorb = False  # the next signal is one already taken (passed on by the sweep first)
        self.again: queue.SimpleQueue[int] = queue.SimpleQueue()  # signals to send once more (redeliver)
        self.sender: Optional[threading.Thread] = None

    def __call__(self, signum: int, frame: Optional[FrameType]) -> None:
        name = signal.Signals(signum).name
        self.seen = self.seen or name
        if self.absorb:
            self.absorb = False
            return
        if self.depth and self.pending is None:
            self.pending = name  # raised when the store call returns
            return
        self.pending = None  # not in a store call, or a second signal: at once, and only this one
        if in_finalizer(frame):
            self.redeliver(signum)
            return
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
    """Make SIGTERM behave like Ctrl-C (checkpoints kept, runs marked KILLED, non-zero exit), both
    through one Interrupter, which is returned. One per process: an installed one is kept. With
    `replace` False, a SIGTERM handler someone else installed is left alone (None is returned). SIGINT
    is taken only from Python's default handler (a background job started with SIGINT ignored keeps
    ignoring it)."""
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, Interrupter):
        return current
    if not replace and current not in (signal.SIG_DFL, None):
        return None
    interrupter = Interrupter()
    signal.signal(signal.SIGTERM, interrupter)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupter)
    return interrupter


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

