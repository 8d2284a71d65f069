"""Exponential moving average (EMA) of the weights, with a warm-up.

A plain EMA with decay d starts from the first weights and keeps d^n of them after n updates:
0.998^560 ≈ 0.33 after two epochs of 4,500 faces, so early on the average is dominated by weights
that had barely trained (a pruner comparing trials at a quarter of their budget then cuts every EMA
trial). The warm-up uses min(d, (1 + n) / (10 + n)) at the n-th update, as TensorFlow's
ExponentialMovingAverage does with num_updates: the average follows the weights closely at first
and reaches its full decay after about 10 / (1 - d) updates.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

# the update AveragedModel calls: (averaged tensors, current tensors, updates so far)
MultiAvgFn = Callable[[list[Tensor], list[Tensor], Tensor], None]


def ema_decay(decay: float, updates: int) -> float:
    """The decay of the update after `updates` earlier ones: min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1 + updates) / (10 + updates))


def ema_with_warmup(decay: float) -> MultiAvgFn:
    """A `multi_avg_fn` for torch's AveragedModel: averaged ← d·averaged + (1 − d)·current, with
    d = :func:`ema_decay` (AveragedModel copies the weights at its first update, then calls this)."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], updates: Tensor) -> None:
        d = ema_decay(decay, int(updates))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - d)
        else:  # integer buffers (BatchNorm's num_batches_tracked)
            for a, c in zip(averaged, current):
                a.copy_(a * d + c * (1.0 - d))

    return update
