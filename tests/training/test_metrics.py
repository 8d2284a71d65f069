"""12-margin accuracy and MSE against hand-computed values."""

import math

import pytest
import torch

from colorize.training.metrics import (block_corrected_accuracy, cast_corrected_accuracy, cast_r2, margin_accuracy,
                                       margin_accuracy_per_image, margin_hits, mse_sum, to_uint8)


def u8(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.uint8)


def test_to_uint8_maps_the_unit_range_to_bytes():
    x = torch.tensor([-1.0, -2.0, 0.0, 1.0, 3.0, 2 * 100 / 255 - 1])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255, 100]  # 127.5 rounds half to even: 128


def test_exact_byte_values_survive_the_round_trip():
    values = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(values.float() / 127.5 - 1), values)


def test_difference_of_11_counts_and_12_does_not():
    target = u8([[[[100, 100, 100, 100]]]])  # one image, 1x1x4 values
    pred = u8([[[[111, 112, 89, 88]]]])  # |diff| = 11, 12, 11, 12
    assert margin_hits(pred, target).tolist() == [2]
    assert margin_accuracy(pred, target) == pytest.approx(0.5)


def test_accuracy_is_the_mean_of_per_image_fractions():
    target = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    pred = target.clone()
    pred[0, 0, 0, 0] = 200  # image 0: 11 of 12 values within the margin
    pred[1] = 50  # image 1: none within the margin
    per_image = margin_accuracy_per_image(pred, target)
    assert per_image.tolist() == pytest.approx([11 / 12, 0.0])
    assert margin_accuracy(pred, target) == pytest.approx((11 / 12 + 0) / 2)


def test_float_inputs_are_compared_in_bytes():
    target = torch.full((1, 3, 1, 1), 2 * 100 / 255 - 1)  # byte 100
    pred = torch.tensor([2 * 111 / 255 - 1, 2 * 112 / 255 - 1, 2 * 88.6 / 255 - 1]).view(1, 3, 1, 1)
    # bytes 111 (|11|), 112 (|12|), 89 (88.6 rounds to 89: |11|)
    assert margin_hits(pred, target).tolist() == [2]


def test_accuracy_rejects_shape_mismatch_and_empty_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        margin_accuracy(u8([[1, 2]]), u8([[1, 2, 3]]))
    with pytest.raises(ValueError, match="no images"):
        margin_accuracy(torch.zeros(0, 3, 2, 2), torch.zeros(0, 3, 2, 2))


def test_mse_sum_by_hand():
    pred = torch.tensor([[0.5, -0.5], [1.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert float(mse_sum(pred, target)) == pytest.approx(0.25 + 0.25 + 1.0)


def test_cast_corrected_accuracy_removes_a_constant_chroma_offset_only():
    """Image 0 has a blue cast: B is 24 too high and G 5 too low (a Cb offset of about 13.5), so 2 of
    its 3 values per pixel hit; image 1 is exact. A Cb offset of -10 puts image 0 back within the
    margin: B 124 - 17.72 -> 106, G 95 + 3.44 -> 98. A Cb of -4 is not enough (B 124 - 7.09 -> 117).
    A local error is not a cast: it stays."""
    truth = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    cast = truth.clone()
    cast[0, 1] -= 5
    cast[0, 2] += 24
    assert margin_accuracy(cast, truth) == pytest.approx((2 / 3 + 1) / 2)
    assert cast_corrected_accuracy(cast, truth) == pytest.approx(1.0)
    assert cast_corrected_accuracy(cast, truth, radius=4) == pytest.approx((2 / 3 + 1) / 2)
    local = truth.clone()
    local[0, :, 0, 0] = 200  # two pixels of 16 wrong in all three values; the others right
    local[0, :, 0, 1] = 0
    assert cast_corrected_accuracy(local, truth) == pytest.approx((14 / 16 + 1) / 2)


def test_cast_r2_by_hand():
    """Two 1-pixel images: a gray one (Cb, Cr = 0, 0) and one with Cb = Cr = 10, whose RGB is
    Y + CHROMA_TO_RGB @ (10, 10) for Y = 100. The casts' variance across images is 25 per channel."""
    truth = torch.tensor([[100.0, 100.0, 100.0], [100 + 14.02, 100 - 10.58272, 100 + 17.72]]).view(2, 3, 1, 1)
    assert cast_r2(truth, truth) == pytest.approx((1.0, 1.0))
    gray = torch.full((2, 3, 1, 1), 100.0)  # casts 0, 0 against 0, 10: squared errors 0 and 100, mean 50
    assert cast_r2(gray, truth) == pytest.approx((1 - 50 / 25, 1 - 50 / 25), abs=1e-4)
    middle = (truth[0] + truth[1]) / 2  # both images get the mean cast, 5: R² 0 by definition
    assert cast_r2(middle.expand(2, -1, -1, -1), truth) == pytest.approx((0.0, 0.0), abs=1e-4)
    assert all(math.isnan(r2) for r2 in cast_r2(truth, gray))  # one cast for all truths: undefined


def test_block_corrected_accuracy_removes_what_a_block_shares_only():
    """One 3 x 4 x 4 image of 100s, cut into 2 x 2 blocks of 2 x 2. Red is off by 10, 30, 10, 30 in
    the top-left block (mean 20) and by 30, 0, 0, -30 in the top-right one (mean 0): 12 of red's 16
    values hit. With each block's mean error removed the top-left block hits everywhere (-10, +10);
    the top-right block's local errors stay. The image's mean red error, 5, moves nothing in or out."""
    truth = torch.full((1, 3, 4, 4), 100, dtype=torch.uint8)
    pred = truth.clone()
    pred[0, 0, :2] = torch.tensor([[110, 130, 130, 100], [110, 130, 100, 70]], dtype=torch.uint8)
    assert margin_accuracy(pred, truth) == pytest.approx((12 + 32) / 48)
    assert block_corrected_accuracy(pred, truth, grid=2) == pytest.approx((14 + 32) / 48)
    assert block_corrected_accuracy(pred, truth, grid=1) == pytest.approx((12 + 32) / 48)
    assert block_corrected_accuracy(pred, truth, grid=4) == pytest.approx(1.0)  # 1 x 1 blocks: all removed
    with pytest.raises(ValueError, match="does not cut into 3 x 3"):
        block_corrected_accuracy(pred, truth, grid=3)
