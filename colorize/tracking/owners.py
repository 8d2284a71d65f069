"""Which process owns a run: the host and pid tags a run is opened with, and whether that process is
gone. A RUNNING run whose owner is gone is an orphan (SIGKILL, a crash): the next command that
meets it ends it, or resumes it."""

from __future__ import annotations

import os
import socket
from typing import Any, Mapping


def owner_tags() -> dict[str, str]:
    """Tags naming the process that owns a run, to tell live runs from orphans later."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(owner: Mapping[str, Any]) -> bool:
    """Whether the process named by `owner` (the keys of :func:`owner_tags`) ran on this host and is gone.

    Owners on other hosts are never judged: their process cannot be checked from here.
    """
    pid = str(owner.get("pid", ""))
    return owner.get("host") == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))


def is_orphan(run: Any) -> bool:
    """A RUNNING MLflow run whose owning process on this host is gone (SIGKILL, crash)."""
    return run.info.status == "RUNNING" and owner_gone(run.data.tags)
