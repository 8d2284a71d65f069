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


DEFAULT_STORE = "sqlite:///outputs/mlflow.db"


def default_store_uri() -> str:
    """The MLflow store a command uses unless told: `$MLFLOW_TRACKING_URI`, else the project's sqlite store
    (the same rule as `tracking.uri` in conf/tracking/mlflow.yaml)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE


def resolve_sqlite_uri(uri: str, cwd: Path | None = None) -> str:
    """Make a relative ``sqlite:///path`` absolute (against `cwd`) and create its folder.

    Other URIs (PostgreSQL, http://...) are returned unchanged.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = Path(uri[len(prefix) :])
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path.resolve())
