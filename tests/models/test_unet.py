"""The U-Net (colorize/models/unet.py): luma kept, strides, sizes it refuses, global context."""

import pytest
import torch

from colorize.config import model_of
from colorize.errors import ColorizeError


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("chroma", [True, False])
def test_unet_keeps_the_luma_when_predicting_chroma(chroma, stride):
    model = model_of("unet", depth=3 if stride < 4 else 2, channels=4, chroma=chroma, stride=stride)
    x = torch.rand(2, 1, 80, 80) * 2 - 1
    out = model(x)
    assert out.shape == (2, 3, 80, 80)
    if chroma:  # the BT.601 luma of the output is the input, whatever the chroma
        luma = 0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]
        torch.testing.assert_close(luma, x[:, 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("depth,stride,size,allowed", [
    (3, 4, (80, 80), "with these images, model.depth <= 2 at model.stride=4"),  # 80 / 4 = 20 -> 10 -> 5 -> no
    (3, 2, (24, 40), "with these images, model.depth <= 2 at model.stride=2"),  # (height, width); gcd 8 = 2 x 2^2
    (1, 2, (7, 9), "no model.depth fits them at model.stride=2"),  # odd sides: neither folded nor halved
    (1, 1, (5, 10), "no model.depth fits them at model.stride=1"),  # 5 rows do not halve
])
def test_unet_names_an_image_size_its_levels_cannot_halve_and_the_depths_that_would(depth, stride, size, allowed):
    model = model_of("unet", depth=depth, channels=4, stride=stride)
    multiple = stride * 2**depth
    with pytest.raises(ColorizeError) as refused:
        model(torch.zeros(1, 1, *size))
    assert str(refused.value) == (f"model.depth={depth} does not suit {size[1]}x{size[0]} images: model.stride x "
                                  f"2^model.depth = {multiple} must divide their height and width; {allowed}")


def test_half_resolution_unet_sees_every_input_pixel():
    """stride=2 folds pixels into channels (lossless): changing one input pixel changes the output."""
    torch.manual_seed(0)
    model = model_of("unet", depth=2, channels=4, stride=2, chroma=False).eval()
    x = torch.rand(1, 1, 80, 80) * 2 - 1
    for y_, x_ in [(0, 0), (0, 1), (1, 0), (1, 1), (79, 79)]:  # all four phases of a 2x2 fold
        bumped = x.clone()
        bumped[0, 0, y_, x_] += 0.5
        assert not torch.equal(model(x), model(bumped)), (y_, x_)


def test_global_context_starts_as_the_plain_unet_and_sees_the_whole_image():
    """model.global_context adds a zero-initialised branch: with the plain net's weights the output
    is the plain net's. Once trained (here: non-zero weights), a pixel far outside every conv's
    receptive field changes the output at the opposite corner; without the branch it cannot."""
    torch.manual_seed(0)
    kw = dict(depth=1, channels=4, stride=1, chroma=False)
    plain, ctx = model_of("unet", **kw).eval(), model_of("unet", **kw, global_context=True).eval()
    ctx.load_state_dict(plain.state_dict(), strict=False)  # the branch's own weights stay at init
    x = torch.rand(1, 1, 80, 80) * 2 - 1
    torch.testing.assert_close(ctx(x), plain(x), atol=0, rtol=0)
    bumped = x.clone()
    bumped[0, 0, 0, 0] += 1.0
    assert torch.equal(plain(x)[..., -1, -1], plain(bumped)[..., -1, -1])  # beyond its reach
    torch.nn.init.normal_(ctx.context[-1].weight)
    assert not torch.equal(ctx(x)[..., -1, -1], ctx(bumped)[..., -1, -1])
