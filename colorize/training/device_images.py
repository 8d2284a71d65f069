"""The images a run trains on, decoded once and kept on its device, and each epoch's batches drawn
from them by indexing (no per-item Python work, no host copies)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from colorize.data.images import ImageSet, to_unit_range
from colorize.training.augment import mirror_some, shift_some
from colorize.training.options import FitOptions


@dataclass
class DeviceImages:
    """An ImageSet on the training device: float inputs/targets in [-1, 1] (channels-last) and the
    targets' original bytes (for the 12-margin metric without re-quantising every batch)."""

    gray: Tensor
    rgb: Tensor
    rgb_bytes: Tensor

    @classmethod
    def from_set(cls, images: ImageSet, device: torch.device) -> "DeviceImages":
        if images.rgb is None:
            raise ValueError("training and validation images need colour targets")

        def prep(x: Tensor) -> Tensor:
            return to_unit_range(x.to(device)).contiguous(memory_format=torch.channels_last)

        rgb_bytes = images.rgb.to(device).contiguous(memory_format=torch.channels_last)
        return cls(prep(images.gray), prep(images.rgb), rgb_bytes)

    def __len__(self) -> int:
        return self.gray.shape[0]


def batches(data: DeviceImages, batch_size: int, generator: torch.Generator, options: FitOptions):
    """An epoch's batches in a seeded random order, augmented as `options` say (mirroring, shifts:
    drawn from `generator`, so a resumed run augments the same images)."""
    order = epoch_orders(data, [generator])[0]
    for start in range(0, len(data), batch_size):
        batch = gather(data, order[start : start + batch_size])
        if options.hflip:
            batch = mirror_some(batch, generator)
        if options.shift:
            batch = shift_some(batch, generator, options.shift)
        yield batch


def group_batches(data: DeviceImages, batch_size: int, generators: Sequence[torch.Generator], options: FitOptions):
    """A fused group's batches, stacked (members, batch, ...): member g's are exactly `batches(data,
    batch_size, generators[g], options)`'s. Without augmentation one index per tensor serves every
    member (three gathers per step, not three per member); with it, each member's own draws."""
    if options.hflip or options.shift:
        streams = [batches(data, batch_size, g, options) for g in generators]
        for member_batches in zip(*streams):
            yield tuple(torch.stack(parts) for parts in zip(*member_batches))
        return
    orders = epoch_orders(data, generators)
    for start in range(0, len(data), batch_size):
        yield gather(data, orders[:, start : start + batch_size])


def epoch_orders(data: DeviceImages, generators: Sequence[torch.Generator]) -> Tensor:
    """Each generator's random order of the images for an epoch, (len(generators), len(data)) on the
    images' device: drawn on the host (CPU generators) and copied without waiting for the device (a
    blocking copy to CUDA would wait for every queued kernel first: augment.py)."""
    orders = torch.stack([torch.randperm(len(data), generator=g) for g in generators])
    return orders.to(data.gray.device, non_blocking=True)


def gather(data: DeviceImages, idx: Tensor) -> tuple[Tensor, ...]:
    """(gray, colour, colour bytes) of the images at `idx`: (batch,) for a trial, or (members, batch)
    for a fused group, whose batches come out stacked (members, batch, ...) from one gather per tensor."""
    tensors = (data.gray, data.rgb, data.rgb_bytes)
    if idx.dim() == 1:
        return tuple(t.index_select(0, idx) for t in tensors)
    flat = idx.reshape(-1)
    return tuple(t.index_select(0, flat).unflatten(0, idx.shape) for t in tensors)
