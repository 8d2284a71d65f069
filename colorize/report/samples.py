"""Qualitative figures: gray input / prediction / target, one column per image."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from colorize.training.metrics import to_uint8  # noqa: E402


def save_samples(gray: Tensor, pred: Tensor, target: Tensor, path: Path, title: str = "") -> Path:
    """Save a 3-row grid (gray, prediction, target) for N images in [-1, 1] (N x C x H x W)."""
    rows = [("gray input", to_uint8(gray)), ("prediction", to_uint8(pred)), ("target", to_uint8(target))]
    n = gray.shape[0]
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.2), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            img = images[c].permute(1, 2, 0).cpu().numpy()
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
