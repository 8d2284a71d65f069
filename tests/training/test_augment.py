"""The augmentations' geometry (colorize/training/augment.py): reflection, shifts and mirroring."""

import pytest
import torch
import torch.nn.functional as F

from colorize.training.augment import mirror_some, reflect, shift_images, shift_some


def test_reflect_mirrors_without_repeating_the_edge():
    assert reflect(torch.tensor([-2, -1, 0, 3, 4, 5]), 4).tolist() == [2, 1, 0, 3, 2, 1]


@pytest.mark.parametrize("dy,dx", [(0, 0), (1, -2), (-3, 3), (2, 0)])
def test_shift_matches_reflection_padding_and_a_crop(dy, dx):
    t = torch.arange(2 * 3 * 6 * 7, dtype=torch.float32).view(2, 3, 6, 7)
    padded = F.pad(t, (3, 3, 3, 3), mode="reflect")
    expected = padded[:, :, 3 - dy : 3 - dy + 6, 3 - dx : 3 - dx + 7]  # content moved down by dy, right by dx
    got = shift_images(t, torch.tensor([dy, dy]), torch.tensor([dx, dx]))
    assert torch.equal(got, expected)


def test_shift_some_moves_gray_and_colour_together_in_any_dtype():
    gray = torch.randint(0, 256, (8, 1, 10, 10), dtype=torch.uint8)
    colour = gray.expand(-1, 3, -1, -1).clone()
    as_float = colour.float() / 127.5 - 1
    g, c, f = shift_some((gray, colour, as_float), torch.Generator().manual_seed(0), 2)
    assert g.dtype == torch.uint8 and c.dtype == torch.uint8
    assert torch.equal(c, g.expand(-1, 3, -1, -1)) and torch.equal(f, c.float() / 127.5 - 1)
    assert not torch.equal(g, gray)  # something moved
    same = shift_some((gray,), torch.Generator().manual_seed(0), 2)[0]
    assert torch.equal(same, g)  # the generator decides: a resumed run shifts the same images


def test_mirror_some_mirrors_the_same_images_in_every_tensor():
    x = torch.rand(16, 1, 4, 5)
    a, b = mirror_some((x, x.clone()), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    flipped = [not torch.equal(a[i], x[i]) for i in range(16)]
    assert 0 < sum(flipped) < 16 and all(torch.equal(a[i], x[i].flip(2)) for i in range(16) if flipped[i])
