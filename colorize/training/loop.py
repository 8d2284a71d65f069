"""The one training loop: batches from in-memory tensors, per-epoch metrics, early stopping."""

from __future__ import annotations

import copy
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor, nn
from tqdm import tqdm

from colorize import names
from colorize.data.images import ImageSet, to_unit_range
from colorize.training.augment import mirror_some, shift_some
from colorize.training.averaging import WeightAverage
from colorize.training.fused import StackedForward
from colorize.training.graphs import capture
from colorize.training.early_stopping import EarlyStopping
from colorize.training.losses import mse
from colorize.training.metrics import margin_hits, mse_sum, to_uint8
from colorize.training.schedules import EpochSchedule, ScheduleFactory

Loss = Callable[[Tensor, Tensor], Tensor]


class Diverged(RuntimeError):
    """The training loss, or a validation metric, became NaN or infinite."""

    def __init__(self, epoch: int, step: Optional[int], loss: float, what: str = "loss") -> None:
        where = f"epoch {epoch}, step {step}" if step is not None else f"epoch {epoch}"
        super().__init__(f"training diverged at {where}: {what}={loss}")
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


@dataclass
class EpochSums:
    """What an epoch accumulates on the device, step by step, and reads back once at its end: the
    loop never waits on the host mid-epoch (no `.item()` per step)."""

    loss: Tensor  # sum over values of the training loss (float64)
    sse: Tensor  # sum of squared errors (float64)
    hits: Tensor  # values within the 12 margin (float64)
    bad_step: Tensor  # the first step (1-based) whose loss was not finite; -1: none
    bad_value: Tensor  # that step's loss

    @classmethod
    def zeros(cls, device: torch.device) -> "EpochSums":
        def zero(dtype: torch.dtype) -> Tensor:
            return torch.zeros((), dtype=dtype, device=device)

        return cls(zero(torch.float64), zero(torch.float64), zero(torch.float64),
                   torch.full((), -1, dtype=torch.int64, device=device), zero(torch.float32))

    def read(self) -> tuple[float, float, float, int, float]:
        """(loss, sse, hits, bad_step, bad_value) on the host: the epoch's one sync."""
        values = torch.stack([self.loss, self.sse, self.hits, self.bad_step.double(), self.bad_value.double()])
        loss, sse, hits, bad_step, bad_value = values.tolist()
        return loss, sse, hits, int(bad_step), bad_value


def is_plain_mse(loss: Loss) -> bool:
    """Whether `loss` is the MSE itself (then the MSE needs no second pass over the batch)."""
    return getattr(loss, "func", loss) is mse and not getattr(loss, "keywords", None)


def _add(sums: EpochSums, value: Tensor, pred: Tensor, y: Tensor, y_bytes: Tensor, step: int,
         options: "FitOptions") -> None:
    """Add one step's loss, MSE, hits and not-finite flag to `sums`, on the device."""
    weighted = value.double() * y.numel()
    sums.loss += weighted
    sums.sse += weighted if is_plain_mse(options.loss) else mse_sum(pred.float(), y)
    sums.hits += margin_hits(to_uint8(pred), y_bytes).sum()
    first_bad = ~torch.isfinite(value) & (sums.bad_step < 0)
    sums.bad_step = torch.where(first_bad, step, sums.bad_step)
    sums.bad_value = torch.where(first_bad, value, sums.bad_value)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[Tensor, Tensor, Tensor],
               options: "FitOptions", ema: Optional[WeightAverage], sums: EpochSums, step: int,
               forward: Optional[Callable[[Tensor], Tensor]] = None) -> None:
    """One optimisation step on (gray, colour, colour bytes); its loss, MSE, hits and a not-finite
    flag are added to `sums` on the device. `forward` (a captured CUDA graph) stands in for `model`."""
    x, y, y_bytes = batch
    with autocast(x.device, options.precision):
        pred = (forward or model)(x)
    value = options.loss(pred.float(), y)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    if ema is not None:
        ema.update_parameters(model)
    value, pred = value.detach(), pred.detach()
    if options.sync_every_step:
        value.item()  # waits for the device: the eager loop's per-step cost, kept measurable
    _add(sums, value, pred, y, y_bytes, step, options)


