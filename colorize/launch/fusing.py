"""Which jobs of a sweep train together as one fused group (`hydra/launcher=fused`), and what its
`auto` settings resolve to on each device.

The fusible keys are named here and nowhere else: keys that leave the model's shapes, the batches
and the loss alone, because each member of a group keeps its own copy of what they set (its seed
and so its initial weights, batch order and augmentations; its optimizer, lr schedule, early
stopping and EMA). Jobs whose configs agree on everything else fuse; any other difference (layers,
kernel size, width, batch norm, data, batch size, loss, precision, ...) makes a group of its own.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

from omegaconf import DictConfig

from colorize import names
from colorize.config.build import as_dict
from colorize.cores import auto_jobs

FUSIBLE = (
    names.SEED, names.MAX_EPOCHS, "trainer.early_stopping", "trainer.ema", "trainer.resume",
    "optimizer", "scheduler", "pruner", "tracking.run_name", names.TRIAL_KEY,
)


def fusible(key: str) -> bool:
    """Whether a flat config key (``optimizer.lr``) may differ within a fused group."""
    return any(key == k or key.startswith(k + ".") for k in FUSIBLE)


def shape_key(cfg: DictConfig) -> str:
    """What jobs of one group must share: the job's config without `hydra` and the fusible keys."""
    from colorize.tracking.store import flatten  # (the flat keys that runs' params use)

    task = as_dict(cfg, resolve=False, enum_to_str=True)
    task.pop("hydra", None)
    kept = {k: v for k, v in flatten(task).items() if not fusible(k)}
    return json.dumps(kept, sort_keys=True, default=str)


def groups(configs: Sequence[DictConfig], max_size: int) -> list[list[int]]:
    """The jobs' indices in fusible groups of at most `max_size` (0: no limit), each group in the
    jobs' order, groups in the order of their first job."""
    by_key: dict[str, list[list[int]]] = {}
    for i, cfg in enumerate(configs):
        chunks = by_key.setdefault(shape_key(cfg), [[]])
        if max_size and len(chunks[-1]) >= max_size:
            chunks.append([])
        chunks[-1].append(i)
    return sorted((chunk for chunks in by_key.values() for chunk in chunks), key=lambda g: g[0])


CPU_GROUP = 16  # `auto` on a CPU: groups of up to 16, one at a time


def auto_settings(device: str, cores: int, n_jobs: Optional[int], max_group: Optional[int]) -> tuple[int, int]:
    """(n_jobs, max_group) with `None` (auto) replaced by what was measured fastest on `device`
    ("cuda" or "cpu"): on CUDA min(16, cores) single trials at once (each a CUDA graph), on a CPU one
    group of up to 16 at a time."""
    jobs = auto_jobs(device == "cuda", cores) if n_jobs is None else n_jobs
    if max_group is None:
        max_group = 1 if device == "cuda" else CPU_GROUP
    return jobs, max_group


def job_device(config: DictConfig) -> str:
    """The device type a job will train on ("cuda" or "cpu"), as the trainer will choose it."""
    from colorize.training.runtime import select_device

    return select_device(config.trainer.device).type
