"""Augmentations of a training batch, drawn from the run's generator (so a resumed run draws the
same ones): gray inputs and colour targets are always transformed together.

The draws are made on the host (the generator is a CPU one) and copied to the device with
`non_blocking=True`: a blocking copy to CUDA waits for every queued kernel first, which would make
each augmented step wait for the one before it (tests/training/test_device_sync.py, on a GPU)."""

from __future__ import annotations

import torch
from torch import Tensor


def mirror_some(batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, ...]:
    """Mirror (left-right) the same random half of the images in every tensor of `batch`."""
    n = batch[0].shape[0]
    flip = (torch.rand(n, generator=generator) < 0.5).to(batch[0].device, non_blocking=True).view(n, 1, 1, 1)
    return tuple(torch.where(flip, t.flip(3), t) for t in batch)


def reflect(index: Tensor, size: int) -> Tensor:
    """Indices outside 0..size-1 mirrored back, the edge not repeated (torch's "reflect" padding)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def shift_images(t: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Translate image i of N x C x H x W `t` by (dy[i], dx[i]) pixels (content moves down/right for
    positive values), filling the border by reflection. Any dtype (uint8 too); channels-last out."""
    n, _, h, w = t.shape
    dev = t.device
    rows = reflect(torch.arange(h) - dy[:, None], h).to(dev, non_blocking=True)  # n x h: each output row's source
    cols = reflect(torch.arange(w) - dx[:, None], w).to(dev, non_blocking=True)  # n x w
    picked = t[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # n x h x w x c
    return picked.permute(0, 3, 1, 2)  # a channels-last view


def shift_some(batch: tuple[Tensor, ...], generator: torch.Generator, pixels: int) -> tuple[Tensor, ...]:
    """Translate each image by a random (dy, dx) in [-pixels, pixels]², the same for every tensor
    of `batch` (gray, colour, colour bytes)."""
    n = batch[0].shape[0]
    dy = torch.randint(-pixels, pixels + 1, (n,), generator=generator)
    dx = torch.randint(-pixels, pixels + 1, (n,), generator=generator)
    return tuple(shift_images(t, dy, dx) for t in batch)
