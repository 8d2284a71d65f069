"""Where things are: the project root, its config folders and the default data location."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout the package runs from: beside the package (editable install) or the cwd."""
    beside = PACKAGE_DIR.parent
    if (beside / "conf").is_dir():
        return beside
    return Path.cwd()


def conf_dir() -> Path:
    """Hydra's primary config folder (`COLORIZE_CONF_DIR` overrides)."""
    return Path(os.environ.get("COLORIZE_CONF_DIR") or project_root() / "conf")


def faces_root() -> Path:
    """The course dataset: `$COLORIZE_FACES_ROOT`, else `../shared/data/ceng483-hw3-dataset`."""
    env = os.environ.get("COLORIZE_FACES_ROOT")
    if env:
        return Path(env)
    return project_root().parent / "shared" / "data" / "ceng483-hw3-dataset"
