"""Time one epoch (train + validation on the full faces) of every configuration of the study's grid
presets, and the largest `trainer.max_epochs` at which the grid presets fit a wall-time target.

    python -m benchmarks --only study        # then: python -m colorize.study data=faces trainer.max_epochs=<that>

The bound is conservative: early stopping ends most runs before max_epochs and the diverging lr=1
trials stop in their first epoch, so the real study is shorter. Per-trial fixed costs (~1 s with the
data cache) are added.
"""

from __future__ import annotations

import itertools
import os
import time

import torch
from hydra import compose, initialize_config_module

from benchmarks.common import Row
from colorize.config import build, register_configs
from colorize.data.faces import load_faces
from colorize.models import describe
from colorize.paths import CONFIG_MODULE, faces_root
from colorize.tracking.progress import sweep_axes
from colorize.training.device_images import DeviceImages
from colorize.training.epoch import Diverged, evaluate, train_epoch
from colorize.training.options import FitOptions
from colorize.training.runtime import seed_everything

GRID_PRESETS = ("layers", "kernel_size", "kernels", "lr", "further")
FIXED_COST_S = 1.1  # per trial, `--only trial` with the data cache on
TARGET_MIN = float(os.environ.get("COLORIZE_STUDY_MINUTES", "100"))


def grid(preset: str) -> list[list[str]]:
    """Every configuration of a preset, as override lists for `hydra.compose`."""
    register_configs()
    with initialize_config_module(CONFIG_MODULE):
        params = compose("train", overrides=[f"sweep={preset}"], return_hydra_config=True).hydra.sweeper.params
    return [list(combo) for combo in itertools.product(*sweep_axes([], params))]


def study_epochs(repeats: int) -> list[Row]:
    """One timed epoch per configuration (`repeats` is not used: the figure is a budget estimate)."""
    splits = load_faces(str(faces_root()))
    cpu = torch.device("cpu")
    train, val = DeviceImages.from_set(splits.train, cpu), DeviceImages.from_set(splits.val, cpu)
    rows, total, n_trials = [], 0.0, 0
    for preset in GRID_PRESETS:
        preset_s = 0.0
        for combo in grid(preset):
            n_trials += 1
            with initialize_config_module(CONFIG_MODULE):
                cfg = compose("train", overrides=[f"sweep={preset}", "data=faces", *combo])
            generator = seed_everything(0)
            model = build(cfg.model).to(memory_format=torch.channels_last)
            optimizer = build(cfg.optimizer)(model.parameters())
            start = time.perf_counter()
            try:
                options = FitOptions(1, cfg.trainer.batch_size, progress=False)
                train_epoch(model, optimizer, train, generator, 1, options)
            except Diverged:  # diverged (lr 1): the trial stops in its first epoch all the same
                pass
            evaluate(model, val)
            seconds = time.perf_counter() - start
            preset_s += seconds
            rows.append(Row("study", f"{preset}: {describe(cfg.model)} lr{cfg.optimizer.lr:g}", seconds, "s/epoch"))
        rows.append(Row("study", f"{preset}: one epoch of every configuration", preset_s, "s"))
        total += preset_s
    budget = TARGET_MIN * 60 - n_trials * FIXED_COST_S
    rows.append(Row("study", "grid presets: one epoch of every configuration", total, "s", note=f"{n_trials} trials"))
    rows.append(Row("study", f"largest trainer.max_epochs within {TARGET_MIN:g} min", budget // total, "epochs",
                    note="an upper bound on the wall time: early stopping ends most runs sooner"))
    return rows
