"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher, with two changes in how a batch ends.

Hydra's launcher waits for its jobs' results in order and raises the first job's error at once: a
trial cancelled with `scancel` (or killed by the node, the time limit, the OOM killer) ends the
sweep with submitit's traceback while the batch's other jobs are still running, and its parent run
is left RUNNING. Here every job of the batch is waited for first; then, if any ended without a
result, the sweep stops with one line naming each such SLURM job, its state and its trial, and its
parent run ends KILLED. The trial's run was ended KILLED by the job itself (SLURM sends SIGTERM
first, which colorize takes as an interrupt) with its `last.pt` kept, so the same command run again
continues the sweep and resumes that trial from its checkpoint (colorize/tracking/attempts.py).

Interrupted while it waits (Ctrl-C, or SIGTERM, which the sweep callback makes the same), Hydra's
launcher leaves with a traceback and its jobs run on, logging under a parent run already ended (and
an sbatch under way submits the batch after the sweep has gone). Here an interrupt during sbatch
waits for its job ids, then the batch's jobs are cancelled (each running trial ends its run KILLED
with its `last.pt`, as above), and the sweep ends in one line; the same command resumes it. The
other launchers stop their trials too: in-process ones with the sweep, Ray's by `ray.cancel`.

Submitting is Hydra's own (`BaseSubmititLauncher.launch`, hydra-submitit-launcher 1.4); only its
last line, ``[j.results()[0] for j in jobs]``, differs, so `launch` repeats the executor set-up
before it.

In the job, a preemption or the time limit drawing near (SLURM's USR2, `signal_delay_s` ahead) first
ends the trial's run KILLED with its `last.pt`, as Ctrl-C does, and only then lets submitit requeue
the job (`__call__`); the requeued job resumes the run. submitit's own handler would stop training
at any line -- inside a store call too -- with SystemExit (the run FAILED, so the requeued job
started it anew), or, out of requeues (`max_num_timeout`), with an exception (the same).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as HydraSlurmLauncher
from omegaconf import OmegaConf

from colorize.config.launcher import check_time_limit
from colorize.interrupts import install as install_interrupts, uninterrupted
from colorize.launch.base import lost_trials

log = logging.getLogger("colorize")
# the launcher options that go to submitit.AutoExecutor(...) rather than to update_parameters (Hydra's split)
EXECUTOR_INIT_KEYS = frozenset({"max_num_timeout", "python"})


class Preemption:
    """The requeue signal's handler in a trial's job: note it, then interrupt as SIGTERM does (at once,
    or when a store call under way returns)."""

    def __init__(self) -> None:
        self.interrupter = install_interrupts()
        self.signum = signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]  # submitit's
        self.requeue: Optional[Callable] = None  # submitit's handler: checkpoint, `scontrol requeue`, exit
        self.seen = False

    def __enter__(self) -> "Preemption":
        handler = signal.getsignal(self.signum)
        self.requeue = handler if callable(handler) else None
        signal.signal(self.signum, self)
        return self

    def __call__(self, signum: int, frame: Any) -> None:
        self.seen = True
        self.interrupter(signum, frame)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None or not (self.seen and self.requeue):
            return  # a trial that ended anyway keeps its result; another error goes on
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # `scontrol requeue` ends this step with SIGTERM
        try:
            self.requeue(self.signum, None)  # requeued: exits
        except Exception as exc:  # no requeue left (max_num_timeout): the sweep names the job in one line
            raise SystemExit(f"colorize: {exc}") from None


