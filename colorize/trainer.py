"""The one training loop: batches from in-memory tensors, per-epoch metrics, early stopping."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from colorize.data.images import ImageSet, to_unit_range
from colorize.early_stopping import EarlyStopping
from colorize.metrics import margin_hits, mse_sum, to_uint8


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}, step {step}: loss={loss}")
        self.epoch, self.step, self.loss = epoch, step, loss


class StopTraining(Exception):
    """Raised by an epoch callback to end training after the current epoch (e.g. pruning)."""

    tag = "stopped"  # the MLflow tag set to "true" on a run stopped this way


class TimeBudget(StopTraining):
    """Training stopped because the next epoch would end past the time budget."""

    tag = "time_budget"

    def __init__(self, seconds: float, epoch: int) -> None:
        super().__init__(f"time budget of {seconds / 60:g} min reached after epoch {epoch}")


@dataclass
class DeviceImages:
    """An ImageSet on the training device: float inputs/targets in [-1, 1] (channels-last) and the
    targets' original bytes (for the 12-margin metric without re-quantising every batch)."""

    gray: Tensor
    rgb: Tensor
    rgb_bytes: Tensor

    @classmethod
    def from_set(cls, images: ImageSet, device: torch.device) -> "DeviceImages":
        if images.rgb is None:
            raise ValueError("training and validation images need colour targets")

        def prep(x: Tensor) -> Tensor:
            return to_unit_range(x.to(device)).contiguous(memory_format=torch.channels_last)

        rgb_bytes = images.rgb.to(device).contiguous(memory_format=torch.channels_last)
        return cls(prep(images.gray), prep(images.rgb), rgb_bytes)

    def __len__(self) -> int:
        return self.gray.shape[0]


EpochCallback = Callable[[int, dict], None]


