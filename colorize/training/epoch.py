"""One epoch of training, alone or as a fused group, and a split's validation: every step adds its
loss, MSE and hits to sums on the device, read back once at the epoch's end (the loop never waits on
the host mid-epoch)."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from colorize.training.averaging import WeightAverage
from colorize.training.device_images import DeviceImages, batches, group_batches
from colorize.training.fused import StackedForward
from colorize.training.losses import mse
from colorize.training.metrics import margin_hits, mse_sum, to_uint8
from colorize.training.options import FitOptions, Loss
from colorize.training.precision import autocast


class GroupRun(Protocol):
    """What a fused epoch needs of each run it trains (the loop's FitProgress is one)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    options: FitOptions
    ema: Optional[WeightAverage]
    epoch: int


class Diverged(RuntimeError):
    """The training loss, or a validation metric, became NaN or infinite."""

    def __init__(self, epoch: int, step: Optional[int], loss: float, what: str = "loss") -> None:
        where = f"epoch {epoch}, step {step}" if step is not None else f"epoch {epoch}"
        super().__init__(f"training diverged at {where}: {what}={loss}")
        self.epoch, self.step, self.loss = epoch, step, loss


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
    loop never waits on the host mid-epoch (no `.item()` per step). A trial's sums are scalars; a
    fused group's are (members,) tensors, so one set of ops per step adds every member's."""

    loss: Tensor  # sum over values of the training loss (float64)
    sse: Tensor  # sum of squared errors (float64)
    hits: Tensor  # values within the 12 margin (float64)
    bad_step: Tensor  # the first step (1-based) whose loss was not finite; -1: none
    bad_value: Tensor  # that step's loss

    @classmethod
    def zeros(cls, device: torch.device, members: Optional[int] = None) -> "EpochSums":
        """A trial's sums (scalars), or with `members` a fused group's, as an epoch starts them."""
        shape = () if members is None else (members,)

        def empty(dtype: torch.dtype) -> Tensor:
            return torch.empty(shape, dtype=dtype, device=device)

        return cls(empty(torch.float64), empty(torch.float64), empty(torch.float64), empty(torch.int64),
                   empty(torch.float32)).reset()

    def reset(self) -> "EpochSums":
        """Start an epoch's sums again, in place (a captured step keeps adding into these tensors)."""
        for total in (self.loss, self.sse, self.hits, self.bad_value):
            total.zero_()
        self.bad_step.fill_(-1)
        return self

    def read(self) -> list[tuple[float, float, float, int, float]]:
        """Per member (one for a trial), (loss, sse, hits, bad_step, bad_value) on the host: the epoch's one sync."""
        values = torch.stack([self.loss, self.sse, self.hits, self.bad_step.double(), self.bad_value.double()])
        return [(loss, sse, hits, int(bad), value) for loss, sse, hits, bad, value in values.reshape(5, -1).T.tolist()]


def is_plain_mse(loss: Loss) -> bool:
    """Whether `loss` is the MSE itself (then the MSE needs no second pass over the batch)."""
    return getattr(loss, "func", loss) is mse and not getattr(loss, "keywords", None)


def _add(sums: EpochSums, value: Tensor, pred: Tensor, y: Tensor, y_bytes: Tensor, step: int | Tensor,
         options: FitOptions) -> None:
    """Add one step's loss, MSE, hits and not-finite flag to `sums`, on the device."""
    weighted = value.double() * y.numel()
    sums.loss += weighted
    sums.sse += weighted if is_plain_mse(options.loss) else mse_sum(pred.float(), y)
    sums.hits += margin_hits(to_uint8(pred), y_bytes).sum()
    _flag_bad(sums, value, step)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[Tensor, ...],
               options: FitOptions, ema: Optional[WeightAverage], sums: EpochSums, step: int | Tensor,
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


def group_step(runs: Sequence[GroupRun], batch: tuple[Tensor, ...], forward: Callable[[Tensor], Tensor],
               sums: EpochSums, step: int | Tensor) -> None:
    """One step of a fused group on a stacked batch (members, batch, ...): one stacked forward and
    backward for all members, then each member's own optimizer (and EMA) step. Member g's loss is its
    own batch's, as in a trial alone; the gradient of their sum is each member's own gradient (the
    members share no parameters). The loss (when it is the MSE) and the sums are one set of ops for
    the whole group: on a GPU each op is a launch, and per-member ops made a fused step cost as much
    as its members' steps alone (docs/gpu/README.md, 2026-12-04)."""
    o = runs[0].options
    x, y, y_bytes = batch
    with autocast(x.device, o.precision):
        pred = forward(x)
    if is_plain_mse(o.loss):
        values = F.mse_loss(pred.float(), y, reduction="none").flatten(1).mean(1)
    else:
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
    _add_group(sums, values, pred, y, y_bytes, step, o)


def _add_group(sums: EpochSums, values: Tensor, pred: Tensor, y: Tensor, y_bytes: Tensor, step: int | Tensor,
               options: FitOptions) -> None:
    """`_add` for every member at once (a group's sums): `values` (members,), the rest (members, batch, ...)."""
    weighted = values.double() * y[0].numel()
    sums.loss += weighted
    sums.sse += weighted if is_plain_mse(options.loss) else (pred.float() - y).square().flatten(1).sum(1)
    sums.hits += margin_hits(to_uint8(pred), y_bytes)  # per member: hits over its whole batch
    _flag_bad(sums, values, step)


def _flag_bad(sums: EpochSums, values: Tensor, step: int | Tensor) -> None:
    """Note the first step whose loss is not finite, per member. In place: a captured step
    (training/step_graphs.py) replays these very ops on these very tensors."""
    first_bad = ~torch.isfinite(values) & (sums.bad_step < 0)
    sums.bad_step.copy_(torch.where(first_bad, step, sums.bad_step))  # (`step` a device tensor when captured)
    torch.where(first_bad, values, sums.bad_value, out=sums.bad_value)


@contextmanager
def epoch_progress(data: DeviceImages, options: FitOptions, desc: str):
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


def epoch_metrics(read: tuple[float, float, float, int, float], epoch: int, data: DeviceImages) -> dict | Diverged:
    """The epoch's training metrics from its sums as read back, or how it diverged."""
    loss, sse, hits, bad_step, bad_value = read
    if bad_step > 0:
        return Diverged(epoch, bad_step, bad_value)
    values = data.rgb.numel()
    return {"mse": sse / values, "loss": loss / values, "margin12_error": 1.0 - hits / values}


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: DeviceImages, generator: torch.Generator,
                epoch: int, options: FitOptions, ema: Optional[WeightAverage] = None,
                forward: Optional[Callable[[Tensor], Tensor]] = None) -> dict:
    """One pass over `data`: the training loss, MSE and 12-margin error of the batches as trained.

    `options` (a :class:`FitOptions`) gives the batch size, augmentation, precision (bf16: the
    forward pass under bfloat16 autocast, the loss in float32), loss and progress bar; `ema` is
    updated after every step. A loss that is not finite raises :class:`Diverged` at the end of the
    epoch, naming its first such step.
    """
    model.train()
    sums = EpochSums.zeros(data.gray.device)
    with epoch_progress(data, options, f"epoch {epoch}") as tick:
        for step, batch in enumerate(batches(data, options.batch_size, generator, options), start=1):
            train_step(model, optimizer, batch, options, ema, sums, step, forward)
            tick(step)
    metrics = epoch_metrics(sums.read()[0], epoch, data)  # the epoch's one read-back
    if isinstance(metrics, Diverged):
        raise metrics
    return metrics


def train_group_epoch(runs: Sequence[GroupRun], data: DeviceImages,
                      forward: Optional[Callable[[Tensor], Tensor]] = None) -> list[dict | Diverged]:
    """One epoch of a fused group: each member draws its own batches and augmentations from its own
    generator, as alone; its metrics, or the Diverged that ended it (at the epoch's end, as alone).
    `forward` (the group captured as a CUDA graph) stands in for the members' StackedForward."""
    o = runs[0].options
    for run in runs:
        run.model.train()
    forward = forward or StackedForward([run.model for run in runs])
    sums = EpochSums.zeros(data.gray.device, len(runs))
    stream = group_batches(data, o.batch_size, [run.generator for run in runs], o)
    with epoch_progress(data, o, f"epoch {runs[0].epoch} ({len(runs)} fused)") as tick:
        for step, batch in enumerate(stream, start=1):
            group_step(runs, batch, forward, sums, step)
            tick(step)
    return [epoch_metrics(read, run.epoch, data) for read, run in zip(sums.read(), runs)]
