"""The `trainer` group: conf/trainer/default.yaml (how `fit` trains: colorize/training/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from colorize import names
from colorize.config.checks import Checked


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"  # bfloat16 autocast for forward passes; weights, loss and optimizer stay float32
    auto = "auto"  # bf16 where the device computes it natively, else fp32 (colorize/training/precision.py)


class CudaGraphs(str, Enum):
    auto = "auto"  # on for CUDA with fp32 (less, or eager, if a capture fails), off elsewhere
    on = "on"  # capture the whole step where it can, else the forward and backward; or fail in one line
    forward = "forward"  # capture the forward and backward only (as `on` did before the whole step)
    off = "off"


MONITORED = (names.VAL_MSE, names.VAL_ERROR, names.VAL_ACCURACY)


@dataclass
class EarlyStoppingConfig(Checked):
    GROUP = "trainer.early_stopping"
    enabled: bool = True
    epsilon: float = 5e-6  # the monitored value must improve by more than this to count
    patience: int = 5  # epochs without improvement before stopping
    monitor: str = names.VAL_MSE  # the val metric watched: val_mse | val_margin12_error | val_margin12_accuracy
    mode: str = "min"  # min: lower is better; max: higher is better

    def __post_init__(self) -> None:
        self.require(self.monitor in MONITORED, "monitor", "must be one of " + ", ".join(MONITORED))
        self.require(self.mode in ("min", "max"), "mode", "must be min or max")
        self.require(self.epsilon >= 0, "epsilon", "must be >= 0")
        self.require(self.patience >= 1, "patience", "must be >= 1")


@dataclass
class TrainerConfig(Checked):
    GROUP = "trainer"
    max_epochs: int = 100
    batch_size: int = 16
    seed: int = 0
    device: Device = Device.auto
    # 0: $OMP_NUM_THREADS if set, else the cores available to this job (divided among parallel jobs)
    num_threads: int = 0
    eval_batch_size: int = 500
    num_samples: int = 6  # val images in the qualitative figure
    resume: Optional[str] = None  # an interrupted run's id, or its last.pt: continue that run
    # time budget for training (0: none): the first epoch's pace fixes how many epochs N fit in it
    # (at most max_epochs), and the lr schedule spans those N epochs
    max_minutes: float = 0.0
    hflip: bool = False  # augmentation: mirror a random half of every training batch left-right
    shift: int = 0  # augmentation: translate each training image by up to this many pixels (reflection fills)
    # decay of an exponential moving average of the weights (0: off; e.g. 0.999): it validates and is saved
    ema: float = 0.0
    precision: Precision = Precision.fp32
    # benchmarks and debugging: wait on the device after every step, as the loop did before it kept
    # its sums on the device (same numbers, slower on a GPU)
    sync_every_step: bool = False
    # replay the step as CUDA graphs: the whole step (training/step_graphs.py) or the model's forward
    # and backward (training/graphs.py)
    cuda_graphs: CudaGraphs = CudaGraphs.auto
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def __post_init__(self) -> None:
        self.require(self.max_epochs >= 1, "max_epochs", "must be >= 1")
        self.require(self.batch_size >= 1, "batch_size", "must be >= 1")
        self.require(self.num_threads >= 0, "num_threads", "must be >= 0")
        self.require(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")
        self.require(self.num_samples >= 1, "num_samples", "must be >= 1")
        self.require(self.max_minutes >= 0, "max_minutes", "must be >= 0 (0: no limit)")
        self.require(0 <= self.shift <= 8, "shift", "must be 0..8 pixels")
        self.require(0 <= self.ema < 1, "ema", "must be in [0, 1) (0: off)")


OPTIONS = {"default": TrainerConfig}