def group_step(runs: Sequence["FitProgress"], member_batches: Sequence[tuple[Tensor, Tensor, Tensor]],
               forward: StackedForward, sums: Sequence[EpochSums], step: int) -> None:
    """One step of a fused group: one stacked forward and backward for all members, then each
    member's own optimizer (and EMA) step. Member g's loss is its own batch's, as in a trial alone;
    the gradient of their sum is each member's own gradient (the members share no parameters)."""
    o = runs[0].options
    x, y, y_bytes = (torch.stack(parts) for parts in zip(*member_batches))
    with autocast(x.device, o.precision):
        pred = forward(x)
    values = torch.stack([o.loss(p.float(), t) for p, t in zip(pred.unbind(0), y.unbind(0))])
    for run in runs:
        run.optimizer.zero_grad(set_to_none=True)
    values.sum().backward()
    for run in runs:
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
    values, pred = values.detach(), pred.detach()
    if o.sync_every_step:
        values.tolist()
    for g, member_sums in enumerate(sums):
        _add(member_sums, values[g], pred[g], y[g], y_bytes[g], step, o)


def batches(data: DeviceImages, batch_size: int, generator: torch.Generator, options: "FitOptions"):
    """An epoch's batches in a seeded random order, augmented as `options` say (mirroring, shifts:
    drawn from `generator`, so a resumed run augments the same images)."""
    order = torch.randperm(len(data), generator=generator).to(data.gray.device)
    for start in range(0, len(data), batch_size):
        idx = order[start : start + batch_size]
        batch = (data.gray.index_select(0, idx), data.rgb.index_select(0, idx), data.rgb_bytes.index_select(0, idx))
        if options.hflip:
            batch = mirror_some(batch, generator)
        if options.shift:
            batch = shift_some(batch, generator, options.shift)
        yield batch


@contextmanager
def _progress(data: DeviceImages, options: "FitOptions", desc: str):
    """A progress bar over an epoch's steps that moves in ~50 ticks: host work only, no sync."""
    steps = math.ceil(len(data) / options.batch_size)
    every = max(1, steps // 50)
    bar = tqdm(total=steps, desc=desc, leave=False, disable=None if options.progress else True)

    def tick(step: int) -> None:
        if step % every == 0 or step == steps:
            bar.update(step - bar.n)

    try:
        yield tick
    finally:
        bar.close()


def _epoch_metrics(sums: EpochSums, epoch: int, data: DeviceImages) -> dict | Diverged:
    """The epoch's training metrics from its sums (the epoch's one read-back), or how it diverged."""
    loss, sse, hits, bad_step, bad_value = sums.read()
    if bad_step > 0:
        return Diverged(epoch, bad_step, bad_value)
    values = data.rgb.numel()
    return {"mse": sse / values, "loss": loss / values, "margin12_error": 1.0 - hits / values}


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: DeviceImages, generator: torch.Generator,
                epoch: int, options: "FitOptions", ema: Optional[WeightAverage] = None,
                forward: Optional[Callable[[Tensor], Tensor]] = None) -> dict:
    """One pass over `data`: the training loss, MSE and 12-margin error of the batches as trained.

    `options` (a :class:`FitOptions`) gives the batch size, augmentation, precision (bf16: the
    forward pass under bfloat16 autocast, the loss in float32), loss and progress bar; `ema` is
    updated after every step. A loss that is not finite raises :class:`Diverged` at the end of the
    epoch, naming its first such step.
    """
    model.train()
    sums = EpochSums.zeros(data.gray.device)
    with _progress(data, options, f"epoch {epoch}") as tick:
        for step, batch in enumerate(batches(data, options.batch_size, generator, options), start=1):
            train_step(model, optimizer, batch, options, ema, sums, step, forward)
            tick(step)
    metrics = _epoch_metrics(sums, epoch, data)
    if isinstance(metrics, Diverged):
        raise metrics
    return metrics


