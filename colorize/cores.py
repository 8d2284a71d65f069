"""The CPU cores a process may use, and how many jobs a launcher's `n_jobs` runs at once: read by
the config's `${colorize.parallel_jobs:}` resolver and by each job's thread count."""

from __future__ import annotations

import os


def available_cores(env: dict[str, str] | None = None) -> int:
    """CPU cores this process may run on: its affinity mask (not the machine's total), capped by the
    CPUs SLURM gave its task (a cluster without task/affinity or cgroups leaves the mask whole, and
    two 1-CPU trials on one node would each start a thread per core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    slurm = (os.environ if env is None else env).get("SLURM_CPUS_PER_TASK", "")
    return min(cores, int(slurm)) if slurm.isdigit() and int(slurm) > 0 else cores


# trials at once on one CUDA device when a launcher's n_jobs is auto: measured on a lent H200 (docs/gpu)
CUDA_AT_ONCE = 16


def auto_jobs(cuda: bool, cores: int) -> int:
    """A launcher's `n_jobs: null` (auto): min(16, cores) single trials at once on CUDA, else 1."""
    return min(CUDA_AT_ONCE, max(1, cores)) if cuda else 1


def parallel_jobs(n_jobs: object) -> int:
    """Jobs that run at once for a launcher's `n_jobs` (joblib semantics: -1 = all cores; None, the
    fused launcher's auto: `auto_jobs` where CUDA is present)."""
    if n_jobs is None:
        import torch  # only for auto: the resolver stays light for every other launcher

        return auto_jobs(torch.cuda.is_available(), available_cores())
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    cores = available_cores()
    return min(cores, n_jobs) if n_jobs > 0 else max(1, cores + 1 + n_jobs)
