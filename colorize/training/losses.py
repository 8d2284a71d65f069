"""Training losses: pure functions of predictions and targets in [-1, 1] -> a scalar (mean over values).

MSE is the study's loss. It pulls every value towards the conditional mean, while the task's metric
counts a value as right only within ±12/255 of the truth: where a face's colour is ambiguous the
mean can sit between two likely colours and score on neither. The others weigh errors differently:
L1 (the conditional median), Charbonnier (a smooth L1), `cast_split` (Charbonnier on each image's
colour cast and on what is left, separately) and `margin`, a smooth stand-in for the 12-margin error
itself. Whatever a run trains on, it still logs train/val MSE and 12-margin metrics.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

MARGIN = 12 / 127.5  # the metric's ±12 (of 0..255) in the [-1, 1] units the nets predict


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean of e² (e = pred - target)."""
    return F.mse_loss(pred, target)


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean of |e|."""
    return F.l1_loss(pred, target)


def charbonnier(pred: Tensor, target: Tensor, epsilon: float = 1e-3) -> Tensor:
    """Mean of √(e² + ε²): L1 for |e| ≫ ε, quadratic (smooth) near 0."""
    return torch.mean(torch.sqrt((pred - target) ** 2 + epsilon**2))


def cast_split(pred: Tensor, target: Tensor, epsilon: float = 1e-3, cast_weight: float = 1.0,
               blocks: Sequence[int] = ()) -> Tensor:
    """Charbonnier on the local error plus `cast_weight` x Charbonnier on the cast.

    The cast is an image's mean error per channel; the local error is e minus its image's cast.
    Why: a face's colour cast is barely predictable from its gray image, and it is often larger than
    the local errors. Under an L1-like loss on e itself, every value of such an image then has the
    sign of the cast, and the image teaches the local colours nothing. Split, the local part always
    gets its own gradient, and the cast still goes to its median.

    `blocks` (block sides in pixels, e.g. (20,)) split regions off the same way: the mean error of
    each b x b block, less the next coarser mean, is a term of its own, and the local error is taken
    from the finest blocks' means. (Sides that do not divide the image give approximate blocks.)
    """
    e = pred - target
    h, w = e.shape[-2:]
    levels = [e.mean(dim=(-2, -1), keepdim=True)]  # coarsest first: the cast, the blocks, the values
    for side in sorted(blocks, reverse=True):
        means = F.adaptive_avg_pool2d(e, (-(-h // side), -(-w // side)))
        levels.append(F.interpolate(means, size=(h, w), mode="nearest"))
    levels.append(e)
    loss = cast_weight * torch.mean(torch.sqrt(levels[0] ** 2 + epsilon**2))
    for coarse, fine in zip(levels, levels[1:]):
        loss = loss + torch.mean(torch.sqrt((fine - coarse) ** 2 + epsilon**2))
    return loss


def margin(pred: Tensor, target: Tensor, sigma: float = MARGIN, mse_weight: float = 0.0) -> Tensor:
    """A smooth 12-margin error: mean of 1 − exp(−(e/σ)²), which is 0 at e = 0, 1 − 1/e ≈ 0.63 at
    |e| = σ (by default the metric's margin) and tends to 1 far off, like the error it stands in for.
    Its gradient vanishes far from the truth, so `mse_weight` can add the MSE to keep pulling values
    that start far off."""
    e = pred - target
    loss = torch.mean(1.0 - torch.exp(-((e / sigma) ** 2)))
    return loss + mse_weight * torch.mean(e**2) if mse_weight else loss
