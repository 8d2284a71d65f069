"""How a run trains (`FitOptions`): everything `fit` needs besides the objects it trains, shared by
the loop, its epochs and its batches."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from torch import Tensor

from colorize.training.early_stopping import EarlyStopping
from colorize.training.losses import mse
from colorize.training.schedules import ScheduleFactory

Loss = Callable[[Tensor, Tensor], Tensor]


@dataclass
class FitOptions:
    """How to train: everything `fit` needs besides the objects it trains."""

    max_epochs: int
    batch_size: int
    eval_batch_size: int = 500
    max_seconds: Optional[float] = None  # a time budget: fixes N after the first epoch
    early_stopping: Optional[EarlyStopping] = None
    schedule: Optional[ScheduleFactory] = None  # schedule(optimizer, N): the lr scheduler, built once N is known
    hflip: bool = False
    shift: int = 0  # random translations of up to this many pixels (reflection padding)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: none); it validates and is saved
    loss: Loss = mse  # what training minimises (train/val MSE and 12-margin metrics are logged whatever it is)
    precision: str = "fp32"  # fp32 | bf16
    progress: bool = True
    clock: Callable[[], float] = time.perf_counter  # seconds; tests inject one (the time budget reads it)
    sync_every_step: bool = False  # read the loss back after every step, as the loop did (for benchmarks)
    cuda_graphs: str = "off"  # auto | on | forward: replay the step as CUDA graphs (training/loop.py: capture_for)
