"""A trial's, or a fused group's, whole training step as CUDA graphs: the batch's gather, forward,
loss, backward, optimizer step and the epoch's sums, replayed with one launch.

Why: graphs.py captures the forward and backward only; the loss, SGD's step and the metric sums
stayed eager, ~40 launches a step, and with 16 trials at once on a lent H200 each still spent ~3 ms
of host time per step against ~10 us of arithmetic (docs/gpu/README.md, 2026-12-04). Here the host
does two things a step: copy the batch's indices into the graph's index tensor, and replay.

Where it applies (`whole_step`): plain SGD, as in torch's own "whole network capture" (Adam would
need `capturable=True`); no EMA and no augmentation (their draws are the host's); no per-step
read-back. Elsewhere graphs.py's forward graph serves. SGD reads its lr as a number, which the graph
keeps: an lr that a schedule has moved since the capture captures the step again (once an epoch at
most).

Why it trains as the eager loop does: the captured body *is* the eager step (`train_step`,
`group_step`) on a batch gathered by index from the run's device images, in the order the run's
generator draws, with a step counter on the device and the sums updated in place (epoch.py). One
graph per batch size of an epoch (4,500 faces = 281 x 16 + 4: two graphs). Capture needs a few
warm-up steps first (cuDNN's choices, SGD's momentum buffers); they run on a side stream and are
undone in place: weights, BatchNorm statistics, optimizer state (a buffer the warm-up created is
zeroed, so the first step gives momentum x 0 + gradient, what SGD's first step gives; dampening
must be 0). With `capture=False` the same body runs eagerly through the same tensors: that is how
the CPU tests check this logic against the eager epoch; tests/training/test_graphs.py checks the
captured graphs on a GPU.
"""

from __future__ import annotations

import copy
import logging
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from colorize.errors import ColorizeError
from colorize.training.device_images import DeviceImages, epoch_orders, gather
from colorize.training.epoch import (Diverged, EpochSums, GroupRun, epoch_metrics, epoch_progress, group_step,
                                     train_step)
from colorize.training.fused import StackedForward

log = logging.getLogger("colorize")

WARMUP = 3  # steps before a capture, as torch's CUDA graph examples do


def whole_step(runs: Sequence[GroupRun]) -> bool:
    """Whether the runs' whole step can be captured: plain SGD (dampening 0), no EMA, no augmentation,
    no per-step read-back."""
    o = runs[0].options
    return (not o.hflip and not o.shift and not o.sync_every_step
            and all(r.ema is None and type(r.optimizer) is torch.optim.SGD
                    and all(g.get("dampening", 0) == 0 for g in r.optimizer.param_groups) for r in runs))


def _lrs(runs: Sequence[GroupRun]) -> list[float]:
    return [g["lr"] for r in runs for g in r.optimizer.param_groups]


