"""Where things are: the packaged configs, the checkout (for the default data location) and the store."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PACKAGE_DIR = Path(__file__).resolve().parent
# conf/ and sweeps/ are packages of the wheel (pyproject's package-dir), found through importlib, so an
# installed colorize and a checkout read the same files.
CONFIG_MODULE = "colorize.conf"  # Hydra's primary config: pkg://colorize.conf
PRESETS_MODULE = "colorize.sweeps"  # the `sweep` config group


def project_root() -> Path:
    """The checkout the package runs from (an editable install: pyproject.toml beside the package), else
    the cwd. Only the default data location depends on it."""
    beside = PACKAGE_DIR.parent
    if (beside / "pyproject.toml").is_file():
        return beside
    return Path.cwd()


def faces_root() -> Path:
    """The course dataset: `$COLORIZE_FACES_ROOT`, else `../shared/data/ceng483-hw3-dataset`."""
    env = os.environ.get("COLORIZE_FACES_ROOT")
    if env:
        return Path(env)
    return project_root().parent / "shared" / "data" / "ceng483-hw3-dataset"


DEFAULT_STORE = "sqlite:///mlflow.db"  # MLflow's own default (>= 3.7): a plain `mlflow ui` here shows the runs


def default_store_uri() -> str:
    """The MLflow store every command uses unless told (`tracking.uri`, `--uri`): `$MLFLOW_TRACKING_URI`,
    else ./mlflow.db."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE


@contextmanager
def creation_lock(uri: str) -> Iterator[None]:
    """Held while opening a store that may not exist yet: for a sqlite URI a file lock beside the
    database, so that processes started together on a fresh store create and migrate its schema
    one at a time (MLflow's and Optuna's migrations race otherwise); nothing for a server."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        yield
        return
    from filelock import FileLock

    with FileLock(uri[len(prefix):] + ".lock", timeout=600):
        yield


def resolve_sqlite_uri(uri: str, cwd: Path | None = None, create: bool = True) -> str:
    """Make a relative ``sqlite:///path`` absolute (against `cwd`) and create its folder; with
    `create=False` (a reading command) a database that does not exist is an error instead.

    Other URIs (PostgreSQL, http://...) are returned unchanged.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = Path(uri[len(prefix) :])
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not create and not path.is_file():
        from colorize.errors import ColorizeError

        raise ColorizeError(f"no MLflow store at {str(path)!r}: nothing was tracked there "
                            "(run from the folder you trained in, or pass --uri)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path.resolve())