def train_group_epoch(runs: Sequence["FitProgress"], data: DeviceImages) -> list[dict | Diverged]:
    """One epoch of a fused group: each member draws its own batches and augmentations from its own
    generator, as alone; its metrics, or the Diverged that ended it (at the epoch's end, as alone)."""
    o = runs[0].options
    for run in runs:
        run.model.train()
    forward = StackedForward([run.model for run in runs])
    sums = [EpochSums.zeros(data.gray.device) for _ in runs]
    streams = [batches(data, o.batch_size, run.generator, o) for run in runs]
    with _progress(data, o, f"epoch {runs[0].epoch} ({len(runs)} fused)") as tick:
        for step, member_batches in enumerate(zip(*streams), start=1):
            group_step(runs, member_batches, forward, sums, step)
            tick(step)
    return [_epoch_metrics(member_sums, run.epoch, data) for member_sums, run in zip(sums, runs)]


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


@runtime_checkable
class RunRecord(Protocol):
    """What a callback may do with its job's run (colorize.tracking.store.TrackedRun is one)."""

    run_id: str

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...


@dataclass
class CallbackContext:
    """What a callback gets in `setup`, before training starts: the job's run, model, composed config
    (a DictConfig) and output folder; `label` names the trial in a fused group's shared log; `sweeper`
    holds an Optuna search's `storage` and `study_name` (empty otherwise)."""

    run: RunRecord
    model: nn.Module
    cfg: Any
    output_dir: Path
    label: str = ""
    sweeper: Mapping[str, Any] = field(default_factory=dict)


class Callback:
    """The one protocol of what watches training (MLflow metrics, checkpoints, the console log, Optuna
    reporting): override the hooks you need. Built from the `callbacks` config group, given the job's
    objects by `setup`, then called by `fit`."""

    def setup(self, job: CallbackContext) -> None:
        """The job's run, model, config and output folder, before training starts."""

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
    clock: Callable[[], float] = time.perf_counter  # seconds; tests inject one (the time budget reads it)
    sync_every_step: bool = False  # read the loss back after every step, as the loop did (for benchmarks)
    cuda_graphs: str = "off"  # on | auto: replay the forward and backward as a CUDA graph (training/graphs.py)

# A budgeted run trains the N epochs its first epoch promised; only if the machine gets this much
# slower than that promise does the budget cut it short (the run is then tagged time_budget).
OVERRUN = 1.2


