"""The training losses (colorize/training/losses.py) against hand-computed values."""

import math

import pytest
import torch

from colorize.training.losses import MARGIN, cast_split, charbonnier, l1, margin, mse

# errors e = pred - target of 0, 0.1, -0.3 and 1.0
PRED = torch.tensor([0.5, 0.1, -0.3, 1.0])
TARGET = torch.tensor([0.5, 0.0, 0.0, 0.0])


def test_mse_and_l1_by_hand():
    assert float(mse(PRED, TARGET)) == pytest.approx((0 + 0.01 + 0.09 + 1.0) / 4)  # 0.275
    assert float(l1(PRED, TARGET)) == pytest.approx((0 + 0.1 + 0.3 + 1.0) / 4)  # 0.35


def test_charbonnier_by_hand():
    expected = (0.1 + math.sqrt(0.02) + math.sqrt(0.10) + math.sqrt(1.01)) / 4  # sqrt(e^2 + 0.1^2)
    assert float(charbonnier(PRED, TARGET, epsilon=0.1)) == pytest.approx(expected)  # 0.39066
    assert float(charbonnier(PRED, TARGET, epsilon=1e-9)) == pytest.approx(0.35)  # -> L1 as epsilon -> 0


def test_cast_split_by_hand():
    # two images, one channel, 1 x 2 values each: errors (0.3, 0.1) and (-0.2, 0.2)
    pred = torch.tensor([[[[0.3, 0.1]]], [[[-0.2, 0.2]]]])
    target = torch.zeros(2, 1, 1, 2)
    # casts (mean errors) 0.2 and 0.0; local errors (0.1, -0.1) and (-0.2, 0.2)
    local, cast = (0.1 + 0.1 + 0.2 + 0.2) / 4, (0.2 + 0.0) / 2  # 0.15 and 0.1 as epsilon -> 0
    assert float(cast_split(pred, target, epsilon=1e-9)) == pytest.approx(local + cast)  # 0.25
    assert float(cast_split(pred, target, epsilon=1e-9, cast_weight=0.5)) == pytest.approx(local + 0.05)
    smooth = (2 * math.sqrt(0.02) + 2 * math.sqrt(0.05)) / 4 + (math.sqrt(0.05) + 0.1) / 2  # epsilon 0.1
    assert float(cast_split(pred, target, epsilon=0.1)) == pytest.approx(smooth)


def test_cast_split_with_blocks_by_hand():
    pred = torch.tensor([[[[0.4, 0.2, -0.1, -0.3]]]])  # one image, 1 x 4 values; blocks of side 2
    # cast 0.05; block means 0.3 and -0.2, so bands +-0.25; local errors +-0.1 around the block means
    expected = 0.05 + 0.25 + 0.1
    assert float(cast_split(pred, torch.zeros(1, 1, 1, 4), epsilon=1e-9, blocks=[2])) == pytest.approx(expected)
    assert float(cast_split(pred, torch.zeros(1, 1, 1, 4), epsilon=1e-9, blocks=[4, 2])) == pytest.approx(expected)


def test_cast_split_gives_local_errors_a_gradient_under_a_large_cast():
    """Under Charbonnier on e, a cast larger than every local error gives all values one gradient
    (the sign of the cast); split, the values still learn their local colour."""
    pred = torch.tensor([[[[0.5, 0.3]]]], requires_grad=True)  # cast 0.4, local +-0.1
    target = torch.zeros(1, 1, 1, 2)
    (plain,) = torch.autograd.grad(charbonnier(pred, target, epsilon=1e-6), pred)
    (split,) = torch.autograd.grad(cast_split(pred, target, epsilon=1e-6), pred)
    assert plain[0, 0, 0, 0] == pytest.approx(plain[0, 0, 0, 1])  # no local signal
    assert split[0, 0, 0, 0] > split[0, 0, 0, 1]  # the value above its image's cast is pulled down more


def test_margin_surrogate_by_hand():
    expected = (0 + (1 - math.exp(-1)) + (1 - math.exp(-9)) + (1 - math.exp(-100))) / 4  # sigma 0.1
    assert float(margin(PRED, TARGET, sigma=0.1)) == pytest.approx(expected)  # 0.65800
    assert float(margin(PRED, TARGET, sigma=0.1, mse_weight=0.5)) == pytest.approx(expected + 0.5 * 0.275)
    assert MARGIN == pytest.approx(12 / 127.5)  # the default sigma: the metric's margin in [-1, 1] units


def test_margin_surrogate_is_flat_at_the_truth_and_saturates_far_off():
    e = torch.tensor([0.0, MARGIN, 10 * MARGIN], requires_grad=True)
    for i in range(3):
        loss = margin(e[i : i + 1], torch.zeros(1))
        (grad,) = torch.autograd.grad(loss, e)
        assert grad[i] >= 0
        if i == 0:
            assert grad[i] == 0 and float(loss.detach()) == 0
        if i == 1:
            assert float(loss.detach()) == pytest.approx(1 - math.exp(-1))
        if i == 2:
            assert grad[i] < 1e-30 and float(loss.detach()) == pytest.approx(1.0)
