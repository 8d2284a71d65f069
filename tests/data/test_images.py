"""Datasets decode real images once into tensors; bad folders and files fail naming the path."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorize.data.faces import load_faces, load_split
from colorize.data.images import ImageSet, Splits, list_images, read_images, to_unit_range
from colorize.data.samples import load_samples
from colorize.errors import DataError


def test_faces_decode_to_uint8_tensors_with_pil_luma(faces):
    splits = load_faces(str(faces), limit=20)
    assert isinstance(splits, Splits) and isinstance(splits.train, ImageSet) and splits.name == "faces"
    assert splits.train.rgb.shape == (20, 3, 80, 80) and splits.train.rgb.dtype == torch.uint8
    assert splits.val.gray.shape == (20, 1, 80, 80) and splits.val.gray.dtype == torch.uint8
    first = Path(splits.train.names[0])
    assert first.name == "0.jpg"  # natural order: 0, 1, 2, ... 10
    assert [Path(n).name for n in splits.train.names[:3]] == ["0.jpg", "1.jpg", "2.jpg"]
    with Image.open(first) as im:
        rgb = np.asarray(im.convert("RGB"))
        gray = np.asarray(im.convert("RGB").convert("L"))
    assert np.array_equal(splits.train.rgb[0].permute(1, 2, 0).numpy(), rgb)
    assert np.array_equal(splits.train.gray[0, 0].numpy(), gray)


def test_unit_range_scaling():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    assert to_unit_range(x).tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)


def test_test_split_is_gray_without_targets(faces):
    test = load_split(faces, "test", limit=5, require_color=False)
    assert test.rgb is None and test.gray.shape == (5, 1, 80, 80)


def test_samples_need_no_download_and_split_deterministically():
    a, b = load_samples(), load_samples()
    assert len(a.train) > 100 and len(a.val) > 20
    assert a.train.rgb.shape[1:] == (3, 80, 80)
    assert a.val.names == b.val.names and torch.equal(a.val.rgb, b.val.rgb)
    assert not set(a.train.names) & set(a.val.names)


@pytest.fixture
def image_dir(tmp_path, faces):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        shutil.copy(faces / "train" / "images" / f"{i}.jpg", folder / f"{i}.jpg")
    return folder


def test_missing_root_names_the_path():
    with pytest.raises(DataError, match="data.root='/nonexistent' does not exist"):
        load_faces("/nonexistent")


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="holds no images"):
        list_images(tmp_path)


def test_truncated_jpeg_names_the_file(image_dir):
    bad = image_dir / "1.jpg"
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cannot read image '.*1\.jpg'"):
        read_images(list_images(image_dir), require_color=True)


def test_non_image_file_names_the_file(image_dir):
    (image_dir / "notes.jpg").write_text("not an image")
    with pytest.raises(DataError, match=r"cannot read image '.*notes\.jpg'"):
        read_images(list_images(image_dir), require_color=True)


def test_grayscale_file_in_a_training_folder_names_the_file(image_dir):
    Image.open(image_dir / "0.jpg").convert("L").save(image_dir / "5.jpg")
    with pytest.raises(DataError, match=r"image '.*5\.jpg' is grayscale"):
        read_images(list_images(image_dir), require_color=True)


def test_wrong_size_image_names_the_file(image_dir):
    Image.open(image_dir / "0.jpg").resize((64, 64)).save(image_dir / "7.jpg")
    with pytest.raises(DataError, match=r"image '.*7\.jpg' is 64x64, but .* is 80x80"):
        read_images(list_images(image_dir), require_color=True)


def test_a_photo_stored_sideways_decodes_upright_and_groups_by_its_upright_size(tmp_path):
    """A camera stores a photo taken sideways as it was shot, with an EXIF orientation tag (6: turn
    90° clockwise to view); it decodes as a viewer shows it, and is grouped by that size, its header
    read alone. Before, it decoded sideways."""
    from colorize.data.images import group_by_size

    upright = np.zeros((30, 20, 3), dtype=np.uint8)  # 20 wide, 30 high, as viewed
    upright[:5] = (255, 0, 0)  # its top rows red
    stored = np.rot90(upright, 1)  # as the camera stored it: turned 90° anticlockwise (30 wide, 20 high)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "sideways.png", exif=exif.tobytes())
    Image.fromarray(upright).save(tmp_path / "plain.png")
    decoded = read_images([tmp_path / "sideways.png", tmp_path / "plain.png"], require_color=True)
    assert torch.equal(decoded.rgb[0], decoded.rgb[1])  # (PNG: lossless)
    assert group_by_size([tmp_path / "sideways.png", tmp_path / "plain.png"]) == [
        [tmp_path / "sideways.png", tmp_path / "plain.png"]]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert group_by_size([tmp_path / "plain.png", tmp_path / "broken.png"]) == [
        [tmp_path / "plain.png"], [tmp_path / "broken.png"]]  # its own group: decoding names it
    # EXIF that cannot be read (Pillow raises SyntaxError on it) leaves the pixels as stored, as a viewer does
    Image.fromarray(upright).save(tmp_path / "bad_exif.png", exif=b"Exif\x00\x00not a TIFF header")
    assert torch.equal(read_images([tmp_path / "bad_exif.png"], require_color=True).rgb[0], decoded.rgb[1])
    assert group_by_size([tmp_path / "bad_exif.png", tmp_path / "plain.png"]) == [
        [tmp_path / "bad_exif.png", tmp_path / "plain.png"]]


def test_a_folder_is_read_in_chunks_of_at_most_the_pixel_budget(tmp_path):
    """Five 10 x 8 images (80 pixels each): chunks of two under a budget of 200, each alone under one
    smaller than an image; in order, and the same pixels as one read of all."""
    from colorize.data.images import read_in_chunks

    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    files = list_images(tmp_path)
    whole = read_images(files, require_color=True)
    chunks = list(read_in_chunks(files, 200, require_color=True))
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert [name for chunk in chunks for name in chunk.names] == whole.names
    assert torch.equal(torch.cat([chunk.rgb for chunk in chunks]), whole.rgb)
    assert torch.equal(torch.cat([chunk.gray for chunk in chunks]), whole.gray)
    assert [len(chunk) for chunk in read_in_chunks(files, 79, require_color=True)] == [1] * 5
    assert [len(chunk) for chunk in read_in_chunks(files, 400, require_color=True)] == [5]


def test_split_cache_decodes_once_per_config_and_stays_bounded(monkeypatch):
    """Real splits (the bundled tiles): a second job with the same data config reuses the decoded
    tensors; a different config decodes anew; at most COLORIZE_DATA_CACHE are kept; 0 turns it off."""
    from colorize.data.cache import SplitCache
    from colorize.data.samples import load_samples

    def load(limit):
        return lambda: load_samples(limit=limit)

    cache = SplitCache()
    monkeypatch.setenv("COLORIZE_DATA_CACHE", "2")
    first = cache.get({"limit": 4}, load(4))
    assert cache.get({"limit": 4}, load(4)) is first and (cache.hits, cache.misses) == (1, 1)
    assert len(cache.get({"limit": 5}, load(5)).train) == 5 and cache.misses == 2
    cache.get({"limit": 6}, load(6))  # a third config: the least recently used one goes
    assert len(cache) == 2 and cache.get({"limit": 4}, load(4)) is not first
    monkeypatch.setenv("COLORIZE_FACES_ROOT", "/elsewhere")  # the faces moved: not the same data
    assert cache.get({"limit": 6}, load(6)) is not None and cache.misses == 5
    monkeypatch.setenv("COLORIZE_DATA_CACHE", "0")
    off = SplitCache()
    assert off.get({"limit": 4}, load(4)) is not off.get({"limit": 4}, load(4)) and len(off) == 0
