"""A course-starter style training loop, for comparison: PIL decode per item, DataLoader, NCHW."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class StarterFaces(Dataset):
    """Decodes each image with PIL every time it is indexed, as the course's starter code does."""

    def __init__(self, folder: Path, limit: int | None = None) -> None:
        files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
        self.files = files[:limit] if limit else files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as im:
            rgb = im.convert("RGB")
            gray = np.asarray(rgb.convert("L"), dtype=np.float32)
            color = np.asarray(rgb, dtype=np.float32)
        x = torch.from_numpy(gray / 127.5 - 1.0).unsqueeze(0)
        y = torch.from_numpy(color / 127.5 - 1.0).permute(2, 0, 1)
        return x, y


def starter_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, dataset: StarterFaces,
                  batch_size: int, seed: int) -> float:
    """One epoch; returns the mean training loss over batches."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)
