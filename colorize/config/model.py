"""The `model` group: conf/model/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass

from colorize.config.checks import Checked


@dataclass
class ConvNetConfig(Checked):
    """The study's plain conv net: `layers` convs, ReLU between, optional BN and final tanh."""

    GROUP = "model"
    _target_: str = "colorize.models.convnet.ConvNet"
    layers: int = 1
    kernel_size: int = 3
    channels: int = 8
    batch_norm: bool = False
    tanh: bool = False

    def __post_init__(self) -> None:
        self.require(self.layers >= 1, "layers", "must be an integer >= 1")
        self.require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size",
                     "must be an odd integer >= 1 (same padding keeps the image size)")
        self.require(self.channels >= 1, "channels", "must be an integer >= 1")


@dataclass
class UNetConfig(Checked):
    """A small U-Net (skip connections) that predicts chroma and keeps the input luma."""

    GROUP = "model"
    _target_: str = "colorize.models.unet.UNet"
    depth: int = 3  # 2x down-samplings (80 -> 10 pixels at depth 3)
    channels: int = 16  # kernels at full resolution, doubled at every level
    batch_norm: bool = True
    chroma: bool = True  # predict Cb/Cr and recombine with the input luma (else RGB directly)
    stride: int = 1  # 2 / 4: work at 1/2 or 1/4 resolution (pixel-unshuffle in, pixel-shuffle out)
    global_context: bool = False  # add the image's mean bottleneck features (through an MLP) everywhere

    def __post_init__(self) -> None:
        self.require(1 <= self.depth <= 4, "depth", "must be 1..4 (80x80 images halve per level)")
        self.require(self.channels >= 1, "channels", "must be an integer >= 1")
        self.require(self.stride in (1, 2, 4), "stride", "must be 1, 2 or 4")


OPTIONS = {"baseline": ConvNetConfig, "unet": UNetConfig}
