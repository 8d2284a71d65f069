"""`hydra/launcher=fused`: a Hydra launcher that trains a sweep's fusible jobs as one stacked model.

It takes each batch of jobs the sweeper hands it (a grid's, or an Optuna batch of `n_jobs` trials),
groups those that differ only in fusible keys (colorize/launch/fusing.py: seed, optimizer, lr
schedule, early stopping, ...), and trains each group in one process with `fit_group`: one grouped
forward and backward per step for all its members (colorize/training/fused.py), while each member
keeps its own MLflow run (tagged `fused_group`, `fused_size`), checkpoints, samples, early stopping,
divergence and Optuna pruning. Groups run one after another, or `n_jobs` at a time in joblib's loky
processes (as Hydra's joblib launcher runs jobs), all on the one device; an interrupt there reaches
each group and is waited for (colorize/launch/worker_interrupts.py).

What it buys depends on the device, and `auto` (both settings' default) chooses what was measured
fastest there (`fusing.auto_settings`). On a CPU, groups of up to 16, one at a time: the work is the same
arithmetic either way (4 fused trials ran at 0.88x the trials per hour of the same 4 one after
another: docs/guide/sweeps.md), but a group pays the process's start-up once. On CUDA, no fusing
and 16 trials at once: on a lent H200 (docs/gpu/README.md, 2026-12-04) a fused step of 8 members
took 17.9 ms against 2.3 ms for one trial's, no gain per trial (each member still launches its own
optimizer step and sums), while 16 single trials at once, each replayed as a CUDA graph, ran at
7.4x the eager baseline's trials per hour (17x its epochs per second once started). The numbers are
the same as separate trials' to float rounding either way.

Hydra's own `run_job` runs one task function per job; a group needs all its jobs' configs at once,
so `_Member` repeats its bookkeeping for each: the job's folder, `.hydra/` configs, and the
callbacks' `on_job_start` / `on_job_end`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from colorize.config.launcher import count_error
from colorize.cores import available_cores
from colorize.launch.base import SweepLauncher
from colorize.launch.fusing import auto_settings, groups, job_device

log = logging.getLogger("colorize")

GROUP_TAG, SIZE_TAG = "fused_group", "fused_size"


class _Member:
    """One job of a group: its composed config, folder and JobReturn, as Hydra's run_job makes them."""

    def __init__(self, config: DictConfig) -> None:
        HydraConfig.instance().set_config(config)  # the job's own ${hydra:...} while its folder resolves
        out = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(out.resolve())
        HydraConfig.instance().set_config(config)
        self.config = config
        self.task = copy.deepcopy(config)  # the task's config: the job's without `hydra` (as Hydra's run_job)
        with read_write(self.task), open_dict(self.task):
            del self.task["hydra"]
        self.ret = JobReturn(overrides=list(config.hydra.overrides.task), cfg=self.task,
                             hydra_cfg=OmegaConf.create({"hydra": config.hydra}), working_dir=os.getcwd(),
                             task_name=config.hydra.job.name)
        out.mkdir(parents=True, exist_ok=True)
        if config.hydra.output_subdir is not None:
            saved = out / str(config.hydra.output_subdir)
            saved.mkdir(parents=True, exist_ok=True)
            for name, node in (("config.yaml", self.task), ("hydra.yaml", self.ret.hydra_cfg),
                               ("overrides.yaml", config.hydra.overrides.task)):
                (saved / name).write_text(OmegaConf.to_yaml(node))


def run_group(hydra_context: HydraContext, members: Sequence[_Member],
              task_function: Optional[TaskFunction]) -> list[JobReturn]:
    """Train one group's jobs together, in this process."""
    from colorize.interrupts import install as install_interrupts

    install_interrupts(replace=False)  # SIGTERM as Ctrl-C, unless another handler (submitit's) has it
    return _train_group(hydra_context, members, task_function, in_worker=False)


def run_group_in_worker(hydra_context: HydraContext, members: Sequence[_Member], singleton_state: Any,
                        folder: Path, index: int) -> tuple[int, list[JobReturn], Optional[str]]:
    """Train group `index`'s jobs together in a loky worker: `index`, their returns, and the name of
    the interrupt that stopped them, if one did. An interrupt ends the group's runs KILLED and
    returns (its jobs FAILED with the KeyboardInterrupt) rather than raising, so that joblib waits
    for the other workers instead of killing them (colorize/launch/worker_interrupts.py)."""
    from colorize.launch.worker_interrupts import worker_group

    setup_globals()
    Singleton.set_state(singleton_state)
    try:
        with worker_group(folder) as start:  # not started if the sweep was interrupted meanwhile
            return index, (_train_group(hydra_context, members, None, in_worker=True) if start else
                           [m.ret for m in members]), None
    except KeyboardInterrupt as exc:
        return index, _failed(members, exc), str(exc) or "SIGINT"


