"""A small U-Net colorizer: encoder-decoder with skip connections, optionally predicting chroma.

With ``chroma=True`` the net predicts the two chroma channels (Cb, Cr of JPEG's full-range YCbCr)
and the RGB output is recombined with the input luma, so the gray information passes through
exactly and the net only has to learn colour.

With ``stride=2`` the net works at half resolution: the input is folded losslessly into 4
channels (pixel-unshuffle) and the head unfolds its output (pixel-shuffle). Chroma varies slowly
across a face, so this costs little accuracy and saves ~4x compute, which buys a wider, deeper net
within the same time budget. ``stride=4`` folds 4 x 4 pixels into 16 channels the same way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from colorize.errors import ColorizeError

# RGB = Y + M @ (Cb, Cr)  (ITU-R BT.601 full range, as JPEG and PIL use); all in [-1, 1] units
CHROMA_TO_RGB = ((0.0, 1.402), (-0.344136, -0.714136), (1.772, 0.0))
# (Cb, Cr) = M @ RGB, its inverse (the luma weights 0.299, 0.587, 0.114 give Y)
RGB_TO_CHROMA = ((-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def _block(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, o in ((cin, cout), (cout, cout)):
        layers += [nn.Conv2d(i, o, 3, padding=1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(o)] if batch_norm else []
        layers += [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _global_context(width: int) -> nn.Sequential:
    branch = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, width, 1), nn.ReLU(inplace=True), nn.Conv2d(width, width, 1)
    )
    last = branch[-1]
    assert isinstance(last, nn.Conv2d) and last.bias is not None
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return branch


def _twos(n: int) -> int:
    """How many times 2 divides n (> 0)."""
    return (n & -n).bit_length() - 1


class UNet(nn.Module):
    """`depth` 2x down-samplings; `channels` kernels at the top level, doubled per level; the top
    level works at 1/`stride` of the image resolution."""

    def __init__(
        self, *, depth: int, channels: int, batch_norm: bool, chroma: bool, stride: int, global_context: bool
    ) -> None:
        # no defaults here: they live in colorize/config/model.py (build one with config.model_of); a
        # checkpoint saved before a key existed gets its default from colorize/config/compat.py
        super().__init__()
        widths = [channels * 2**i for i in range(depth + 1)]
        self.fold = nn.PixelUnshuffle(stride) if stride > 1 else nn.Identity()
        self.unfold = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        self.down = nn.ModuleList([_block(stride * stride, widths[0], batch_norm)])
        self.down.extend(_block(widths[i], widths[i + 1], batch_norm) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        # Why: a face's colours hang together (one light, one skin tone, one white balance), but a
        # convolution only sees its receptive field. The image's mean bottleneck features, through
        # a small MLP, are added to every bottleneck position; zero-initialised, the branch starts
        # as the identity and costs two 1x1 convs on a 1x1 map.
        self.context = _global_context(widths[-1]) if global_context else None
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(depth)))
        self.merge = nn.ModuleList(_block(2 * widths[i], widths[i], batch_norm) for i in reversed(range(depth)))
        self.chroma = chroma
        self.head = nn.Conv2d(widths[0], (2 if chroma else 3) * stride * stride, 1)
        self.register_buffer("to_rgb", torch.tensor(CHROMA_TO_RGB), persistent=False)
        self.depth, self.stride = depth, stride
        self.multiple = stride * 2**depth  # the image side must divide into the deepest level's pixels

    def check_size(self, height: int, width: int) -> None:
        """One line when images of this size do not fold into the deepest level's pixels, naming the
        depths that would (training checks its data before it opens a run; predict pads instead)."""
        if not height % self.multiple and not width % self.multiple:
            return
        side = math.gcd(height, width)
        deepest = _twos(side // self.stride) if not side % self.stride else 0
        allowed = (f"with these images, model.depth <= {deepest} at model.stride={self.stride}" if deepest else
                   f"no model.depth fits them at model.stride={self.stride}")
        raise ColorizeError(f"model.depth={self.depth} does not suit {width}x{height} images: model.stride x "
                            f"2^model.depth = {self.multiple} must divide their height and width; {allowed}")

    def forward(self, x: Tensor) -> Tensor:
        self.check_size(x.shape[-2], x.shape[-1])
        skips = []
        h = self.fold(x)
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else self.pool(h))
            skips.append(h)
        if self.context is not None:
            h = h + self.context(h)  # the bottleneck is not a skip: nothing else reads it
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            h = merge(torch.cat([up(h), skip], dim=1))
        out = self.unfold(self.head(h))
        if not self.chroma:
            return out
        # (N, 2, H, W) chroma -> (N, 3, H, W) RGB offsets, added to the luma in every channel
        return x + torch.einsum("kc,nchw->nkhw", self.to_rgb, out)