def epochs_in_budget(budget_seconds: float, first_epoch_seconds: float, max_epochs: int) -> int:
    """How many epochs of `first_epoch_seconds` fit in the budget (at least 1, at most `max_epochs`)."""
    return max(1, min(max_epochs, int(budget_seconds // max(first_epoch_seconds, 1e-9))))


@dataclass
class Member:
    """One run that `fit_group` trains: what `fit` takes for one."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    options: FitOptions
    callbacks: Sequence[Callback] = ()
    resume: Optional[TrainState] = None


@dataclass
class FitProgress:
    """Where one run of `fit` is: what it restores from a TrainState and hands to the next epoch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    options: FitOptions
    callbacks: Sequence[Callback]
    started: float  # the clock when fit began (a time budget counts from here)
    ema: Optional[WeightAverage]  # the EMA of the weights: what validates, early-stops and is kept
    best_state: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    epoch: int = 0  # epochs done
    planned: Optional[int] = None  # N: known at the start without a budget, else after epoch 1
    scheduler: Any = None
    stopped_by: Optional[StopTraining] = None
    forward: Optional[Callable[[Tensor], Tensor]] = None  # the captured step's forward (CUDA graphs)
    done: bool = False
    diverged: Optional[Diverged] = None

    @property
    def judged(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @property
    def finished(self) -> bool:
        """No epoch left: N reached, or early stopping ended the run."""
        return self.epoch >= (self.planned or self.options.max_epochs) or _stopping(self)

    def state(self) -> TrainState:
        o = self.options
        return TrainState(
            epoch=self.epoch, model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            generator=self.generator.get_state(), best_model=self.best_state, history=self.history,
            early_stopping=o.early_stopping.state_dict() if o.early_stopping else None,
            scheduler=self.scheduler.state_dict() if self.scheduler else None,
            budget_epochs=self.planned if o.max_seconds else None,
            ema=self.ema.state_dict() if self.ema is not None else None,
        )

    def result(self) -> FitResult | Diverged:
        """How the run ended; a finished one's model then holds its best epoch's weights."""
        if self.diverged is not None:
            return self.diverged
        self.model.load_state_dict(self.best_state)
        stop = self.options.early_stopping
        return FitResult(best_epoch=stop.best_epoch if stop else self.epoch, stopped_epoch=self.epoch,
                         history=self.history, stopped_by=self.stopped_by, planned_epochs=self.planned or self.epoch)


def _start(m: Member, started: float) -> FitProgress:
    """A fresh run's progress, or one restored from `m.resume` exactly as it was saved."""
    o, resume = m.options, m.resume
    ema = WeightAverage(m.model, o.ema) if o.ema else None
    run = FitProgress(m.model, m.optimizer, m.generator, o, m.callbacks, started, ema)
    run.best_state = copy.deepcopy(run.judged.state_dict())
    run.planned = None if o.max_seconds else o.max_epochs
    if resume is not None:
        run.planned = resume.budget_epochs or o.max_epochs
    # built before the optimizer's state is restored: a new scheduler resets the lr it schedules
    if o.schedule is not None and run.planned is not None:
        run.scheduler = o.schedule(m.optimizer, run.planned)
    if resume is None:
        return run
    m.model.load_state_dict(resume.model)
    m.optimizer.load_state_dict(resume.optimizer)
    m.generator.set_state(resume.generator)
    run.best_state, run.history, run.epoch = copy.deepcopy(resume.best_model), [dict(h) for h in resume.history], resume.epoch
    for part, saved in ((o.early_stopping, resume.early_stopping), (run.scheduler, resume.scheduler), (ema, resume.ema)):
        if part is not None and saved is not None:
            part.load_state_dict(saved)
    return run


def _validate(run: FitProgress, tr: dict, val: DeviceImages, started: float, lr: float) -> dict:
    """Validate after training an epoch (begun at `started` with `lr`): the epoch's metrics."""
    o = run.options
    va = evaluate(run.judged, val, o.eval_batch_size, o.precision)
    if not math.isfinite(va["mse"]):  # a finite but huge training loss can still overflow on val
        raise Diverged(run.epoch, None, va["mse"], what="val_mse")
    return {
        names.TRAIN_LOSS: tr["loss"], names.TRAIN_MSE: tr["mse"], names.TRAIN_ERROR: tr["margin12_error"],
        names.VAL_MSE: va["mse"], names.VAL_ERROR: va["margin12_error"], names.VAL_ACCURACY: va["margin12_accuracy"],
        names.EPOCH_SECONDS: o.clock() - started, names.LR: lr,
    }


def _plan(run: FitProgress, val_mse: float) -> None:
    """After an epoch: a budgeted run's N from the first epoch's pace (the schedule then spans it),
    and the scheduler's step."""
    o = run.options
    if run.planned is not None:
        _step(run.scheduler, val_mse)
        return
    run.planned = epochs_in_budget(o.max_seconds, o.clock() - run.started, o.max_epochs)
    with warnings.catch_warnings():  # torch warns of a scheduler born after optimizer steps
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
        run.scheduler = o.schedule(run.optimizer, run.planned) if o.schedule is not None else None
        _step(run.scheduler, val_mse)
    for callback in run.callbacks:
        callback.on_plan(run.planned, measured=True)


def _stopping(run: FitProgress) -> bool:
    """Early stopping has ended the run (never a schedule that spans the run: it only picks the best epoch)."""
    stop = run.options.early_stopping
    return bool(stop and stop.should_stop and not isinstance(run.scheduler, EpochSchedule))


def _end_epoch(run: FitProgress, metrics: dict) -> None:
    """Record an epoch's metrics: plan, early stopping, best weights, callbacks; `run.done` once the
    run ends here (N reached, stopped early, stopped by a callback, or out of time)."""
    o = run.options
    run.history.append(metrics)
    _plan(run, metrics[names.VAL_MSE])
    stop = o.early_stopping
    if stop is None or stop.step(run.epoch, metrics[stop.monitor]):  # improved (or nothing judges)
        run.best_state = copy.deepcopy(run.judged.state_dict())
    try:
        for callback in run.callbacks:
            callback.on_epoch_end(run.epoch, metrics, run.state())
    except StopTraining as stopped:
        run.stopped_by, run.done = stopped, True
        return
    if _stopping(run):
        run.done = True
        return
    elapsed = o.clock() - run.started
    if o.max_seconds and run.epoch < run.planned and elapsed + metrics[names.EPOCH_SECONDS] > OVERRUN * o.max_seconds:
        run.stopped_by, run.done = TimeBudget(o.max_seconds, run.epoch), True
        return
    run.done = run.finished


def _train(runs: Sequence[FitProgress], train: DeviceImages) -> list[dict | Diverged]:
    """One epoch for every run still going: alone (eager, or its CUDA graph), or as one fused group."""
    if len(runs) > 1:
        return train_group_epoch(runs, train)
    run = runs[0]
    try:
        return [train_epoch(run.model, run.optimizer, train, run.generator, run.epoch, run.options, run.ema, run.forward)]
    except Diverged as diverged:
        return [diverged]


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
    continues from there exactly as if training had not stopped. A loss that is not finite raises
    :class:`Diverged` at the end of its epoch.

    The run's length N is `max_epochs`; with `max_seconds` (a time budget) it is the number of
    epochs that fit the budget at the first epoch's pace (never more than `max_epochs`), fixed
    after epoch 1 and kept in the :class:`TrainState`, so `max_epochs=N` without a budget replays
    the run; callbacks hear N through `on_plan`. `schedule(optimizer, N)` builds the lr scheduler,
    stepped after every epoch (ReduceLROnPlateau on the val MSE). A schedule that spans the run
    (:class:`EpochSchedule`) is never cut short by early stopping, which then only chooses the best
    epoch to restore. Nothing waits on the device within an epoch: its sums are read once at its end.
    """
    result = fit_group([Member(model, optimizer, generator, options, callbacks, resume)], train, val)[0]
    if isinstance(result, Diverged):
        raise result
    return result


def fit_group(members: Sequence[Member], train: DeviceImages, val: DeviceImages,
              on_end: Optional[Callable[[int, FitResult | Diverged], None]] = None) -> list[FitResult | Diverged]:
    """`fit` for several runs at once, on the same images: the one loop. Runs still going train each
    epoch together, as one fused group (`train_group_epoch`) when there are several; each then
    validates, plans, early-stops and calls its callbacks on its own, and leaves the group when it
    ends. A run that diverges ends alone, at the end of that epoch. Per run: its FitResult, or the
    Diverged that ended it, also handed to `on_end(index, result)` as soon as that run ends (so a
    caller can close its record while the others train on). Members must agree on batch size,
    augmentation, precision and loss."""
    _check_group(members)
    runs = [_start(m, m.options.clock()) for m in members]
    for run in runs:
        o = run.options
        if o.cuda_graphs != "off" and len(runs) == 1:  # captured once, after any restore (the warm-up keeps the weights)
            run.forward = capture(run.model, train.gray[: o.batch_size], required=o.cuda_graphs == "on")
        for callback in run.callbacks if run.planned is not None else ():
            callback.on_plan(run.planned, measured=False)
        run.done = run.finished
    results: dict[int, FitResult | Diverged] = {}

    def settle() -> list[FitProgress]:  # the runs that ended hand their results on; the rest go on
        for i, run in enumerate(runs):
            if run.done and i not in results:
                results[i] = run.result()
                if on_end is not None:
                    on_end(i, results[i])
        return [run for run in runs if not run.done]

    active = settle()
    while active:
        starts = [(run.options.clock(), run.optimizer.param_groups[0]["lr"]) for run in active]
        for run in active:
            run.epoch += 1
        for run, trained, (started, lr) in zip(active, _train(active, train), starts):
            try:
                if isinstance(trained, Diverged):
                    raise trained
                _end_epoch(run, _validate(run, trained, val, started, lr))
            except Diverged as diverged:
                run.diverged, run.done = diverged, True
        active = settle()
    return [results[i] for i in range(len(runs))]


def _check_group(members: Sequence[Member]) -> None:
    """Fused members share their batches' shapes and how a step runs."""
    def shared(o: FitOptions) -> tuple:
        return o.batch_size, o.hflip, o.shift, o.precision, o.progress, o.sync_every_step

    if len({shared(m.options) for m in members}) > 1:
        raise ValueError("fused runs must share batch size, augmentation, precision and step settings")


def _step(scheduler: Optional[torch.optim.lr_scheduler.LRScheduler], val_mse: float) -> None:
    """Step a scheduler after an epoch (ReduceLROnPlateau watches the val MSE)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_mse)
    elif scheduler is not None:
        scheduler.step()
