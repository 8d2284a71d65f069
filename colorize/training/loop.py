"""The one training loop: batches from in-memory tensors, per-epoch metrics, early stopping."""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from colorize import names
from colorize.data.images import ImageSet, to_unit_range
from colorize.training.augment import mirror_some, shift_some
from colorize.training.averaging import ema_with_warmup
from colorize.training.early_stopping import EarlyStopping
from colorize.training.losses import mse
from colorize.training.metrics import margin_hits, mse_sum, to_uint8
from colorize.training.schedules import EpochSchedule, ScheduleFactory

Loss = Callable[[Tensor, Tensor], Tensor]


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
        super().__init__(f"time budget of {seconds / 60:g} min overrun by more than {OVERRUN - 1:.0%} "
                         f"after epoch {epoch} (the machine got slower than its first epoch)")


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


@dataclass
class FitResult:
    best_epoch: int
    stopped_epoch: int
    history: list[dict] = field(default_factory=list)  # one metrics dict per epoch (epoch 1 first)
    stopped_by: Optional[StopTraining] = None  # set when an epoch callback ended training
    planned_epochs: int = 0  # N: the epochs the run (and its lr schedule) was laid out for

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
    loss: Loss = mse,
    shift: int = 0,
    ema: Optional[AveragedModel] = None,
) -> dict:
    """One pass over `data` in a seeded random order: the training loss, MSE and 12-margin error
    of the batches as trained.

    With `hflip`, each image of a batch is mirrored left-right with probability 1/2; with `shift`,
    translated by up to `shift` pixels each way (reflection fills the border). Both are drawn from
    `generator`, so a resumed run augments the same images. `precision="bf16"` runs the forward
    pass under bfloat16 autocast (the loss is computed in float32). `ema` (an AveragedModel) is
    updated after every step.
    """
    model.train()
    n = len(data)
    order = torch.randperm(n, generator=generator).to(data.gray.device)
    is_mse = getattr(loss, "func", loss) is mse and not getattr(loss, "keywords", None)
    sse, loss_sum = 0.0, 0.0
    sse_other = torch.zeros((), dtype=torch.float64, device=data.gray.device)  # MSE when training on another loss
    hits = torch.zeros((), dtype=torch.float64, device=data.gray.device)
    steps = math.ceil(n / batch_size)
    bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, disable=None if progress else True)
    for step in range(steps):
        idx = order[step * batch_size : (step + 1) * batch_size]
        x, y = data.gray.index_select(0, idx), data.rgb.index_select(0, idx)
        y_bytes = data.rgb_bytes.index_select(0, idx)
        if hflip:
            x, y, y_bytes = mirror_some((x, y, y_bytes), generator)
        if shift:
            x, y, y_bytes = shift_some((x, y, y_bytes), generator, shift)
        with autocast(x.device, precision):
            pred = model(x)
        value_t = loss(pred.float(), y)
        optimizer.zero_grad(set_to_none=True)
        value_t.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        value = value_t.item()
        if not math.isfinite(value):
            bar.close()
            raise Diverged(epoch, step + 1, value)
        loss_sum += value * y.numel()
        if is_mse:  # the loss is the MSE: no second pass over the batch
            sse += value * y.numel()
        else:
            sse_other += mse_sum(pred.detach().float(), y)
        hits += margin_hits(to_uint8(pred.detach()), y_bytes).sum()
        bar.update()
    bar.close()
    values = data.rgb.numel()
    return {"mse": (sse + float(sse_other)) / values, "loss": loss_sum / values,
            "margin12_error": 1.0 - float(hits) / values}


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
    budget_epochs: Optional[int] = None  # N fixed by the time budget: a resumed run keeps it
    ema: Optional[dict] = None  # the averaged weights (trainer.ema)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, state: dict) -> "TrainState":
        return cls(**state)


class Callback:
    """The one protocol of what watches training (MLflow metrics, checkpoints, the console log, Optuna
    reporting): override the hooks you need. Built from the `callbacks` config group, given the job's
    objects by `setup`, then called by `fit`."""

    def setup(self, job: Any) -> None:
        """The job's run, model, config and output folder (colorize.job.Job), before training starts."""

    def on_plan(self, epochs: int, measured: bool) -> None:
        """The run's length N: known at the start, or `measured` from the first epoch's pace (a time
        budget), then called after epoch 1 and before its `on_epoch_end`."""

    def on_epoch_end(self, epoch: int, metrics: dict, state: TrainState) -> None:
        """After every epoch, in the callbacks' order; may raise StopTraining to end training here."""

    def teardown(self) -> None:
        """After training, however it ended (called by the job)."""


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

# A budgeted run trains the N epochs its first epoch promised; only if the machine gets this much
# slower than that promise does the budget cut it short (the run is then tagged time_budget).
OVERRUN = 1.2


