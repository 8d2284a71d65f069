"""The model family built from config: output shape and structure for the study's grid."""

import itertools

import pytest
import torch
from torch import nn

from colorize.config import model_of, build
from colorize.models import ConvNet, UNet, describe

GRID = list(itertools.product([1, 2, 4], [3, 5], [2, 4, 8, 16], [False, True], [False, True]))


@pytest.mark.parametrize("layers,kernel,channels,bn,tanh", GRID)
def test_output_is_rgb_at_input_size(make_cfg, layers, kernel, channels, bn, tanh):
    cfg = make_cfg(
        f"model.layers={layers}", f"model.kernel_size={kernel}", f"model.channels={channels}",
        f"model.batch_norm={bn}", f"model.tanh={tanh}",
    )
    model = build(cfg.model)
    x = torch.rand(2, 1, 80, 80) * 2 - 1
    out = model(x)
    assert out.shape == (2, 3, 80, 80)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == layers
    assert all(c.kernel_size == (kernel, kernel) for c in convs)
    assert [c.out_channels for c in convs] == [channels] * (layers - 1) + [3]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == (layers - 1 if bn else 0)
    if tanh:
        assert out.abs().max() <= 1.0
        assert isinstance(list(model.children())[-1], nn.Tanh)


def test_baseline_default_is_one_conv_three_by_three():
    model = model_of("baseline")
    assert isinstance(model, ConvNet) and isinstance(model_of("unet"), UNet)  # each option builds its model
    assert sum(p.numel() for p in model.parameters()) == 1 * 3 * 3 * 3 + 3


def test_describe_names_the_configuration():
    assert describe({"layers": 2, "kernel_size": 5, "channels": 16, "batch_norm": True, "tanh": True}) == (
        "2-conv k5 c16 +bn +tanh"
    )
    assert describe({"layers": 1, "kernel_size": 3, "channels": 8}) == "1-conv k3"
