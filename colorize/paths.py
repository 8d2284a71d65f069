"""Where things are: the packaged configs, the checkout (for the default data location) and the store."""

from __future__ import annotations

import errno
import os
from contextlib import closing, contextmanager
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
    one at a time (MLflow's and Optuna's migrations race otherwise); nothing for a server.

    Only creating needs it: once a schema is there (looked up under the lock, so never halfway made),
    the store is opened without it, by every process at once. Holding it through every opening made
    16 workers that started together open their store one after another, ~2 s each on a lent H200
    (docs/gpu/README.md; `python -m benchmarks.store_open`).
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        yield
        return
    from filelock import FileLock

    path = uri[len(prefix):]
    with FileLock(path + ".lock", timeout=600):
        if not schema_made(path):
            yield  # this process makes it: the others wait
            return
    yield


def schema_made(path: str) -> bool:
    """Whether the sqlite file at `path` holds a schema its maker finished: MLflow and Optuna both
    stamp an `alembic_version` row (Optuna last; MLflow under the lock that `creation_lock` holds)."""
    import sqlite3

    try:
        with closing(sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=60)) as db:
            return db.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0
    except sqlite3.Error:  # no file yet, or no such table
        return False


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # (not a full disk, which errors_as_lines says as such)
        if exc.errno == errno.ENOSPC:
            raise
        from colorize.errors import ColorizeError

        raise ColorizeError(f"cannot make the sqlite store {uri!r}: its folder {str(path.parent)!r} cannot be "
                            f"made ({exc.strerror})") from None
    return prefix + str(path.resolve())