def _train_group(hydra_context: HydraContext, members: Sequence[_Member], task_function: Optional[TaskFunction],
                 in_worker: bool) -> list[JobReturn]:
    from colorize.job import run_jobs
    from colorize.launch.context import errors_as_lines, job_context

    nums = ",".join(str(m.config.hydra.job.num) for m in members)
    tags = {GROUP_TAG: "g" + hashlib.sha1(nums.encode()).hexdigest()[:10], SIZE_TAG: len(members)}
    first = members[0].config  # the group's log goes to its first job's folder
    configure_log(first.hydra.job_logging, first.hydra.verbose,
                  execution_whitelist=hydra_context.execution_whitelist)
    callbacks = hydra_context.callbacks
    for m in members:
        # (a loky worker is sent no task function, and colorize's callbacks use none)
        callbacks.on_job_start(config=m.config, task_function=task_function)  # type: ignore[arg-type]
    try:
        with errors_as_lines(interrupts=not in_worker):
            results = run_jobs([m.task for m in members],
                               [job_context(m.task, m.config.hydra, tags) for m in members])
        for m, result in zip(members, results):
            m.ret.return_value, m.ret.status = result.objective, JobStatus.COMPLETED
    except Exception as exc:  # as Hydra's run_job: the jobs FAILED, the sweeper decides what follows
        _failed(members, exc)
    finally:
        for m in members:
            callbacks.on_job_end(config=m.config, job_return=m.ret)
    return [m.ret for m in members]


def _failed(members: Sequence[_Member], exc: BaseException) -> list[JobReturn]:
    """The members' returns, each FAILED with `exc` (as Hydra's run_job records an error)."""
    for m in members:
        m.ret.return_value, m.ret.status = exc, JobStatus.FAILED
    return [m.ret for m in members]


@dataclass
class FusedLauncherConf:
    """`hydra/launcher=fused`: `max_group` jobs at most in one model (0: no limit), `n_jobs` groups at
    once; null (auto) for either: what was measured fastest on the jobs' device (`fusing.auto_settings`)."""

    _target_: str = "colorize.launch.fused_launcher.FusedLauncher"
    n_jobs: Optional[int] = None
    max_group: Optional[int] = None


ConfigStore.instance().store(group="hydra/launcher", name="fused", node=FusedLauncherConf, provider="colorize")


class FusedLauncher(SweepLauncher):
    """Groups a batch's fusible jobs; trains each group as one model; `n_jobs` groups at a time."""

    def __init__(self, n_jobs: Optional[int] = None, max_group: Optional[int] = None) -> None:
        why = count_error("launcher", {"_target_": "FusedLauncher", "n_jobs": n_jobs, "max_group": max_group})
        if why:  # (a multirun refused these as it started: colorize.config.launcher)
            raise ValueError(why)
        super().__init__()
        self.n_jobs, self.max_group = n_jobs, max_group

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        self.open_sweep()
        configs = [self.job_config(idx, o, str(idx)) for idx, o in enumerate(job_overrides, start=initial_job_idx)]
        members = [_Member(config) for config in configs]
        n_jobs, max_group = auto_settings(job_device(configs[0]), available_cores(), self.n_jobs, self.max_group)
        batches = groups(configs, max_group)
        log.info("fused launcher: %d jobs in %d groups of %s, %d at a time", len(configs), len(batches),
                 "/".join(str(len(g)) for g in batches), n_jobs)
        for g in batches:
            log.info("\tgroup %s", "; ".join(" ".join(filter_overrides(job_overrides[i])) or "(defaults)" for i in g))
        returns = self._run([[members[i] for i in g] for g in batches], n_jobs)
        by_job = {i: ret for g, rets in zip(batches, returns) for i, ret in zip(g, rets)}
        return [by_job[i] for i in range(len(configs))]

    def _run(self, batches: list[list[_Member]], n_jobs: int) -> list[list[JobReturn]]:
        if n_jobs == 1 or len(batches) == 1:
            return [run_group(self.hydra_context, b, self.task_function) for b in batches]
        from joblib import Parallel, delayed

        from colorize.launch.worker_interrupts import forwarding

        state, folder = Singleton.get_state(), Path(str(self.config.hydra.sweep.dir))
        returns: dict[int, list[JobReturn]] = {}
        with forwarding(folder) as forwarder:  # an interrupt waits for the workers' groups to end their runs
            try:
                for i, rets, interrupt in Parallel(n_jobs=min(n_jobs, len(batches)), backend="loky",
                                                   return_as="generator_unordered")(  # each as it ends
                        delayed(run_group_in_worker)(self.hydra_context, b, state, folder, i)
                        for i, b in enumerate(batches)):
                    returns[i] = rets
                    if interrupt:  # a worker interrupted on its own: the sweep stops, as in one process
                        forwarder.stop(interrupt)
            except Exception:
                if forwarder.signal is None:
                    raise  # (a worker lost while the groups stop: the interrupt is what to say)
        if forwarder.signal is not None:
            raise KeyboardInterrupt(forwarder.signal)
        return [returns[i] for i in range(len(batches))]

