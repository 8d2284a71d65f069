"""Every run and sweep gets a folder of its own, whatever the timing.

- Unique names: the default folders end in a random suffix (``${colorize.unique:}``, 8 hex digits
  drawn once per command), so commands started in the same second -- in one folder, or on several
  hosts sharing a file system -- never share one.
- A lock: while a run or sweep is live its folder holds an exclusive ``flock`` on
  :data:`LOCK_FILE` (its owner's host and pid written inside). A folder given explicitly
  (``hydra.run.dir=...``, ``hydra.sweep.dir=...``) that a live command holds is refused in one line.
  "Live" is the lock: the kernel drops it when the process ends, however it ends (SIGKILL included),
  so a folder of a dead run is free again -- which is what resuming a killed sweep in its folder
  needs. (On NFS, Linux maps flock to the server's byte-range locks.)
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import socket
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

LOCK_FILE = ".colorize.lock"
UNIQUE_RESOLVER = "colorize.unique"


def register_resolver() -> None:
    """``${colorize.unique:}``: 8 random hex digits, cached in the config like Hydra's ``${now:}``,
    so every place (and every job of a sweep) that reads the folder gets the same name."""
    OmegaConf.register_resolver(UNIQUE_RESOLVER, lambda: secrets.token_hex(4), replace=True, use_cache=True)


class FolderInUse(SystemExit):
    """The folder is held by a live run or sweep (or cannot be written): one line, exit status 1."""


def take(folder: Path, key: str) -> int:
    """Lock `folder` (created if need be) for this process; the open descriptor holds the lock."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise FolderInUse(f"colorize: error: cannot create {key}={str(folder)!r}: {_reason(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise FolderInUse(f"colorize: error: {key}={str(folder)!r} is in use by a live run ({owner}): "
                          "choose another folder, or leave it out for a new one") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    except OSError as exc:  # a full disk shows here, before Hydra writes its own files
        os.close(fd)
        raise FolderInUse(f"colorize: error: cannot write in {key}={str(folder)!r}: {_reason(exc)}") from None
    return fd


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device (free some space)"
    return exc.strerror or str(exc)


class FolderLock(Callback):
    """Hydra callback (first in `hydra.callbacks`): holds the run's or sweep's folder while it runs."""

    def __init__(self) -> None:
        self.fd: Optional[int] = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.fd = take(Path(str(config.hydra.run.dir)), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.fd = take(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def _release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None
