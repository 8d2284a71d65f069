"""Which jobs of a sweep train together as one fused group (`hydra/launcher=fused`).

The fusible keys are named here and nowhere else: keys that leave the model's shapes, the batches
and the loss alone, because each member of a group keeps its own copy of what they set (its seed
and so its initial weights, batch order and augmentations; its optimizer, lr schedule, early
stopping and EMA). Jobs whose configs agree on everything else fuse; any other difference (layers,
kernel size, width, batch norm, data, batch size, loss, precision, ...) makes a group of its own.
"""

from __future__ import annotations

import json
from typing import Sequence

from omegaconf import DictConfig, OmegaConf

from colorize import names

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

    task = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
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