class SlurmLauncher(HydraSlurmLauncher):
    def __call__(self, *args: Any) -> JobReturn:
        """One trial, in its SLURM job (module docstring: a preemption or the time limit)."""
        with Preemption():
            return super().__call__(*args)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        check_time_limit(self.params)
        jobs: list = []
        try:
            try:
                # an interrupt during sbatch waits for its job ids: raised at once, it would leave sbatch
                # to submit the batch on its own, and the jobs to run with no one to cancel them
                with uninterrupted():
                    jobs = self._submit(job_overrides, initial_job_idx)
            except submitit.core.utils.FailedJobError as exc:  # sbatch refused the batch: its last line says why
                raise SystemExit(refused_batch(str(exc))) from None
            returns, lost = self._wait(jobs, job_overrides, initial_job_idx)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (the sweep callback makes it one)
            raise SystemExit(cancelled_batch(jobs, str(exc))) from None
        if lost:
            raise SystemExit(lost_trials(lost))
        return returns

    def _wait(self, jobs: list, job_overrides: Sequence[Sequence[str]],
              initial_job_idx: int) -> tuple[list[JobReturn], list[str]]:
        """Every job's result, in order, and a line for each job that ended without one."""
        import submitit

        returns, lost = [], []
        for idx, job in enumerate(jobs, start=initial_job_idx):
            try:
                returns.append(job.results()[0])
            except submitit.core.utils.UncompletedJobError:
                trial = " ".join(filter_overrides(job_overrides[idx - initial_job_idx]))
                lost.append(f"SLURM job {job.job_id} (trial #{idx}: {trial}) ended {job.state} without a result"
                            + said(job.stderr() or ""))
        return returns, lost

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """Hydra's submission as it is: one executor, one job array for the batch."""
        import submitit

        assert self.config is not None  # Hydra's setup, before any launch
        init_params = {f"{self._EXECUTOR}_{k}": v for k, v in self.params.items() if k in EXECUTOR_INIT_KEYS}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=self.params["submitit_folder"], **init_params)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in baseparams else f"{self._EXECUTOR}_{k}": v
                                      for k, v in self.params.items()
                                      if k not in EXECUTOR_INIT_KEYS and k != "submitit_folder"})
        log.info("Submitit '%s' sweep output dir : %s", self._EXECUTOR, self.config.hydra.sweep.dir)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        job_params: list[Any] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        return executor.map_array(self, *zip(*job_params))


def refused_batch(sbatch_says: str) -> str:
    """The one line for a batch sbatch refused (no cluster reached, a bad partition): nothing of it was
    submitted; the sweep's parent run ends KILLED, and the same command continues it."""
    lines = [line.strip() for line in sbatch_says.splitlines() if line.strip()]
    why = lines[-1] if lines else "no reason given"
    return (f"colorize: error: SLURM refused the batch ({why}): none of its trials was submitted; "
            "rerun the same command once sbatch works (the sweep continues)")


def cancelled_batch(jobs: Sequence[Any], signal_name: str) -> str:
    """Cancel the batch's unfinished jobs (`scancel`: a running trial takes its SIGTERM as an interrupt,
    and its run ends KILLED with its last.pt) and return the line the interrupted sweep ends with. A
    sweep interrupted is stopped on the cluster too, as with the other launchers; its parent run ends
    KILLED."""
    if not jobs:  # interrupted before sbatch took the batch (Ctrl-C reaches sbatch too)
        return (f"colorize: interrupted ({signal_name or 'SIGINT'}) before SLURM took the batch: none of its trials "
                "was submitted; run the same command again to continue the sweep")
    unreached, live = [], [job for job in jobs if not _done(job)]
    for job in live:
        try:
            job.cancel(check=True)
        except Exception as exc:  # scancel failed (the controller went away): say which jobs may live on
            lines = str(exc).strip().splitlines()
            unreached.append(f"{job.job_id} ({lines[-1] if lines else type(exc).__name__})")
    left = f"; scancel failed for {', '.join(unreached)}: cancel them by hand" if unreached else ""
    return (f"colorize: interrupted ({signal_name or 'SIGINT'}): the sweep's {len(live)} unfinished SLURM jobs are "
            f"cancelled, their trials' runs KILLED with their last checkpoints{left}; run the same command again "
            "to resume them")


def _done(job: Any) -> bool:
    """Whether a job has ended (its result file, else SLURM's state now); unknown counts as not."""
    try:
        return bool(job.done(force_check=True))
    except Exception:  # sacct failed: try to cancel it
        return False


def said(log: str) -> str:
    """What the trial's last one-line message in its job's log said, as `` (...)``; "" if none."""
    lines = [line[len("colorize: "):] for line in log.splitlines() if line.startswith("colorize: ")]
    return f" ({lines[-1].rstrip('.')})" if lines else ""