class StepGraphs:
    """The runs' step (one run, or a fused group of several) for each batch size of an epoch, captured
    (`capture=True`, CUDA) or run eagerly through the same static tensors."""

    def __init__(self, runs: Sequence[GroupRun], data: DeviceImages, capture: bool) -> None:
        self.runs, self.data, self.capture = list(runs), data, capture
        self.batch_size = runs[0].options.batch_size
        device = data.gray.device
        self.sums = EpochSums.zeros(device, len(runs) if len(runs) > 1 else None)
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # the step number, counted on the device
        self.forward = StackedForward([r.model for r in runs]) if len(runs) > 1 else None
        self.graphs: dict[int, tuple[Tensor, Optional[torch.cuda.CUDAGraph]]] = {}
        self._build()

    def _build(self) -> None:
        self.lrs = _lrs(self.runs)
        self.graphs.clear()  # (a recapture: the former graphs and their memory pools go)
        n, b = len(self.data), self.batch_size
        for size in sorted({min(b, n), n % b} - {0}, reverse=True):
            shape = (size,) if self.forward is None else (len(self.runs), size)
            idx = torch.arange(size, device=self.step.device).expand(shape).contiguous()  # a valid batch to warm up on
            self.graphs[size] = (idx, self._captured(idx) if self.capture else None)

    def _body(self, idx: Tensor) -> None:
        """The eager step on the images at `idx` ((batch,), or (members, batch) for a group)."""
        self.step += 1
        batch = gather(self.data, idx)
        if self.forward is None:
            r = self.runs[0]
            train_step(r.model, r.optimizer, batch, r.options, None, self.sums, self.step)
        else:
            group_step(self.runs, batch, self.forward, self.sums, self.step)

    def _captured(self, idx: Tensor) -> torch.cuda.CUDAGraph:
        """The step on `idx` captured, after the warm-up a capture needs; whatever happens, the runs'
        weights and optimizer state are put back as they were (a failed capture then trains on from
        where it was, less captured)."""
        saved = _snapshot(self.runs)
        try:
            self._warm_up(idx)
            return self._record(idx)
        finally:
            _restore(self.runs, saved)

    def _warm_up(self, idx: Tensor) -> None:
        """WARMUP steps, on a side stream on CUDA (as torch's examples do before a capture)."""
        if not idx.is_cuda:
            for _ in range(WARMUP):
                self._body(idx)
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                self._body(idx)
        torch.cuda.current_stream().wait_stream(side)

    def _record(self, idx: Tensor) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body(idx)
        return graph

    def epoch(self, tick: Callable[[int], None] = lambda step: None) -> list[tuple[float, float, float, int, float]]:
        """One epoch (`steps`); per run, its sums as `EpochSums.read` gives them (the epoch's one read-back)."""
        self.steps(tick)
        return self.sums.read()

    def steps(self, tick: Callable[[int], None] = lambda step: None) -> None:
        """An epoch's steps in the order each run's generator draws (as `batches`, `group_batches`),
        into the zeroed sums; nothing is read back."""
        if _lrs(self.runs) != self.lrs:
            self._build()
        orders = epoch_orders(self.data, [r.generator for r in self.runs])
        if self.forward is None:
            orders = orders[0]
        self.sums.reset()
        self.step.zero_()
        for step, start in enumerate(range(0, len(self.data), self.batch_size), start=1):
            chunk = orders[..., start : start + self.batch_size]
            idx, graph = self.graphs[chunk.shape[-1]]
            idx.copy_(chunk)
            graph.replay() if graph is not None else self._body(idx)
            tick(step)

    def train_epoch(self) -> list[dict | Diverged]:
        """`epoch` with its progress bar; per run, its metrics or the Diverged that ended it (as
        `train_group_epoch` gives them)."""
        fused = f" ({len(self.runs)} fused)" if len(self.runs) > 1 else ""
        with epoch_progress(self.data, self.runs[0].options, f"epoch {self.runs[0].epoch}{fused}") as tick:
            reads = self.epoch(tick)
        return [epoch_metrics(read, r.epoch, self.data) for read, r in zip(reads, self.runs)]


def _snapshot(runs: Sequence[GroupRun]) -> list[tuple[dict, dict]]:
    """Each run's weights and buffers, and its optimizer's state tensors, as they are."""
    return [(copy.deepcopy(r.model.state_dict()),
             {p: {k: v.clone() for k, v in s.items() if isinstance(v, Tensor)} for p, s in r.optimizer.state.items()})
            for r in runs]


def _restore(runs: Sequence[GroupRun], saved: list[tuple[dict, dict]]) -> None:
    """Put back what `_snapshot` saw, in place (the graphs hold these tensors); zero optimizer state
    the warm-up created."""
    with torch.no_grad():
        for r, (weights, state) in zip(runs, saved):
            r.model.load_state_dict(weights)
            for p, s in r.optimizer.state.items():
                for k, v in s.items():
                    if isinstance(v, Tensor):
                        v.copy_(state[p][k]) if k in state.get(p, {}) else v.zero_()


def capture_steps(runs: Sequence[GroupRun], data: DeviceImages, required: bool) -> Optional[StepGraphs]:
    """The runs' step captured on CUDA; None if that fails and is not `required` (trainer.cuda_graphs=on)."""
    try:
        return StepGraphs(runs, data, capture=True)
    except Exception as exc:  # an op that cannot be captured: the forward graph, or eager (auto); say so (on)
        if required:
            raise ColorizeError(f"trainer.cuda_graphs=on: the step could not be captured: {exc}") from None
        log.warning("CUDA graph capture of the whole step failed (%s): capturing less", str(exc).splitlines()[0])
        return None
