"""A small real-photo dataset that needs no download: tiles of scikit-image's colour photos."""

from __future__ import annotations

from typing import Optional

import numpy as np

from colorize.config.data import SamplesDataConfig
from colorize.data.images import Splits, from_rgb_arrays

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")


def _photo(name: str) -> np.ndarray:
    from skimage import data as skdata  # imported lazily: only this dataset needs it

    if name == "motorcycle_left":
        return skdata.stereo_motorcycle()[0]
    return getattr(skdata, name)()


def tiles(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Non-overlapping size x size tiles, row by row (a partial border is dropped)."""
    h, w = image.shape[:2]
    corners = [(y, x) for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]
    return [image[y : y + size, x : x + size] for y, x in corners]


def load_samples(tile: int = SamplesDataConfig.tile, val_every: int = SamplesDataConfig.val_every,
                 limit: Optional[int] = None) -> Splits:
    """Tiles of every photo; each `val_every`-th tile (a deterministic split) is validation. The
    defaults are the config's (`data=samples`), so a direct call loads what a run trains on."""
    train: list[tuple[str, np.ndarray]] = []
    val: list[tuple[str, np.ndarray]] = []
    for photo in PHOTOS:
        for i, t in enumerate(tiles(_photo(photo), tile)):
            (val if i % val_every == val_every - 1 else train).append((f"{photo}/{i}", np.ascontiguousarray(t)))
    train, val = train[:limit] if limit else train, val[:limit] if limit else val
    return Splits(
        from_rgb_arrays([a for _, a in train], [n for n, _ in train]),
        from_rgb_arrays([a for _, a in val], [n for n, _ in val]),
        name="samples",
    )
