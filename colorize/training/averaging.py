"""Exponential moving average (EMA) of the weights, with a warm-up.

A plain EMA with decay d starts from the first weights and keeps d^n of them after n updates:
0.998^560 ≈ 0.33 after two epochs of 4,500 faces, so early on the average is dominated by weights
that had barely trained (a pruner comparing trials at a quarter of their budget then cuts every EMA
trial). The warm-up uses min(d, (1 + n) / (10 + n)) at the n-th update, as TensorFlow's
ExponentialMovingAverage does with num_updates: the average follows the weights closely at first
and reaches its full decay after about 10 / (1 - d) updates.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

# the update: (averaged tensors, current tensors, updates so far: AveragedModel's tensor, WeightAverage's int)
MultiAvgFn = Callable[[list[Tensor], list[Tensor], "Tensor | int"], None]


def ema_decay(decay: float, updates: int) -> float:
    """The decay of the update after `updates` earlier ones: min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1 + updates) / (10 + updates))


def ema_with_warmup(decay: float) -> MultiAvgFn:
    """A `multi_avg_fn` for torch's AveragedModel: averaged ← d·averaged + (1 − d)·current, with
    d = :func:`ema_decay` (AveragedModel copies the weights at its first update, then calls this)."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], updates: Tensor | int) -> None:
        d = ema_decay(decay, int(updates))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - d)
        else:  # integer buffers (BatchNorm's num_batches_tracked)
            for a, c in zip(averaged, current):
                a.copy_(a * d + c * (1.0 - d))

    return update


class WeightAverage:
    """The EMA of a model's weights and buffers, updated without waiting on the device: the update
    count lives on the host (torch's AveragedModel keeps it in a tensor and reads it back at every
    update, two host syncs per step). Numerically it is AveragedModel(use_buffers=True) with
    :func:`ema_with_warmup`: the first update copies, the n-th lerps with :func:`ema_decay` (n − 1),
    and its state dict has the same keys, so checkpoints of either load in the other."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model)
        self.update = ema_with_warmup(decay)
        self.n = 0  # updates so far

    def _tensors(self, model: nn.Module) -> list[Tensor]:
        return [t.detach() for t in (*model.parameters(), *model.buffers())]

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        averaged, current = self._tensors(self.module), self._tensors(model)
        if self.n == 0:
            torch._foreach_copy_(averaged, current)
        else:  # float tensors and integer buffers apart, as AveragedModel groups them
            for floats in (True, False):
                pairs = [(a, c) for a, c in zip(averaged, current) if torch.is_floating_point(a) == floats]
                if pairs:
                    self.update([a for a, _ in pairs], [c for _, c in pairs], self.n)
        self.n += 1

    def state_dict(self) -> dict:
        return {"n_averaged": torch.tensor(self.n), **{f"module.{k}": v for k, v in self.module.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        self.n = int(state["n_averaged"])  # (once, on resume)
        self.module.load_state_dict({k[len("module."):]: v for k, v in state.items() if k.startswith("module.")})
