"""A model's estimations for uint8 gray images: batched on a device, an ensemble averaged before rounding,
test-time views (mirror, 1-pixel shifts) mapped back and averaged, images of any size padded to what
the models take and cropped back. Used by `colorize-predict`."""

from __future__ import annotations

import math
from typing import Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F

from colorize.data.images import to_unit_range
from colorize.models import size_multiple
from colorize.training.augment import shift_images
from colorize.training.metrics import to_uint8

# test-time views: (dy, dx, mirrored); each prediction is mapped back before the views are averaged
TTA_VIEWS = ((0, 0, False), (0, 0, True), (1, 0, False), (-1, 0, False), (0, 1, False), (0, -1, False))


def tta_average(model: torch.nn.Module, x: torch.Tensor, views=TTA_VIEWS) -> torch.Tensor:
    """The mean prediction over mirrored and shifted copies of `x` (N x 1 x H x W in [-1, 1]), each
    mapped back (the border row or column a shift fills by reflection is approximate: padding the
    image by the shift first, so that only padding is lost or made up, measured no better on val)."""
    total = torch.zeros((), device=x.device)
    for dy, dx, mirrored in views:
        view = x.flip(3) if mirrored else x
        n = x.shape[0]
        if dy or dx:
            view = shift_images(view, torch.full((n,), dy), torch.full((n,), dx))
        out = model(view)
        if dy or dx:
            out = shift_images(out, torch.full((n,), -dy), torch.full((n,), -dx))
        total = total + (out.flip(3) if mirrored else out)
    return total / len(views)


def padded(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """`x` (N x C x H x W) padded on every side to the next multiple of `multiple` in height and width,
    by reflection (by repeating the edge where the image is too small to reflect), and the rows and
    columns of the original image in it. A U-Net's side must divide by 2^depth x stride; a photo's
    need not, and padding, unlike resizing, leaves every original pixel where it was."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return x, (slice(None), slice(None))
    top, left = pad_h // 2, pad_w // 2
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    x = F.pad(x, (left, pad_w - left, top, pad_h - top), mode=mode)
    return x, (slice(top, top + h), slice(left, left + w))


# pixels per forward pass: 500 faces of 80 x 80, as before; a photo of more pixels goes alone
BATCH_PIXELS = 500 * 80 * 80


@torch.inference_mode()
def predict(models: torch.nn.Module | Sequence[torch.nn.Module], gray_u8: torch.Tensor, device: torch.device,
            batch_pixels: int = BATCH_PIXELS, tta: bool = False) -> np.ndarray:
    """uint8 gray N x 1 x H x W (any size) -> uint8 RGB estimations N x H x W x 3, in batches of at most
    `batch_pixels` pixels (at least one image): a network's activations grow with the pixels in a batch,
    not with its images. Several `models` are an ensemble: their [-1, 1] predictions are averaged, then
    rounded once (`tta`: each model averaged over the views first)."""
    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    models = [model.to(device).eval() for model in models]
    multiple = math.lcm(*(size_multiple(model) for model in models))
    batch = max(1, batch_pixels // (gray_u8.shape[-2] * gray_u8.shape[-1]))
    out = []
    for start in range(0, gray_u8.shape[0], batch):
        x, (rows, cols) = padded(to_unit_range(gray_u8[start : start + batch].to(device)), multiple)
        total = cast(torch.Tensor, sum(tta_average(model, x) if tta else model(x) for model in models))
        out.append(to_uint8(total[..., rows, cols] / len(models)).cpu())
    return torch.cat(out).permute(0, 2, 3, 1).contiguous().numpy()
