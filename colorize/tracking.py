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
from colorize.paths import resolve_sqlite_uri

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAMS_PER_BATCH = 100


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

    def end(self, status: Optional[str] = None) -> None:
        self.client.set_terminated(self.run_id, status=status or self.status)


class Tracker:
    """An MLflow store and experiment, checked to be reachable when created."""

    def __init__(self, uri: str, experiment: str, artifact_location: Optional[str] = None) -> None:
        self.uri = resolve_sqlite_uri(uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_name = experiment
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

    def create_run(
        self,
        run_name: str,
        tags: Optional[Mapping[str, Any]] = None,
        parent_run_id: Optional[str] = None,
    ) -> TrackedRun:
        """A new RUNNING run (nested under `parent_run_id` if given); end it with :meth:`TrackedRun.end`."""
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        return TrackedRun(self.client, run.info.run_id)

    def run(self, run_id: str) -> TrackedRun:
        """An existing run, to log more to it."""
        return TrackedRun(self.client, run_id)

    def children(self, parent_run_id: str) -> list:
        """The runs nested under a parent run, oldest first."""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            order_by=["attributes.start_time ASC"],
            max_results=5000,
        )

    @contextmanager
    def start_run(
        self,
        run_name: str,
        tags: Optional[Mapping[str, Any]] = None,
        parent_run_id: Optional[str] = None,
    ) -> Iterator[TrackedRun]:
        """Open a run; it ends FINISHED, FAILED (error or :meth:`TrackedRun.fail`) or KILLED (Ctrl-C)."""
        tracked = self.create_run(run_name, tags, parent_run_id)
        try:
            yield tracked
        except KeyboardInterrupt:
            tracked.status = "KILLED"
            raise
        except BaseException:
            tracked.status = "FAILED"
            raise
        finally:
            tracked.end()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
