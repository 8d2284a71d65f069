"""Which process owns a run: the host and pid tags a run is opened with, and whether that process is
gone. A RUNNING run whose owner is gone is an orphan (SIGKILL, a crash): the next command that
meets it ends it, or resumes it.

A pid alone does not name one process for long: a container's command is pid 1 of its namespace,
and so is the command of the container restarted after it (on a host of the same name: a pod keeps
its name); after a reboot any pid may be another process's. So a run also records when its process
started (`pid_start`: the boot's id and the start time in clock ticks, from Linux's /proc), and a
live pid that started at another time is not its owner. Where /proc cannot tell (macOS), and for
runs recorded without it, the pid alone is judged, as before.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any, Mapping, Optional

from colorize.names import RUN_NAME_TAG, SLURM_JOB_TAG


def owner_tags() -> dict[str, str]:
    """Tags naming the process that owns a run, to tell live runs from orphans later."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": str(pid), "pid_start": started(pid)}


def started(pid: int) -> str:
    """When process `pid` started, as `<boot id>/<clock ticks since boot>`; '' where /proc cannot say
    (not Linux, or no such process)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()  # (after the command's name, which may hold spaces)
    return f"{boot}/{fields[19]}" if len(fields) > 19 else ""  # starttime: the stat's 22nd field


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_pid(owner: Mapping[str, Any]) -> Optional[int]:
    """The pid `owner` (the keys of :func:`owner_tags`) names, if its process ran on this host."""
    pid = str(owner.get("pid", ""))
    return int(pid) if owner.get("host") == socket.gethostname() and pid.isdigit() else None


def owner_gone(owner: Mapping[str, Any]) -> bool:
    """Whether the process named by `owner` (the keys of :func:`owner_tags`) ran on this host and is gone.

    Owners on other hosts are never judged: their process cannot be checked from here.
    """
    pid = local_pid(owner)
    if pid is None:
        return False
    if not process_alive(pid):
        return True
    recorded, now = str(owner.get("pid_start", "")), started(pid)
    return bool(recorded and now) and now != recorded  # the pid is another process's now


def is_orphan(run: Any) -> bool:
    """A RUNNING MLflow run whose owning process on this host is gone (SIGKILL, crash)."""
    return run.info.status == "RUNNING" and owner_gone(run.data.tags)


def queued_slurm_jobs() -> set[str]:
    """The SLURM jobs pending or running (array tasks as 12_3, as runs name them); none where
    `squeue` is missing or fails (then no job is judged live)."""
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return set()
    return set(out.stdout.split()) if out.returncode == 0 else set()


def live_owner(run: Any, queued: set[str]) -> Optional[tuple[str, str]]:
    """What still trains a RUNNING `run`, and the command that stops it: its SLURM job if `queued`
    (from :func:`queued_slurm_jobs`) lists it, else its process if on this host; None if it is not
    known to live (ended, an orphan, another host's process that cannot be checked from here)."""
    tags = run.data.tags
    if run.info.status != "RUNNING" or is_orphan(run):
        return None
    if tags.get(SLURM_JOB_TAG) in queued:
        return f"SLURM job {tags[SLURM_JOB_TAG]}", f"scancel {tags[SLURM_JOB_TAG]}"
    pid = local_pid(tags)  # (alive: the run is no orphan)
    return (f"pid {pid} on this host", f"kill {pid}") if pid is not None else None


def still_trained(runs: list) -> tuple[list[str], list[str]]:
    """Those of `runs` that a live process or SLURM job still trains, each as `run <id> (<name>:
    <owner>)`, and the commands that would stop them."""
    running = [r for r in runs if r.info.status == "RUNNING"]
    queued = queued_slurm_jobs() if any(SLURM_JOB_TAG in r.data.tags for r in running) else set()
    owners = [(r, live_owner(r, queued)) for r in running]
    live = [(f"run {r.info.run_id} ({r.data.tags.get(RUN_NAME_TAG, '')}: {o[0]})", o[1]) for r, o in owners if o]
    return [what for what, _ in live], [stop for _, stop in live]
