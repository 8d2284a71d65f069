"""The study's plain convolutional net, built from its config."""

from __future__ import annotations

from torch import Tensor, nn


class ConvNet(nn.Sequential):
    """`layers` same-padded convs; ReLU (and optional BatchNorm) between; 3 output channels.

    layers=1 is a single 1->3 conv. Hidden convs have `channels` kernels; `tanh` squashes the
    output into [-1, 1].
    """

    def __init__(self, *, layers: int, kernel_size: int, channels: int, batch_norm: bool, tanh: bool) -> None:
        # no defaults here: they live in colorize/config/model.py (build one with config.model_of)
        modules: list[nn.Module] = []
        in_ch = 1
        for _ in range(layers - 1):
            modules.append(nn.Conv2d(in_ch, channels, kernel_size, padding=kernel_size // 2))
            if batch_norm:
                modules.append(nn.BatchNorm2d(channels))
            modules.append(nn.ReLU(inplace=True))
            in_ch = channels
        modules.append(nn.Conv2d(in_ch, 3, kernel_size, padding=kernel_size // 2))
        if tanh:
            modules.append(nn.Tanh())
        super().__init__(*modules)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - same as Sequential, typed
        return super().forward(x)
