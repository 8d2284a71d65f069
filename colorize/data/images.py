"""Decode image files once into uint8 tensors; convert to the model's [-1, 1] range in bulk."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from colorize.errors import DataError

log = logging.getLogger("colorize")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
ORIENTATION, SIDEWAYS = 0x0112, (5, 6, 7, 8)  # the EXIF tag a camera stores a turned photo with; its turns by 90°


@dataclass(frozen=True)
class ImageSet:
    """N images as uint8 tensors: `gray` N x 1 x H x W (luma), `rgb` N x 3 x H x W.

    `rgb` is None for gray-only inputs (the course's test split has no ground truth).
    """

    gray: Tensor
    rgb: Optional[Tensor]
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.gray.shape[0]

    def subset(self, n: int) -> "ImageSet":
        rgb = None if self.rgb is None else self.rgb[:n]
        return ImageSet(self.gray[:n], rgb, self.names[:n])


@dataclass(frozen=True)
class Splits:
    train: ImageSet
    val: ImageSet
    name: str = "data"


def to_unit_range(x: Tensor) -> Tensor:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """The gray image PIL's ``convert("L")`` gives for an H x W x 3 uint8 array."""
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def from_rgb_arrays(arrays: list[np.ndarray], names: list[str]) -> ImageSet:
    """Stack H x W x 3 uint8 arrays into an ImageSet (gray = PIL luma)."""
    rgb = np.stack(arrays)
    gray = np.stack([luma(a) for a in arrays])[:, None]
    return ImageSet(torch.from_numpy(gray), torch.from_numpy(rgb).permute(0, 3, 1, 2).contiguous(), names)


def list_images(folder: Path, limit: Optional[int] = None) -> list[Path]:
    """Image files in `folder`, in natural order (2.jpg before 10.jpg); DataError if none."""
    if not folder.is_dir():
        raise DataError(f"data folder {str(folder)!r} {'is not a folder' if folder.exists() else 'does not exist'}")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not files:
        raise DataError(
            f"data folder {str(folder)!r} holds no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})"
        )
    files.sort(key=lambda p: (len(p.stem), p.stem) if p.stem.isdigit() else (float("inf"), p.stem))
    return files[:limit] if limit else files


ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _decode(path: Path) -> tuple[np.ndarray, str]:
    """One file -> (H x W x 3 uint8, PIL mode); DataError naming the file if unreadable. An image
    with transparency is composited onto white (what a viewer shows), not stripped of its alpha."""
    try:
        with Image.open(path) as opened:
            # upright, as a viewer shows it: a phone stores a photo taken sideways with an orientation tag
            im = ImageOps.exif_transpose(opened) if _orientation(opened) != 1 else opened
            mode = im.mode
            if mode in ALPHA_MODES or (mode == "P" and "transparency" in im.info):
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                flat = Image.alpha_composite(white, im.convert("RGBA")).convert("RGB")
                return np.asarray(flat), "PA" if mode == "P" else mode  # (a mode that says: had alpha)
            return np.asarray(im.convert("RGB")), mode
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from None


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation an opened image was stored with: 1 (upright) without one, or where its
    EXIF cannot be read, as a viewer ignores it (the EXIF is parsed only if there)."""
    if "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # malformed EXIF (Pillow raises several kinds): the pixels may still be fine
        return 1
    return value if isinstance(value, int) else 1


def image_size(path: Path) -> Optional[tuple[int, int]]:
    """A file's (width, height) as it decodes (upright), from its header alone; None where the file
    cannot be opened (its decoding then names it)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            return (height, width) if _orientation(image) in SIDEWAYS else (width, height)
    except (UnidentifiedImageError, OSError, ValueError):  # (as _decode catches)
        return None


def group_by_size(files: Sequence[Path]) -> list[list[Path]]:
    """The files by upright image size, each size in the order first met (headers alone are read; a
    file that cannot be opened is a group of its own)."""
    groups: dict[object, list[Path]] = {}
    for path in files:
        groups.setdefault(image_size(path) or path, []).append(path)
    return list(groups.values())


# pixels decoded at once by read_in_chunks: about 10 bytes of arrays each, so about 0.3 GB. The 2,000 val
# faces (12.8 M pixels) are one chunk; a folder of 12-megapixel photos is read two at a time
CHUNK_PIXELS = 2**25


def read_in_chunks(files: Sequence[Path], pixels: Optional[int] = None, **read: Any) -> Iterator[ImageSet]:
    """`files` of one size (a group of :func:`group_by_size`) decoded a chunk at a time, in order, each
    chunk of at most `pixels` pixels (default CHUNK_PIXELS; at least one file: a larger image is a
    chunk of its own) by the first file's header; `read` goes to :func:`read_images`. Memory then
    grows with the chunk, not with the folder, which may be larger than the machine's memory."""
    pixels = pixels or CHUNK_PIXELS
    size = image_size(files[0]) if files else None
    count = max(1, pixels // (size[0] * size[1])) if size else 1  # (unreadable: its decoding names it)
    for start in range(0, len(files), count):
        yield read_images(list(files[start : start + count]), **read)


def read_images(files: list[Path], *, require_color: bool, role: str = "training images need colour",
                one_size: str = "all images in a split must have the same size") -> ImageSet:
    """Decode files (in parallel threads) into an ImageSet.

    With `require_color`, a grayscale file is an error (it has no colour target: `role` says why
    colour is needed); otherwise gray inputs are accepted and `rgb` is None when every file is gray.
    All images must share a size (`one_size` ends the error that says they do not). Images with
    transparency are composited onto white, with a warning.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        decoded = list(pool.map(_decode, files))
    alpha = [f for f, (_, mode) in zip(files, decoded) if mode in ALPHA_MODES]
    if alpha:
        log.warning("%d image(s) have transparency (first: %s): composited onto white", len(alpha), alpha[0])
    sizes = {a.shape for a, _ in decoded}
    if len(sizes) > 1:
        first = decoded[0][0].shape
        bad = next(f for f, (a, _) in zip(files, decoded) if a.shape != first)
        raise DataError(
            f"image {str(bad)!r} is {_hw(decoded[files.index(bad)][0])}, but {str(files[0])!r} is "
            f"{_hw(decoded[0][0])}: {one_size}"
        )
    gray_files = [f for f, (_, mode) in zip(files, decoded) if mode in ("L", "LA", "1", "I", "I;16", "F")]
    names = [str(f) for f in files]
    if require_color and gray_files:
        raise DataError(f"image {str(gray_files[0])!r} is grayscale: {role}")
    image_set = from_rgb_arrays([a for a, _ in decoded], names)
    if len(gray_files) == len(files):
        return ImageSet(image_set.gray, None, names)
    return image_set


def _hw(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"
