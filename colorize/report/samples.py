"""Qualitative figures: gray input / prediction / target, one column per image; and the same images
as arrays (samples.npz), from which the report lines up several runs' predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from colorize.training.metrics import to_uint8

# Drawn with Pillow, not matplotlib: every run draws its samples.png as it ends, and matplotlib's
# import and layout cost each run process about a second (benchmarks/overhead.py: startup).
GAP, PAD, FONT_SIZE = 4, 8, 12


SAMPLE_ARRAYS = "samples.npz"


def _hwc(x: Tensor) -> np.ndarray:
    """N x C x H x W in [-1, 1] -> uint8 N x H x W x C."""
    return to_uint8(x).permute(0, 2, 3, 1).cpu().numpy()


def save_sample_arrays(gray: Tensor, pred: Tensor, target: Tensor, path: Path) -> Path:
    """gray, prediction and target of the sample images as uint8 N x H x W x C arrays (a few KB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, gray=_hwc(gray), pred=_hwc(pred), target=_hwc(target))
    return path


def faces_figure(rows: list[tuple[str, np.ndarray]], gray: np.ndarray, target: np.ndarray, path: Path,
                 title: str = "") -> Path:
    """The same images across runs: the gray input, one row of predictions per run (`rows`: label,
    uint8 N x H x W x 3), and the target; a label left of each row, the title above."""
    from PIL import Image, ImageDraw, ImageFont

    grid = [("gray input", np.repeat(gray, 3, axis=-1))] + rows + [("target", target)]
    n, h, w = gray.shape[:3]
    font = ImageFont.load_default(FONT_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w, title_w = (max(measure.textlength(label, font=font) for label, _ in grid),
                        measure.textlength(title, font=font))
    left, top = PAD + int(label_w) + PAD, PAD + (2 * FONT_SIZE if title else 0)
    width = max(left + n * (w + GAP) - GAP + PAD, PAD + int(title_w) + PAD)
    canvas = Image.new("RGB", (width, top + len(grid) * (h + GAP) - GAP + PAD), "white")
    draw = ImageDraw.Draw(canvas)
    if title:  # centred above (placed by its box: a Pillow without FreeType has no text anchors)
        draw.text(((canvas.width - title_w) // 2, PAD), title, fill="black", font=font)
    for r, (label, images) in enumerate(grid):
        y = top + r * (h + GAP)
        _, top_px, right, bottom = draw.textbbox((0, 0), label, font=font)
        draw.text((left - PAD - right, y + (h - top_px - bottom) // 2), label, fill="black", font=font)
        for c in range(n):
            canvas.paste(Image.fromarray(np.ascontiguousarray(images[c])), (left + c * (w + GAP), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def save_samples(gray: Tensor, pred: Tensor, target: Tensor, path: Path, title: str = "") -> Path:
    """Save a 3-row grid (gray, prediction, target) for N images in [-1, 1] (N x C x H x W): the
    one-run case of :func:`faces_figure`."""
    return faces_figure([("prediction", _hwc(pred))], _hwc(gray), _hwc(target), path, title=title)