def epochs_in_budget(budget_seconds: float, first_epoch_seconds: float, max_epochs: int) -> int:
    """How many epochs of `first_epoch_seconds` fit in the budget (at least 1, at most `max_epochs`)."""
    return max(1, min(max_epochs, int(budget_seconds // max(first_epoch_seconds, 1e-9))))


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: DeviceImages,
    val: DeviceImages,
    generator: torch.Generator,
    options: FitOptions,
    callbacks: Sequence[Callback] = (),
    resume: Optional[TrainState] = None,
) -> FitResult:
    """Train for up to `options.max_epochs`; afterwards `model` holds the best epoch's weights.

    With early stopping, the best epoch is the one with the lowest val MSE (by more than
    epsilon) and training stops after `patience` epochs without improvement; without it, the
    best epoch is the last one. Each callback's `on_epoch_end(epoch, metrics, state)` runs after
    each epoch, in order; one may raise :class:`StopTraining` to end training there (the best
    weights are still restored). `state` is a :class:`TrainState`: passing one back as `resume`
    continues from there exactly as if training had not stopped.

    The run's length N is `max_epochs`; with `max_seconds` (a time budget) it is the number of
    epochs that fit the budget at the first epoch's pace (never more than `max_epochs`), fixed
    after epoch 1 and kept in the :class:`TrainState`, so `max_epochs=N` without a budget replays
    the run; callbacks hear N through `on_plan`. `schedule(optimizer, N)` builds the lr scheduler,
    stepped after every epoch (ReduceLROnPlateau on the val MSE). A schedule that spans the run
    (:class:`EpochSchedule`) is never cut short by early stopping, which then only chooses the best
    epoch to restore. `hflip` mirrors a random half of every training batch (augmentation;
    validation is never mirrored). `precision` is "fp32" or "bf16" (mixed precision, for training
    and validation).
    """
    o = options
    max_epochs, max_seconds, early_stopping, schedule = o.max_epochs, o.max_seconds, o.early_stopping, o.schedule
    started_fit = time.perf_counter()
    stopped_by: Optional[StopTraining] = None
    history: list[dict] = []
    # the EMA of the weights (if any) is what validates, early-stops and is kept as the best model
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(o.ema), use_buffers=True) if o.ema else None
    judged = ema.module if ema is not None else model
    best_state = copy.deepcopy(judged.state_dict())
    first = 1
    # N: known now without a budget (or when resuming a budgeted run), else after epoch 1
    planned: Optional[int] = None if max_seconds else max_epochs
    if resume is not None:
        planned = resume.budget_epochs or max_epochs
    # built before the optimizer's state is restored: a new scheduler resets the lr it schedules
    scheduler = schedule(optimizer, planned) if schedule is not None and planned is not None else None
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
        if ema is not None and resume.ema is not None:
            ema.load_state_dict(resume.ema)
        first = resume.epoch + 1
    if planned is not None:
        for callback in callbacks:
            callback.on_plan(planned, measured=False)
    epoch = first - 1
    while epoch < (planned or max_epochs):
        if early_stopping and early_stopping.should_stop and not isinstance(scheduler, EpochSchedule):
            break  # resumed after the stopping epoch
        epoch += 1
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the lr this epoch trains with
        tr = train_epoch(model, optimizer, train, o.batch_size, generator, epoch, o.progress, o.hflip, o.precision,
                         o.loss, o.shift, ema)
        va = evaluate(judged, val, o.eval_batch_size, o.precision)
        metrics = {
            names.TRAIN_LOSS: tr["loss"],
            names.TRAIN_MSE: tr["mse"],
            names.TRAIN_ERROR: tr["margin12_error"],
            names.VAL_MSE: va["mse"],
            names.VAL_ERROR: va["margin12_error"],
            names.VAL_ACCURACY: va["margin12_accuracy"],
            names.EPOCH_SECONDS: time.perf_counter() - started,
            names.LR: lr,
        }
        history.append(metrics)
        if planned is None:  # budgeted: the first epoch's pace fixes N, and the schedule spans it
            planned = epochs_in_budget(max_seconds, time.perf_counter() - started_fit, max_epochs)
            with warnings.catch_warnings():  # torch warns of a scheduler born after optimizer steps
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                scheduler = schedule(optimizer, planned) if schedule is not None else None
                _step(scheduler, va["mse"])
            for callback in callbacks:
                callback.on_plan(planned, measured=True)
        else:
            _step(scheduler, va["mse"])
        improved = early_stopping.step(epoch, metrics[early_stopping.monitor]) if early_stopping else True
        if improved:
            best_state = copy.deepcopy(judged.state_dict())
        state = TrainState(
            epoch=epoch, model=model.state_dict(), optimizer=optimizer.state_dict(),
            generator=generator.get_state(), best_model=best_state, history=history,
            early_stopping=early_stopping.state_dict() if early_stopping else None,
            scheduler=scheduler.state_dict() if scheduler else None,
            budget_epochs=planned if max_seconds else None,
            ema=ema.state_dict() if ema is not None else None,
        )
        try:
            for callback in callbacks:
                callback.on_epoch_end(epoch, metrics, state)
        except StopTraining as stop:
            stopped_by = stop
            break
        if early_stopping and early_stopping.should_stop and not isinstance(scheduler, EpochSchedule):
            break
        elapsed = time.perf_counter() - started_fit
        if max_seconds and epoch < planned and elapsed + metrics[names.EPOCH_SECONDS] > OVERRUN * max_seconds:
            stopped_by = TimeBudget(max_seconds, epoch)
            break
    model.load_state_dict(best_state)
    best_epoch = early_stopping.best_epoch if early_stopping else epoch
    return FitResult(best_epoch=best_epoch, stopped_epoch=epoch, history=history, stopped_by=stopped_by,
                     planned_epochs=planned or epoch)


def _step(scheduler: Optional[torch.optim.lr_scheduler.LRScheduler], val_mse: float) -> None:
    """Step a scheduler after an epoch (ReduceLROnPlateau watches the val MSE)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_mse)
    elif scheduler is not None:
        scheduler.step()
