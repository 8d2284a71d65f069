"""`hydra/launcher=ray`: each job of a sweep as a Ray task, on a Ray instance started for the sweep
(`hydra.launcher.ray.init.address=local`, the default) or on a running cluster (`address=auto`, or its
`host:port`). Needs `pip install 'colorize[ray]'`.

Why not Hydra's own Ray launcher: hydra-ray-launcher 1.2.2 requires cloudpickle<3, and joblib 1.6, the
engine of `hydra/launcher=joblib` and a dependency of colorize, requires cloudpickle>=3; installing it
breaks a shipped launcher. This one keeps its shape on Ray's own API: the same settings (`ray.init`
goes to ``ray.init(...)``, `ray.remote` to ``ray.remote(...)``), and each task runs Hydra's `run_job` in
a Ray worker, as Hydra's does. What it adds, as colorize's SLURM launcher does:

- the whole batch is waited for; then a task that ended without a result (its worker killed, its node
  lost) ends the sweep in one line naming each such trial, and the parent run ends KILLED. The trial's
  run keeps its last.pt, so the same command run again resumes it (colorize/tracking/attempts.py).
  Ray's retries are off by default (`max_retries: 0`), so a lost trial is reported, not rerun unseen;
- a trial's own one-line error (a bad value; SystemExit) comes back as that line, where Ray would take
  the exit for a crashed worker;
- Ctrl-C or SIGTERM at the sweep cancels its tasks: Ray raises KeyboardInterrupt in each trial, which
  ends its run KILLED with its last.pt kept, and the sweep waits for that before it ends;
- a trial runs in the sweep's working folder, which on a cluster must be on a file system every node
  shares at the same path (as for SLURM); a node without it is one line.

Each trial takes `ray.remote.num_cpus` CPUs (Ray sets OMP_NUM_THREADS to that, which
`trainer.num_threads=0` honours) and `ray.remote.num_gpus` GPUs: 0.25 puts four trials on a GPU.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from colorize.config.build import as_dict
from colorize.launch.base import SweepLauncher, lost_trials
from colorize.ports import unanswered

log = logging.getLogger("colorize")

CANCEL_WAIT_S = 120  # how long an interrupted sweep waits for its cancelled trials to end their runs
WAIT_S = 0.5  # how often the sweep looks up from waiting on its trials (to take Ctrl-C, SIGTERM)


@dataclass
class RayConf:
    """`ray.init(**init)` (None values left out) and `ray.remote(**remote)` for each trial."""

    # address "local", not Ray's default None: None joins whatever cluster `ray start` last started on
    # this machine (/tmp/ray/ray_current_cluster), even one long dead, and then hangs
    init: Dict[str, Any] = field(default_factory=lambda: {
        "address": "local", "num_cpus": None, "num_gpus": None, "include_dashboard": False})
    remote: Dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1, "num_gpus": 0, "max_retries": 0})


@dataclass
class RayLauncherConf:
    _target_: str = "colorize.launch.ray_launcher.RayLauncher"
    ray: RayConf = field(default_factory=RayConf)


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=RayLauncherConf, provider="colorize")


@dataclass
class Exited:
    """A trial that ended with one line (SystemExit): the line, carried back as a result."""

    line: str


def _run_job(hydra_context: HydraContext, config: DictConfig, task_function: TaskFunction,
             singleton_state: Any) -> JobReturn | Exited:
    """One trial in a Ray worker: Hydra's `run_job` in the sweep's folder. The worker lives on after
    it, so its folder and signal handlers (Ray's) are put back."""
    cwd, handlers = os.getcwd(), {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    where = str(config.hydra.runtime.cwd)
    if not Path(where).is_dir():
        return Exited(f"colorize: error: trial #{config.hydra.job.num} ran on a Ray node without the sweep's "
                      f"folder {where}: it must be on a file system every node shares, at the same path")
    try:
        os.chdir(where)
        # ray.cancel interrupts a task through SIGINT (_thread.interrupt_main), a no-op where SIGINT is
        # ignored, as it is in workers of a sweep started in the background: take it here
        signal.signal(signal.SIGINT, signal.default_int_handler)
        setup_globals()
        Singleton.set_state(singleton_state)
        HydraConfig.instance().set_config(config)
        return run_job(hydra_context=hydra_context, task_function=task_function, config=config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except SystemExit as exc:  # colorize's one line (bad input, an interrupt): not a dead worker
        return Exited(str(exc.code))
    finally:
        os.chdir(cwd)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _ray():
    # each trial's lines as they are: Ray's default folds lines alike across workers ("[repeated 4x
    # across cluster]"), which hides one trial's epochs behind another's
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise SystemExit("colorize: error: hydra/launcher=ray needs Ray: pip install 'colorize[ray]'") from None
    return ray


def options(settings: DictConfig, key: str) -> dict[str, Any]:
    """`ray.<key>` as keyword arguments (None values left out: Ray's defaults)."""
    values = as_dict(settings[key], resolve=True) if settings.get(key) is not None else {}
    return {k: v for k, v in values.items() if v is not None}


class RayLauncher(SweepLauncher):
    """Each job a Ray task; the batch waited for whole; lost or cancelled trials named in one line."""

    def __init__(self, ray: DictConfig) -> None:
        super().__init__()
        self.settings = ray

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        ray = _ray()
        remote = self.remote_function(ray)
        self.open_sweep()
        self.start(ray)
        log.info("ray launcher: %d jobs on %s", len(job_overrides), ray.get_runtime_context().gcs_address)
        jobs = list(enumerate(job_overrides, start=initial_job_idx))
        shown = {idx: " ".join(filter_overrides(overrides)) for idx, overrides in jobs}
        for idx, _ in jobs:
            log.info("\t#%d : %s", idx, shown[idx])

        def submit(idx: int, overrides: Sequence[str]):
            return remote.remote(self.hydra_context, self.job_config(idx, overrides, f"ray_{idx}"),
                                 self.task_function, Singleton.get_state())

        labels = [f"trial #{idx} ({shown[idx] or 'defaults'})" for idx, _ in jobs]
        return settle(ray, run_all(ray, submit, jobs), labels)

    def remote_function(self, ray):
        """`_run_job` as a Ray remote function with `ray.remote`'s options; a bad one is one line."""
        remote = options(self.settings, "remote")
        try:
            return ray.remote(**remote)(_run_job)
        except (ValueError, TypeError) as exc:
            raise SystemExit(f"colorize: error: hydra.launcher.ray.remote={remote} is invalid: {exc}") from None

    def start(self, ray) -> None:
        """Join the cluster `ray.init.address` names, or start Ray on this machine (once a process)."""
        from colorize.interrupts import install as install_interrupts

        if not ray.is_initialized():
            init = options(self.settings, "init")
            check_address(init.get("address"))
            try:
                ray.init(**init)
            except (ConnectionError, ValueError, TypeError, RuntimeError) as exc:
                raise SystemExit(f"colorize: error: hydra.launcher.ray.init={init} failed: {exc}") from None
        install_interrupts()  # SIGTERM as Ctrl-C, in place of Ray's: the sweep cancels its trials (wait)


def check_address(address: Optional[str], timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing answers at an explicit `host:port` (or `ray://host:port`)
    address: `ray.init` alone retries for minutes. (`auto` and `local` are Ray's to resolve.)"""
    host, _, port = str(address or "").split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    why = unanswered(host, int(port), timeout)
    if why:
        raise SystemExit(f"colorize: error: hydra.launcher.ray.init.address={address}: no Ray cluster answers "
                         f"there ({why}); start one with `ray start --head`, or leave the "
                         "address out to start Ray for this sweep")


def run_all(ray, submit, jobs: list) -> list:
    """Submit each job (`submit(*job)` -> a Ray ref); each one's result, or the Ray error it ended with.
    Interrupted, while submitting or waiting, the tasks are cancelled (a KeyboardInterrupt in each
    trial, which ends its run KILLED) and waited for."""
    refs: list = []
    try:
        for job in jobs:
            refs.append(submit(*job))
        pending = refs
        while pending:  # in short waits: a blocking ray.wait sees a signal only when a task ends
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_S)
    except KeyboardInterrupt:  # (Ray raises its own, without the signal's name)
        for ref in refs:
            ray.cancel(ref)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
        end(ray, "colorize: interrupted; the trials' runs are KILLED with their last checkpoints: run the same "
                 "command again to resume them")
    results = []
    for ref in refs:
        try:
            results.append(ray.get(ref))
        except ray.exceptions.RayError as exc:
            results.append(exc)
    return results


def end(ray, line: str) -> None:
    """End the sweep with `line`, last: Ray's forwarding of the workers' output stops first."""
    ray.shutdown()
    raise SystemExit(line)


def settle(ray, results: list, labels: list[str]) -> list[JobReturn]:
    """The batch's JobReturns, or -- when a trial was lost or ended in one line -- that line, which
    ends the sweep (its parent run KILLED: colorize/tracking/parent_run.py)."""
    lost = [f"Ray task of {label} ended without a result: {type(r).__name__}" for label, r in zip(labels, results)
            if isinstance(r, ray.exceptions.RayError)]
    if lost:
        end(ray, lost_trials(lost))
    exited = [r.line for r in results if isinstance(r, Exited)]
    if exited:
        end(ray, exited[0])
    return results
