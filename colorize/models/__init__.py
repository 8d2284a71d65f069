"""The model family: every model maps a 1xHxW gray image in [-1, 1] to 3xHxW RGB."""

from colorize.models.convnet import ConvNet

__all__ = ["ConvNet"]
