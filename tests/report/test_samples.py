"""The samples figure (every run's samples.png, the report's faces figures), drawn with Pillow."""

import numpy as np
import torch
from PIL import Image

from colorize.report.samples import GAP, faces_figure, save_samples


def _images(n, h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_each_image_sits_pixel_exact_in_its_row_and_column_under_a_label(tmp_path):
    gray = _images(3, 20, 24, 0)[..., :1]
    runs = [("run a", _images(3, 20, 24, 1)), ("a much longer label", _images(3, 20, 24, 2))]
    target = _images(3, 20, 24, 3)
    with Image.open(faces_figure(runs, gray, target, tmp_path / "f.png", title="a title")) as im:
        canvas = np.asarray(im.convert("RGB"))
    rows = [np.repeat(gray, 3, axis=-1), runs[0][1], runs[1][1], target]
    # the grid's bottom-right corner is PAD from the canvas's (the title is narrower than the grid)
    bottom, right = canvas.shape[0] - 8, canvas.shape[1] - 8
    top, left = bottom - 4 * 20 - 3 * GAP, right - 3 * 24 - 2 * GAP
    for r, images in enumerate(rows):
        for c in range(3):
            y, x = top + r * (20 + GAP), left + c * (24 + GAP)
            assert np.array_equal(canvas[y:y + 20, x:x + 24], images[c]), (r, c)
    assert (canvas[:, :left - 4] < 128).any()  # the labels, drawn left of the grid
    assert (canvas[:top - 4] < 128).any() and canvas.shape[1] < 400  # the title, above it


def test_a_runs_samples_are_gray_prediction_and_target_from_values_in_minus_one_one(tmp_path):
    rgb = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    path = save_samples(rgb[:, :1], -rgb, rgb, tmp_path / "s.png")
    with Image.open(path) as im:
        canvas = np.asarray(im.convert("RGB"))
    expected = ((rgb + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    bottom, right = canvas.shape[0] - 8, canvas.shape[1] - 8
    y, x = bottom - 8, right - 2 * 8 - GAP  # the target row's first image
    assert np.array_equal(canvas[y:y + 8, x:x + 8], expected[0])


def test_a_title_wider_than_the_grid_widens_the_figure(tmp_path):
    image = _images(1, 8, 8, 0)
    title = "a title far wider than one eight-pixel image and its label"
    with Image.open(faces_figure([], image[..., :1], image, tmp_path / "t.png", title=title)) as im:
        canvas = np.asarray(im.convert("RGB"))
    assert canvas.shape[1] > 250 and (canvas[:, -60:-8] < 128).any()  # the title's end is on the canvas
