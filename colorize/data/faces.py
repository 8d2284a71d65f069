"""The course dataset: ROOT/{train,val,test}/images/*.jpg."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from colorize.data.images import ImageSet, Splits, list_images, read_images
from colorize.errors import DataError
from colorize.paths import faces_root


def resolve_root(root: Optional[str]) -> Path:
    path = Path(root).expanduser() if root else faces_root()
    if not path.is_dir():
        raise DataError(
            f"data.root={str(path)!r} does not exist: expected the course layout ROOT/{{train,val,test}}/images/*.jpg"
        )
    return path


def load_split(root: Path, split: str, limit: Optional[int] = None, *, require_color: bool = True) -> ImageSet:
    return read_images(list_images(root / split / "images", limit), require_color=require_color)


def load_faces(root: Optional[str] = None, limit: Optional[int] = None) -> Splits:
    """Train and val splits, decoded once; `limit` caps images per split."""
    path = resolve_root(root)
    return Splits(load_split(path, "train", limit), load_split(path, "val", limit), name="faces")
