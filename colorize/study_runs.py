"""The study's preset commands as processes: one after another, or several at once sharing the jobs.

`colorize-study` runs each preset as its own `python -m colorize.train -m` command (a Hydra multirun
with its own MLflow parent run). Each command starts up once: on a lent H200, 55 s for 16 workers
(imports, CUDA contexts, the faces decoded in each worker) against ~90 s per wave of 100-epoch
trials (docs/gpu/README.md, 2026-12-04). One after another, the five grid presets pay five start-ups,
and each preset's last wave leaves slots idle (9, 12, 18, 30 and 24 trials in waves of 16: 8 waves).
Run at once, with the launcher's jobs split between them so that the slowest ends in the fewest
waves (`split_jobs`: 6 waves for those five), they pay one start-up of wall time and pack their
waves. Each still is a command of its own, with its own parent run, folder and log. With fewer
jobs than presets (2 on a 2-core CPU with joblib), that many presets run at a time, one job each,
the next starting as one ends (`run_all`): the start-ups still overlap.

How the processes are handled:

- each preset runs in a session of its own, so an interrupt reaches it once, from the study: the
  study forwards one SIGINT per interrupt it gets (Ctrl-C, SIGTERM, a hang-up) to each live preset's process
  group (its launcher and workers: what a terminal's Ctrl-C reaches for a lone multirun), then waits
  for them to end their runs KILLED. A study killed outright (SIGKILL) forwards nothing: its presets
  train on to their end, their runs complete, and the same command run again skips them. (A
  parent-death signal, `PR_SET_PDEATHSIG`, was tried: the presets then got a second SIGTERM while
  ending their runs, for a reason not found, and parent runs were left RUNNING; not kept);
- presets run at once write their output to a log each (`outputs/study/<name>/<preset>.log`); one
  run alone keeps the terminal, as a lone `colorize-train -m` would;
- presets at once share the cores: each gets `OMP_NUM_THREADS` = cores // jobs (unless it is set),
  which each job's thread count and joblib's workers honour.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from colorize.config.compose import override_key

log = logging.getLogger("colorize.study")

POLL_S = 0.5  # how often the study looks for a finished preset (waiting only: nothing is timed by it)


def split_jobs(trials: Sequence[int], jobs: int) -> Optional[list[int]]:
    """Jobs for each of several presets run at once, out of `jobs`: the fewest waves for the slowest
    (waves = ceil(trials / its jobs)), then the fewest jobs that give those waves. None when `jobs`
    cannot give each preset one. A preset whose trials are not known (0) counts as one."""
    if jobs < len(trials):
        return None
    counts = [max(1, t) for t in trials]
    for waves in range(1, max(counts) + 1):
        split = [math.ceil(t / waves) for t in counts]
        if sum(split) <= jobs:
            return split
    return [1] * len(counts)  # (not reached: waves = max(counts) gives ones)


def merged(common: Sequence[str], own: Sequence[str]) -> list[str]:
    """`common` then `own`, where a key given in `own` replaces the same key in `common`."""
    keys = {override_key(o) for o in own}
    return [o for o in common if override_key(o) not in keys] + list(own)


@dataclass
class PresetCommand:
    """One preset's `colorize.train -m` command line, and what the study knows of it."""

    preset: str
    task: list[str]
    hydra: list[str]
    trials: int

    def argv(self, extra_hydra: Sequence[str] = ()) -> list[str]:
        """The command, with `extra_hydra` overrides replacing the preset's own of the same key."""
        return [sys.executable, "-m", "colorize.train", "-m", *self.task, *merged(self.hydra, extra_hydra)]


def _child_signals() -> None:  # pragma: no cover - runs in the child between fork and exec
    """SIGINT as a foreground job has it: the study may run with it ignored, as a background job does,
    and the child would then ignore what the study forwards."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list[str], log_file: Optional[Path], env: Optional[dict] = None) -> subprocess.Popen:
    """A preset's process in a session of its own; its output to `log_file`, else to the terminal."""
    out = open(log_file, "w") if log_file else None  # noqa: SIM115 (the child holds it; closed below)
    try:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT if out else None, env=env,
                                start_new_session=True, preexec_fn=_child_signals)
    finally:
        if out:
            out.close()


def _forward(procs: Sequence[subprocess.Popen]) -> None:
    """One SIGINT to each live preset's process group (its launcher and workers)."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass


@dataclass
class Launch:
    """A preset's process to start: its command, its log (None: the terminal), its environment, and
    the line that says so."""

    preset: str
    argv: list[str]
    log_file: Optional[Path] = None
    env: Optional[dict] = None
    said: str = ""


def run_all(launches: Sequence[Launch], at_once: int, on_end: Callable[[str, int], None]) -> list[str]:
    """Start the launches in order, `at_once` at a time, the next as one ends; `on_end(preset, exit
    status)` as each ends. After a failure none is started (those running finish). An interrupt, or
    an error in `on_end`, is forwarded to the live ones as SIGINT and starts nothing more; they are
    waited for (a further interrupt is forwarded too), then it is raised. The presets that failed."""
    queue = list(launches)
    running: dict[str, subprocess.Popen] = {}
    failed: list[str] = []
    interrupted: Optional[BaseException] = None
    while running or (queue and not failed and interrupted is None):
        try:
            while queue and len(running) < at_once and not failed and interrupted is None:
                launch = queue.pop(0)
                log.info("%s", launch.said or "running " + " ".join(launch.argv[2:]))
                running[launch.preset] = start(launch.argv, launch.log_file, launch.env)
            for preset, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[preset]
                    if proc.returncode != 0:
                        failed.append(preset)
                    if interrupted is None:
                        on_end(preset, proc.returncode)
            if running:
                time.sleep(POLL_S)
        except BaseException as exc:  # Ctrl-C, SIGTERM (colorize.interrupts), or on_end's error
            interrupted = interrupted or exc
            log.warning("interrupted: stopping %s (their runs end KILLED)", ", ".join(running) or "nothing")
            _forward(list(running.values()))
    if interrupted is not None:
        raise interrupted
    return failed
