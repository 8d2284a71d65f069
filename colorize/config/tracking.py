"""The `tracking` group: conf/tracking/mlflow.yaml (colorize/tracking/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class MlflowConfig:
    # $MLFLOW_TRACKING_URI, else ./mlflow.db (what a plain `mlflow ui` opens): colorize.paths.default_store_uri,
    # the one rule every command uses. Relative sqlite paths are resolved against the command's folder.
    uri: str = "${colorize.default_store:}"
    experiment: str = "colorize"
    # null: an `mlartifacts` folder beside a sqlite store (MLflow's server default otherwise)
    artifact_location: Optional[str] = None
    run_name: Optional[str] = None  # null: derived from the model, e.g. "2-conv k5 c16 +tanh"


OPTIONS = {"mlflow": MlflowConfig}
