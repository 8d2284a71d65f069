"""The one training loop: `fit` for a run, `fit_group` for several trained as one fused group; per
epoch each run validates, plans its length, early-stops, keeps its best weights and calls its
callbacks. An epoch's steps are in `epoch.py`, the hooks in `callback.py`."""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from colorize import names
from colorize.training.averaging import WeightAverage
from colorize.training.callback import Callback, StopTraining, TrainState
from colorize.training.device_images import DeviceImages
from colorize.training.epoch import Diverged, evaluate, train_epoch, train_group_epoch
from colorize.training.fused import StackedModule
from colorize.training.graphs import capture
from colorize.training.options import FitOptions
from colorize.training.step_graphs import StepGraphs, capture_steps, whole_step
from colorize.training.schedules import EpochSchedule


class TimeBudget(StopTraining):
    """Training stopped because the next epoch would end past the time budget."""

    tag = "time_budget"

    def __init__(self, seconds: float, epoch: int) -> None:
        super().__init__(f"time budget of {seconds / 60:g} min overrun by more than {OVERRUN - 1:.0%} "
                         f"after epoch {epoch} (the machine got slower than its first epoch)")


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
    run.best_state, run.epoch = copy.deepcopy(resume.best_model), resume.epoch
    run.history = [dict(h) for h in resume.history]
    parts = ((o.early_stopping, resume.early_stopping), (run.scheduler, resume.scheduler), (ema, resume.ema))
    for part, saved in parts:
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
    assert o.max_seconds is not None  # N is unknown at the start only under a time budget
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
    elapsed, planned = o.clock() - run.started, run.planned or 0
    if o.max_seconds and run.epoch < planned and elapsed + metrics[names.EPOCH_SECONDS] > OVERRUN * o.max_seconds:
        run.stopped_by, run.done = TimeBudget(o.max_seconds, run.epoch), True
        return
    run.done = run.finished


def capture_for(runs: Sequence[FitProgress], train: DeviceImages) -> Any:
    """What the runs' epochs replay on CUDA: their whole step (`StepGraphs`, where `whole_step` allows),
    else their forward and backward (`GraphedForward`; only these with `trainer.cuda_graphs=forward`),
    else None (eager). A fused group is captured only with `on` or `forward` (opt-in until a GPU has
    measured it: docs/gpu)."""
    o = runs[0].options
    if o.cuda_graphs == "off" or (len(runs) > 1 and o.cuda_graphs == "auto"):
        return None
    required = o.cuda_graphs != "auto"
    if o.cuda_graphs != "forward" and whole_step(runs):
        steps = capture_steps(runs, train, required)
        if steps is not None:
            return steps
    first = train.gray[: o.batch_size]
    if len(runs) == 1:
        return capture(runs[0].model, first, required)
    return capture(StackedModule([run.model for run in runs]), first.expand(len(runs), *first.shape), required)


def _train(runs: Sequence[FitProgress], train: DeviceImages, graphs: dict) -> list[dict | Diverged]:
    """One epoch for every run still going: alone or as one fused group, eager or replaying what
    `capture_for` made of them (kept in `graphs` for the current set of runs: a member that leaves
    changes the stacked shapes, and what is left is captured again)."""
    key = tuple(id(run) for run in runs)
    if key not in graphs:
        graphs.clear()  # the former runs' graphs (and their memory pools) are never replayed again
        graphs[key] = capture_for(runs, train)
    replay = graphs[key]
    if isinstance(replay, StepGraphs):
        return replay.train_epoch()
    if len(runs) > 1:
        return train_group_epoch(runs, train, replay)
    run = runs[0]
    try:
        return [train_epoch(run.model, run.optimizer, train, run.generator, run.epoch, run.options, run.ema, replay)]
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
        if run.planned is not None:
            for callback in run.callbacks:
                callback.on_plan(run.planned, measured=False)
        run.done = run.finished
    results: dict[int, FitResult | Diverged] = {}
    graphs: dict = {}  # the CUDA graphs of the runs going (`_train`), captured after any restore

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
        for run, trained, (started, lr) in zip(active, _train(active, train, graphs), starts):
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
