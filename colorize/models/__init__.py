"""The model family: every model maps a 1xHxW gray image in [-1, 1] to 3xHxW RGB."""

from __future__ import annotations

from typing import Any

from colorize.models.convnet import ConvNet
from colorize.models.unet import UNet

__all__ = ["ConvNet", "UNet", "check_image_size", "default_run_name", "describe", "size_multiple"]


def size_multiple(model: object) -> int:
    """What every image side must be a multiple of for this model: a U-Net's 2^depth x stride (its
    levels halve the image); 1 for the plain nets, which take any size."""
    return model.multiple if isinstance(model, UNet) else 1


def check_image_size(model: object, height: int, width: int) -> None:
    """One line when the model cannot take images of this size: a U-Net's levels must halve them
    (the plain nets take any size)."""
    if isinstance(model, UNet):
        model.check_size(height, width)


def describe(model_cfg: object) -> str:
    """A short human name for a model config: ``2-conv k5 c16 +bn +tanh`` or ``unet d3 c16 s2 +bn chroma``."""
    get = model_cfg.get if hasattr(model_cfg, "get") else (lambda k, d=None: getattr(model_cfg, k, d))
    if get("depth") is not None:  # the U-Net
        parts = [f"unet d{get('depth')}", f"c{get('channels')}"]
        parts += [f"s{get('stride')}"] if (get("stride") or 1) > 1 else []
        parts += ["+bn"] if get("batch_norm") else []
        parts += ["chroma"] if get("chroma") else []
        parts += ["+ctx"] if get("global_context") else []
        return " ".join(parts)
    layers = get("layers")
    parts = [f"{layers}-conv", f"k{get('kernel_size')}"]
    if layers and layers > 1:
        parts.append(f"c{get('channels')}")
    parts += ["+bn"] if get("batch_norm") else []
    parts += ["+tanh"] if get("tanh") else []
    return " ".join(parts)


def default_run_name(cfg: Any) -> str:
    """A run's name unless `tracking.run_name` sets one: the model and its learning rate."""
    return f"{describe(cfg.model)} lr{float(cfg.optimizer.lr):g}"
