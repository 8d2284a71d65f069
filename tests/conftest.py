"""Shared fixtures: real Hydra composition, one real MLflow sqlite store per session, real faces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from colorize.config import register_configs
from colorize.paths import conf_dir, faces_root

ROOT = Path(__file__).resolve().parents[1]

register_configs()


@pytest.fixture(scope="session")
def faces() -> Path:
    """The course dataset beside the project (or $COLORIZE_FACES_ROOT).

    Missing data skips the test locally; in CI (COLORIZE_REQUIRE_DATA=1) it fails.
    """
    root = faces_root()
    if not (root / "train" / "images").is_dir():
        message = f"course dataset not found at {root} (set COLORIZE_FACES_ROOT)"
        if os.environ.get("COLORIZE_REQUIRE_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store for the whole session (creating one costs ~6 s of migrations)."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{db}"
    MlflowClient(tracking_uri=uri).search_experiments()  # run the migrations once, up front
    return uri


@pytest.fixture
def make_cfg():
    """Compose the real `conf/train.yaml` with overrides, as `python -m colorize.train` would."""

    def _compose(*overrides: str, config_name: str = "train"):
        with initialize_config_dir(config_dir=str(conf_dir())):
            return compose(config_name=config_name, overrides=list(overrides))

    return _compose


def run_cli(*args: str, module: str = "colorize.train", cwd: Path = ROOT, timeout: int = 600, env=None):
    """Run `python -m <module> args...` in a subprocess; return the CompletedProcess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
