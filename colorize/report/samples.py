"""Qualitative figures: gray input / prediction / target, one column per image; and the same images
as arrays (samples.npz), from which the report lines up several runs' predictions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402

from colorize.training.metrics import to_uint8  # noqa: E402


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
    uint8 N x H x W x 3), and the target."""
    grid = [("gray input", gray[..., 0])] + rows + [("target", target)]
    n = gray.shape[0]
    fig, axes = plt.subplots(len(grid), n, figsize=(1.4 * n + 1.2, 1.45 * len(grid)), squeeze=False)
    for r, (label, images) in enumerate(grid):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def save_samples(gray: Tensor, pred: Tensor, target: Tensor, path: Path, title: str = "") -> Path:
    """Save a 3-row grid (gray, prediction, target) for N images in [-1, 1] (N x C x H x W): the
    one-run case of :func:`faces_figure`."""
    return faces_figure([("prediction", _hwc(pred))], _hwc(gray), _hwc(target), path, title=title)