@dataclass
class FitResult:
    best_epoch: int
    stopped_epoch: int
    history: list[dict] = field(default_factory=list)  # one metrics dict per epoch (epoch 1 first)
    stopped_by: Optional[StopTraining] = None  # set when an epoch callback ended training

    @property
    def best(self) -> dict:
        return self.history[self.best_epoch - 1]


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bfloat16 autocast for `precision="bf16"` (mixed precision), a no-op for "fp32"."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision={precision!r} is invalid: must be fp32 or bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceImages, batch_size: int = 500, precision: str = "fp32") -> dict:
    """MSE per value and 12-margin accuracy (per image, averaged) over a whole split."""
    model.eval()
    sse = torch.zeros((), dtype=torch.float64, device=data.gray.device)
    hits = torch.zeros((), dtype=torch.float64, device=data.gray.device)
    for start in range(0, len(data), batch_size):
        with autocast(data.gray.device, precision):
            pred = model(data.gray[start : start + batch_size]).float()
        target = data.rgb[start : start + batch_size]
        sse += mse_sum(pred, target)
        hits += margin_hits(to_uint8(pred), data.rgb_bytes[start : start + batch_size]).sum()
    values = data.rgb.numel()
    accuracy = float(hits) / values  # equal-size images: mean of per-image fractions
    return {"mse": float(sse) / values, "margin12_accuracy": accuracy, "margin12_error": 1.0 - accuracy}


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceImages,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
    progress: bool = True,
    hflip: bool = False,
    precision: str = "fp32",
) -> dict:
    """One pass over `data` in a seeded random order; loss and 12-margin error as trained.

    With `hflip`, each image of a batch is mirrored left-right with probability 1/2 (drawn from
    `generator`, so a resumed run mirrors the same images). `precision="bf16"` runs the forward
    pass under bfloat16 autocast (the loss is computed in float32).
    """
    model.train()
    n = len(data)
    order = torch.randperm(n, generator=generator).to(data.gray.device)
    sse = 0.0
    hits = torch.zeros((), dtype=torch.float64, device=data.gray.device)
    steps = math.ceil(n / batch_size)
    bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, disable=None if progress else True)
    for step in range(steps):
        idx = order[step * batch_size : (step + 1) * batch_size]
        x, y = data.gray.index_select(0, idx), data.rgb.index_select(0, idx)
        y_bytes = data.rgb_bytes.index_select(0, idx)
        if hflip:
            x, y, y_bytes = _mirror_some((x, y, y_bytes), generator)
        with autocast(x.device, precision):
            pred = model(x)
        loss = F.mse_loss(pred.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            bar.close()
            raise Diverged(epoch, step + 1, value)
        sse += value * y.numel()
        hits += margin_hits(to_uint8(pred.detach()), y_bytes).sum()
        bar.update()
    bar.close()
    values = data.rgb.numel()
    return {"mse": sse / values, "margin12_error": 1.0 - float(hits) / values}


def _mirror_some(batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, ...]:
    """Mirror (left-right) the same random half of the images in every tensor of `batch`."""
    n = batch[0].shape[0]
    flip = (torch.rand(n, generator=generator) < 0.5).to(batch[0].device).view(n, 1, 1, 1)
    return tuple(torch.where(flip, t.flip(3), t) for t in batch)


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped (after `epoch` epochs).

    Plain tensors, dicts and numbers only, so it loads with ``torch.load(weights_only=True)``.
    """

    epoch: int
    model: dict
    optimizer: dict
    generator: Tensor
    best_model: dict
    history: list
    early_stopping: Optional[dict] = None
    scheduler: Optional[dict] = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, state: dict) -> "TrainState":
        return cls(**state)


StateCallback = Callable[[TrainState], None]


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: DeviceImages,
    val: DeviceImages,
    *,
    max_epochs: int,
    batch_size: int,
    generator: torch.Generator,
    early_stopping: Optional[EarlyStopping] = None,
    eval_batch_size: int = 500,
    on_epoch: Optional[EpochCallback] = None,
    progress: bool = True,
    max_seconds: Optional[float] = None,
    resume: Optional[TrainState] = None,
    on_state: Optional[StateCallback] = None,
    scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
    hflip: bool = False,
    precision: str = "fp32",
) -> FitResult:
    """Train for up to `max_epochs`; afterwards `model` holds the best epoch's weights.

    With early stopping, the best epoch is the one with the lowest val MSE (by more than
    epsilon) and training stops after `patience` epochs without improvement; without it, the
    best epoch is the last one. `on_epoch(epoch, metrics)` is called after each epoch; it may
    raise :class:`StopTraining` to end training there (the best weights are still restored).
    With `max_seconds`, no epoch is started that would (at the last epoch's pace) end past it.
    `on_state(state)` gets a :class:`TrainState` after every epoch (before `on_epoch`); passing
    one back as `resume` continues from there exactly as if training had not stopped.
    A `scheduler` steps after every epoch (ReduceLROnPlateau on the val MSE). `hflip` mirrors a
    random half of every training batch (augmentation; validation is never mirrored).
    `precision` is "fp32" or "bf16" (mixed precision, for training and validation).
    """
    started_fit = time.perf_counter()
    stopped_by: Optional[StopTraining] = None
    history: list[dict] = []
    best_state = copy.deepcopy(model.state_dict())
    first = 1
    if resume is not None:
        model.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        generator.set_state(resume.generator)
        best_state = copy.deepcopy(resume.best_model)
        history = [dict(h) for h in resume.history]
        if early_stopping is not None and resume.early_stopping is not None:
            early_stopping.load_state_dict(resume.early_stopping)
        if scheduler is not None and resume.scheduler is not None:
            scheduler.load_state_dict(resume.scheduler)
        first = resume.epoch + 1
    epoch = first - 1
    for epoch in range(first, max_epochs + 1):
        if early_stopping and early_stopping.should_stop:  # resumed after the stopping epoch
            epoch -= 1
            break
        started = time.perf_counter()
        tr = train_epoch(model, optimizer, train, batch_size, generator, epoch, progress, hflip, precision)
        va = evaluate(model, val, eval_batch_size, precision)
        metrics = {
            "train_mse": tr["mse"],
            "train_margin12_error": tr["margin12_error"],
            "val_mse": va["mse"],
            "val_margin12_error": va["margin12_error"],
            "val_margin12_accuracy": va["margin12_accuracy"],
            "epoch_seconds": time.perf_counter() - started,
            "lr": optimizer.param_groups[0]["lr"],
        }
        history.append(metrics)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(va["mse"])
        elif scheduler is not None:
            scheduler.step()
        improved = early_stopping.step(epoch, va["mse"]) if early_stopping else True
        if improved:
            best_state = copy.deepcopy(model.state_dict())
        if on_state is not None:
            on_state(TrainState(
                epoch=epoch, model=model.state_dict(), optimizer=optimizer.state_dict(),
                generator=generator.get_state(), best_model=best_state, history=history,
                early_stopping=early_stopping.state_dict() if early_stopping else None,
                scheduler=scheduler.state_dict() if scheduler else None,
            ))
        if on_epoch is not None:
            try:
                on_epoch(epoch, metrics)
            except StopTraining as stop:
                stopped_by = stop
                break
        if early_stopping and early_stopping.should_stop:
            break
        if max_seconds and time.perf_counter() - started_fit + metrics["epoch_seconds"] > max_seconds:
            stopped_by = TimeBudget(max_seconds, epoch)
            break
    model.load_state_dict(best_state)
    best_epoch = early_stopping.best_epoch if early_stopping else epoch
    return FitResult(best_epoch=best_epoch, stopped_epoch=epoch, history=history, stopped_by=stopped_by)
