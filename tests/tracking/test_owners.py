"""colorize/tracking/owners.py with real processes: a run's owner is its pid and when that process
started, so a pid another process holds now (a restarted container's pid 1, a pid reused after a
reboot) is not taken for the owner."""

import os
import socket
import subprocess
import sys

from colorize.tracking.owners import owner_gone, owner_tags, started


def test_a_runs_owner_is_its_pid_and_when_it_started():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        now = started(proc.pid)
        boot, ticks = now.split("/")
        assert boot and ticks.isdigit() and now == started(proc.pid)  # (the same process: the same time)
        assert now != started(os.getpid())  # another process: another start (this one started first)
        owner = {"host": socket.gethostname(), "pid": str(proc.pid), "pid_start": now}
        assert not owner_gone(owner)  # alive
        # what a reused pid looks like: the tags an earlier process with this pid recorded
        assert owner_gone({**owner, "pid_start": f"{boot}/{int(ticks) - 100}"})
        assert owner_gone({**owner, "pid_start": f"another-boot/{ticks}"})  # (after a reboot)
        assert not owner_gone({**owner, "pid_start": ""})  # recorded before pid_start: the pid alone
        assert not owner_gone({**owner, "host": "another-host", "pid_start": "x/1"})  # never judged from here
    finally:
        proc.kill()
        proc.wait()
    assert owner_gone(owner) and started(proc.pid) == ""


def test_owner_tags_name_this_process():
    tags = owner_tags()
    assert tags == {"host": socket.gethostname(), "pid": str(os.getpid()), "pid_start": started(os.getpid())}
    assert tags["pid_start"] and not owner_gone(tags)
