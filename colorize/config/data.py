"""The `data` group: conf/data/*.yaml (colorize/data/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from colorize.config.checks import Checked


class _Data(Checked):
    GROUP = "data"
    limit: Optional[int]  # the subclasses' field, declared for the check below

    def check_limit(self) -> None:
        self.require(self.limit is None or self.limit >= 1, "limit", "must be null or >= 1")


@dataclass
class SamplesDataConfig(_Data):
    """80x80 tiles of the colour photographs bundled with scikit-image (no download)."""

    _target_: str = "colorize.data.samples.load_samples"
    tile: int = 80
    val_every: int = 5  # every n-th tile goes to the validation split
    limit: Optional[int] = None

    def __post_init__(self) -> None:
        self.require(self.tile >= 8, "tile", "must be an integer >= 8")
        self.require(self.val_every >= 2, "val_every", "must be an integer >= 2")
        self.check_limit()


@dataclass
class FacesDataConfig(_Data):
    """The course layout ROOT/{train,val,test}/images/*.jpg."""

    _target_: str = "colorize.data.faces.load_faces"
    # null: $COLORIZE_FACES_ROOT, else ../shared/data/ceng483-hw3-dataset beside the project
    root: Optional[str] = None
    limit: Optional[int] = None  # at most this many images per split (sorted by name)

    def __post_init__(self) -> None:
        self.check_limit()


OPTIONS = {"samples": SamplesDataConfig, "faces": FacesDataConfig}
