"""MLflow tracking through an explicit client (no global active run): one run per training job."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from colorize.errors import ColorizeError

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAMS_PER_BATCH = 100


def resolve_uri(uri: str, cwd: Optional[Path] = None) -> str:
    """Make a relative ``sqlite:///path`` absolute (against `cwd`) and create its folder."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = Path(uri[len(prefix) :])
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path.resolve())


def default_artifact_location(uri: str) -> Optional[str]:
    """Beside a sqlite store: its folder's `mlartifacts`; elsewhere the server decides."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return (Path(uri[len(prefix) :]).parent / "mlartifacts").as_uri()
    return None


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat dotted keys (``model.layers``); private keys (``_target_``) dropped."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if str(key).startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass
class TrackedRun:
    """An open MLflow run: log metrics per step in one batched call, params, tags, artifacts."""

    client: MlflowClient
    run_id: str
    status: str = "FINISHED"
    tags: dict[str, str] = field(default_factory=dict)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def fail(self, **tags: Any) -> None:
        """Mark the run FAILED when it ends (e.g. a diverged trial), with explanatory tags."""
        self.status = "FAILED"
        if tags:
            self.set_tags(tags)


class Tracker:
    """An MLflow store and experiment, checked to be reachable when created."""

    def __init__(self, uri: str, experiment: str, artifact_location: Optional[str] = None) -> None:
        self.uri = resolve_uri(uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment(experiment, artifact_location or default_artifact_location(self.uri))

    def _experiment(self, name: str, artifact_location: Optional[str]) -> str:
        try:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            try:
                return self.client.create_experiment(name, artifact_location=artifact_location)
            except MlflowException:  # created meanwhile by a parallel job
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
                return found.experiment_id
        except MlflowException as exc:
            raise ColorizeError(f"cannot use MLflow tracking store {self.uri!r}: {_first_line(exc)}") from None
        except Exception as exc:  # connection errors surface as requests/sqlalchemy errors
            raise ColorizeError(f"cannot reach MLflow tracking store {self.uri!r}: {_first_line(exc)}") from None

    @contextmanager
    def start_run(
        self,
        run_name: str,
        tags: Optional[Mapping[str, Any]] = None,
        parent_run_id: Optional[str] = None,
    ) -> Iterator[TrackedRun]:
        """Open a run; it ends FINISHED, FAILED (error or :meth:`TrackedRun.fail`) or KILLED (Ctrl-C)."""
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        tracked = TrackedRun(self.client, run.info.run_id)
        try:
            yield tracked
        except KeyboardInterrupt:
            tracked.status = "KILLED"
            raise
        except BaseException:
            tracked.status = "FAILED"
            raise
        finally:
            self.client.set_terminated(tracked.run_id, status=tracked.status)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
