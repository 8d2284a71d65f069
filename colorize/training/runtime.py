"""Process-level settings for one training job: device, torch threads, seeds."""

from __future__ import annotations

import os
import random
from typing import Mapping

import numpy as np
import torch

from colorize.cores import available_cores, parallel_jobs
from colorize.errors import ColorizeError, invalid

__all__ = ["parallel_jobs", "resolve_num_threads", "seed_everything", "select_device"]


def resolve_num_threads(requested: int, parallel_jobs: int = 1, env: Mapping[str, str] | None = None) -> int:
    """`requested` if set; else `$OMP_NUM_THREADS` if set (torch's own default honours it, and joblib sets
    it in its workers); else this job's share of the available cores (at least 1)."""
    if requested > 0:
        return requested
    omp = (os.environ if env is None else env).get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp:  # OpenMP's syntax: the first of a comma-separated list is the outermost level's
        if not omp.isdigit() or int(omp) < 1:
            raise ColorizeError(f"OMP_NUM_THREADS={omp!r} is invalid: must be a positive integer "
                                "(or unset: each job then takes its share of the cores)")
        return int(omp)
    return max(1, available_cores() // max(1, parallel_jobs))


def select_device(choice: str, setting: str = "trainer.device") -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cuda` without a GPU is an error naming `setting`."""
    choice = getattr(choice, "value", choice)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise invalid(setting, choice, "no CUDA device is available (use auto or cpu)")
    return torch.device(choice)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a dedicated generator for batch shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
