"""Process-level settings for one training job: device, torch threads, seeds."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from colorize.errors import ColorizeError


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_num_threads(requested: int, parallel_jobs: int = 1) -> int:
    """`requested` if set, else this job's share of the available cores (at least 1)."""
    if requested > 0:
        return requested
    return max(1, available_cores() // max(1, parallel_jobs))


def parallel_jobs(n_jobs: object) -> int:
    """Jobs that run at once for a launcher's `n_jobs` (joblib semantics: -1 = all cores)."""
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    cores = available_cores()
    return min(cores, n_jobs) if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def select_device(choice: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cuda` without a GPU is an error."""
    choice = getattr(choice, "value", choice)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ColorizeError("trainer.device='cuda' is invalid: no CUDA device is available (use auto or cpu)")
    return torch.device(choice)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a dedicated generator for batch shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
