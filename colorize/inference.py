"""A model's estimations for uint8 gray images: batched on a device, an ensemble averaged before rounding,
test-time views (mirror, 1-pixel shifts) mapped back and averaged. Used by `colorize-predict`."""

from __future__ import annotations

from typing import Sequence, cast

import numpy as np
import torch

from colorize.data.images import to_unit_range
from colorize.training.augment import shift_images
from colorize.training.metrics import to_uint8

# test-time views: (dy, dx, mirrored); each prediction is mapped back before the views are averaged
TTA_VIEWS = ((0, 0, False), (0, 0, True), (1, 0, False), (-1, 0, False), (0, 1, False), (0, -1, False))


def tta_average(model: torch.nn.Module, x: torch.Tensor, views=TTA_VIEWS) -> torch.Tensor:
    """The mean prediction over mirrored and shifted copies of `x` (N x 1 x H x W in [-1, 1]), each
    mapped back (the border row or column a shift fills by reflection is approximate)."""
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


@torch.inference_mode()
def predict(models: torch.nn.Module | Sequence[torch.nn.Module], gray_u8: torch.Tensor, device: torch.device,
            batch_size: int = 500, tta: bool = False) -> np.ndarray:
    """uint8 gray N x 1 x H x W -> uint8 RGB estimations N x H x W x 3. Several `models` are an
    ensemble: their [-1, 1] predictions are averaged, then rounded once (`tta`: each model averaged
    over the views first)."""
    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    models = [model.to(device).eval() for model in models]
    out = []
    for start in range(0, gray_u8.shape[0], batch_size):
        x = to_unit_range(gray_u8[start : start + batch_size].to(device))
        total = cast(torch.Tensor, sum(tta_average(model, x) if tta else model(x) for model in models))
        out.append(to_uint8(total / len(models)).cpu())
    return torch.cat(out).permute(0, 2, 3, 1).contiguous().numpy()
