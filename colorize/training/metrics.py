"""Pure metric functions on image tensors in [-1, 1] (N x 3 x H x W) or uint8 0..255."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from colorize.models.unet import CHROMA_TO_RGB, RGB_TO_CHROMA  # the nets' own maps (BT.601)

MARGIN = 12


def to_uint8(x: Tensor) -> Tensor:
    """Map values in [-1, 1] to integers 0..255 (rounded, clipped), as the course does."""
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8)


def margin_hits(pred: Tensor, target: Tensor, margin: int = MARGIN) -> Tensor:
    """Per image, the number of values whose 0..255 absolute error is < `margin`.

    `pred` and `target` are floats in [-1, 1] or uint8 in 0..255 (both the same kind).
    """
    if pred.dtype != torch.uint8:
        pred, target = to_uint8(pred), to_uint8(target)
    diff = (pred.to(torch.int16) - target.to(torch.int16)).abs_()
    return (diff < margin).flatten(1).sum(1)


def margin_accuracy_per_image(pred: Tensor, target: Tensor, margin: int = MARGIN) -> Tensor:
    """Per image, the fraction of its H*W*3 values whose 0..255 absolute error is < `margin`."""
    values_per_image = pred[0].numel()
    return margin_hits(pred, target, margin).double() / values_per_image


def margin_accuracy(pred: Tensor, target: Tensor, margin: int = MARGIN) -> float:
    """12-margin accuracy: the per-image fraction of values within the margin, averaged."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: predictions {tuple(pred.shape)} vs targets {tuple(target.shape)}")
    if pred.shape[0] == 0:
        raise ValueError("no images to score")
    return float(margin_accuracy_per_image(pred, target, margin).mean())


def mse_sum(pred: Tensor, target: Tensor) -> Tensor:
    """Sum of squared errors over all values (divide by the value count for the MSE)."""
    return torch.sum((pred - target) ** 2)


def cast_corrected_accuracy(pred: Tensor, target: Tensor, radius: int = 10, step: int = 2,
                            margin: int = MARGIN) -> float:
    """The 12-margin accuracy if each image's colour cast were corrected: per image, the best hit
    count over constant chroma offsets (Cb, Cr each in -radius..radius by `step`, in 0..255 units)
    added to every pixel, luma kept. A diagnosis, not a score: its gap to the plain accuracy is the
    error a per-image colour cast (white balance, a tinted light) accounts for; the rest is local.

    `pred` and `target` are uint8 N x 3 x H x W.
    """
    to_rgb = torch.tensor(CHROMA_TO_RGB, dtype=torch.float32)
    base = pred.float()
    best = margin_hits(pred, target, margin)
    for cb in range(-radius, radius + 1, step):
        for cr in range(-radius, radius + 1, step):
            offset = (to_rgb @ torch.tensor([float(cb), float(cr)])).view(1, 3, 1, 1)
            shifted = (base + offset).round_().clamp_(0, 255).to(torch.uint8)
            best = torch.maximum(best, margin_hits(shifted, target, margin))
    return float((best.double() / pred[0].numel()).mean())


def image_casts(images: Tensor) -> Tensor:
    """Each image's colour cast: its mean (Cb, Cr), N x 2, in the images' units (N x 3 x H x W)."""
    return images.double().mean(dim=(2, 3)) @ torch.tensor(RGB_TO_CHROMA, dtype=torch.float64).T


def r2_score(guess: Tensor, truth: Tensor) -> list[float]:
    """Per column of N x K values, the R² of `guess` as a prediction of `truth` (NaN where every
    truth in the column is equal: undefined)."""
    spread = truth.var(0, unbiased=False)
    r2 = 1 - ((guess - truth) ** 2).mean(0) / spread
    return torch.where(spread > 0, r2, torch.nan).tolist()


def cast_r2(pred: Tensor, target: Tensor) -> tuple[float, float]:
    """How much of the images' colour casts the estimations foresee: across images, the R² of each
    image's mean Cb and mean Cr in `pred` as a prediction of those in `target` (1: every image's cast
    foreseen; 0: no better than one mean cast for all; below 0: worse; NaN if all casts are equal).
    N x 3 x H x W, any dtype.
    """
    cb, cr = r2_score(image_casts(pred), image_casts(target))
    return cb, cr


def block_corrected_accuracy(pred: Tensor, target: Tensor, grid: int, margin: int = MARGIN) -> float:
    """The 12-margin accuracy with the image cut into `grid` x `grid` blocks and each block's mean
    error (per channel) removed (grid 1: the whole image's): an oracle for how much error is
    shared by whole regions (a background, a shirt) at that scale. uint8 N x 3 x H x W, with H and W
    multiples of `grid`.
    """
    h, w = pred.shape[-2:]
    if h % grid or w % grid:
        raise ValueError(f"a {h} x {w} image does not cut into {grid} x {grid} equal blocks")
    error = pred.float() - target.float()
    shared = F.interpolate(F.avg_pool2d(error, (h // grid, w // grid)), size=(h, w), mode="nearest")
    corrected = (pred.float() - shared).round_().clamp_(0, 255).to(torch.uint8)
    return margin_accuracy(corrected, target, margin)
