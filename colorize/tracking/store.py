"""MLflow tracking through an explicit client (no global active run): one run per training job."""

from __future__ import annotations

import functools
import logging
import os
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, cast

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from colorize.errors import ColorizeError
from colorize.interrupts import uninterrupted
from colorize.names import (EXPERIMENT_KIND_TAG, FAILURE_TAG, OPTUNA_STUDY_TAG, OUTPUT_DIR_TAG, PARENT_TAG, SWEEP_TAG,
                            TRIAL_KEY)
from colorize.paths import creation_lock, resolve_sqlite_uri
from colorize.ports import unanswered
from colorize.tracking.failures import check_uri, failure_kind, recovered_ending, store_problem, write_end_file
from colorize.tracking.owners import is_orphan

log = logging.getLogger(__name__)
# MLflow logs every failed SQL statement with its traceback before raising; colorize says it in one
# line (tracking/failures.py) instead
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

MAX_PARAMS_PER_BATCH = 100
# MLflow's switch for its artifact download progress bar (mlflow.environment_variables)
PROGRESS_BAR_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when an MLflow tracking server does not answer.

    Also bounds MLflow's own HTTP retries (unless set by the user), so that a server that goes
    away mid-run costs seconds, not minutes of back-off, before training goes on without it.
    """
    import urllib.error
    import urllib.request

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ColorizeError(f"cannot reach MLflow tracking server {uri!r}: {reason}") from None


DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_database(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when a database server does not answer: MLflow itself retries an
    engine that cannot connect with exponential back-off for minutes."""
    from sqlalchemy.engine import make_url

    scheme = uri.partition("://")[0].split("+")[0]
    if scheme not in DB_PORTS:
        return
    url = make_url(uri)
    try:
        url.get_dialect().import_dbapi()  # the driver the URI names (postgresql:// means psycopg2)
    except ImportError as exc:
        raise ColorizeError(store_problem(uri, exc)) from None
    if not url.host:  # a Unix socket: the driver's own error will do
        return
    why = unanswered(url.host, url.port or DB_PORTS[scheme], timeout)
    if why:
        raise ColorizeError(f"cannot reach the database of MLflow store {url.render_as_string(hide_password=True)!r} "
                            f"within {timeout:g} s: {why}")


def default_artifact_location(uri: str) -> Optional[str]:
    """Beside a sqlite store: its folder's `mlartifacts`; elsewhere the server decides."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return (Path(uri[len(prefix) :]).parent / "mlartifacts").as_uri()
    return None


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat dotted keys (``model.layers``). `_target_` is kept (``loss._target_``: which
    option of a group ran, e.g. cosine or linear with the same keys); other private keys are dropped."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if str(key).startswith("_") and key != "_target_":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class Uninterrupted:
    """An MlflowClient whose calls an interrupt waits for (colorize/interrupts.py): Ctrl-C or SIGTERM
    inside MLflow's code could leave the store unusable, and the run that should end KILLED RUNNING."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with uninterrupted():
                return attr(*args, **kwargs)

        return call


@dataclass
class TrackedRun:
    """An open MLflow run: log metrics per step in one batched call, params, tags, artifacts.

    A `tolerant` run survives its tracking store going away: the first failure is logged and kept
    in :attr:`errors`, later calls are skipped, and training goes on (the caller reports it).
    """

    _client: MlflowClient  # private: every query goes through the Tracker's named methods
    run_id: str
    end_status: str = "FINISHED"  # the status the run ends with
    tolerant: bool = False
    errors: list[str] = field(default_factory=list)
    failure: str = ""  # why the run fails (the `failure` tag it ends with): disk_full, store_error, ...
    output_dir: Optional[str] = None  # where to leave word of its ending if the store refuses it

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        if self.errors:
            return
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            if not self.tolerant:
                raise
            self.failure = self.failure or failure_kind(exc)
            self.errors.append(f"MLflow {what} failed for run {self.run_id}: {_first_line(exc)}")
            log.error("%s -- training goes on, tracking stops", self.errors[-1])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self._call("logging metrics", self._client.log_batch, self.run_id, metrics=batch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            batch = items[i : i + MAX_PARAMS_PER_BATCH]
            self._call("logging params", self._client.log_batch, self.run_id, params=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        self._call("setting tags", self._client.log_batch, self.run_id, tags=run_tags)

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self._call("logging an artifact", self._client.log_artifact, self.run_id, str(path), artifact_path)

    def fail(self, **tags: Any) -> None:
        """Mark the run FAILED when it ends (e.g. a diverged trial), with explanatory tags."""
        self.end_status = "FAILED"
        if tags:
            self.set_tags(tags)

    def end(self, status: Optional[str] = None) -> None:
        """End the run, even after a tracking error (then FAILED, tagged with the failure): a run is
        never left RUNNING while its store still takes writes; if it refuses, the run's folder
        says how it should have ended, for the next command that opens the store."""
        status = status or self.end_status
        if self.errors and status == "FINISHED":  # trained, but its tracking is incomplete
            status = "FAILED"
        try:
            if self.failure and status != "FINISHED":
                self._client.set_tag(self.run_id, FAILURE_TAG, self.failure)
            self._client.set_terminated(self.run_id, status=status)
        except Exception as exc:
            if not self.tolerant:
                raise
            write_end_file(self.output_dir, self.run_id, status, self.failure or failure_kind(exc))
            self.errors.append(f"MLflow ending the run failed for run {self.run_id}: {_first_line(exc)}")


class Tracker:
    """An MLflow store and experiment, checked to be reachable when created."""

    def __init__(self, uri: str, experiment: Optional[str], artifact_location: Optional[str] = None,
                 create: bool = True) -> None:
        """Open the store (creating it and the experiment if `create`; a reading command passes
        False, and a missing store or experiment is then a one-line error) and end the runs that
        dead processes left RUNNING in the experiment (:meth:`recover`)."""
        check_uri(uri)
        self.uri = resolve_sqlite_uri(uri, create=create)
        if self.uri.startswith(("http://", "https://")):
            check_server(self.uri)
        check_database(self.uri)
        self.experiment_name = experiment
        self.experiment_id = ""
        try:
            with creation_lock(self.uri) if create else nullcontext():  # creating a store: one process at a time
                # (MLflow creates the sqlite schema here)
                # typed as what it stands for, so that its calls are checked as an MlflowClient's
                self._client = cast(MlflowClient, Uninterrupted(MlflowClient(tracking_uri=self.uri)))
                if experiment is not None:
                    self.experiment_id = self._experiment(experiment, artifact_location
                                                          or default_artifact_location(self.uri), create)
            if experiment is not None and create:
                self.recover()
        except ColorizeError:
            raise
        except Exception as exc:  # sqlalchemy, sqlite3, requests, a missing driver: one line
            raise ColorizeError(store_problem(self.uri, exc)) from None

    def recover(self) -> list[str]:
        """End the experiment's orphans: RUNNING runs whose process on this host is gone (SIGKILL, a
        crash, a store that refused the end): FAILED as their folder says, else KILLED
        (`failure=process_gone`). Returns their ids."""
        ended = []
        for run in self._client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
            if is_orphan(run):
                status, failure = recovered_ending(run, OUTPUT_DIR_TAG)
                self._client.set_tag(run.info.run_id, FAILURE_TAG, failure)
                self._client.set_terminated(run.info.run_id, status=status)
                log.info("run %s: its process is gone; ended %s (failure=%s)", run.info.run_id, status, failure)
                ended.append(run.info.run_id)
        return ended

    @classmethod
    def from_config(cls, tracking: Any) -> "Tracker":
        """The store and experiment a `tracking` config group (DictConfig or dataclass) names."""
        get = tracking.get if hasattr(tracking, "get") else (lambda k, d=None: getattr(tracking, k, d))
        return cls(get("uri"), get("experiment"), get("artifact_location"))

    def _experiment(self, name: str, artifact_location: Optional[str], create: bool = True) -> str:
        try:
            found = self._client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            if not create:
                raise ColorizeError(f"MLflow store {self.uri!r} has no experiment {name!r}: pass --experiment")
            try:
                # MLflow 3's UI opens an experiment without this kind on its GenAI overview, not the runs table
                return self._client.create_experiment(name, artifact_location=artifact_location,
                                                     tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
            except MlflowException:  # created meanwhile by a parallel job
                found = self._client.get_experiment_by_name(name)
                if found is None:
                    raise
                return found.experiment_id
        except ColorizeError:
            raise
        except Exception as exc:  # MlflowException; connection errors surface as requests/sqlalchemy errors
            raise ColorizeError(store_problem(self.uri, exc)) from None

    def create_run(
        self,
        run_name: str,
        tags: Optional[Mapping[str, Any]] = None,
        parent_run_id: Optional[str] = None,
    ) -> TrackedRun:
        """A new RUNNING run (nested under `parent_run_id` if given); end it with :meth:`TrackedRun.end`."""
        # MLflow's context tags (mlflow.user, mlflow.source.*), as mlflow.start_run would set them
        all_tags = resolve_tags({k: str(v) for k, v in (tags or {}).items()})
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        try:
            run = self._client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        except Exception as exc:  # nothing was tracked yet: one line, no run to end
            raise ColorizeError(store_problem(self.uri, exc)) from None
        return TrackedRun(self._client, run.info.run_id, tolerant=True, output_dir=all_tags.get(OUTPUT_DIR_TAG))

    @property
    def client(self) -> MlflowClient:
        """The store's MlflowClient, whose calls a Ctrl-C waits for: for the Model Registry
        (tracking/registry.py), which has no run to go through."""
        return self._client

    def tracked_run(self, run_id: str) -> TrackedRun:
        """An existing run, to log more to it."""
        return TrackedRun(self._client, run_id)

    def get_run(self, run_id: str) -> Any:
        """An existing run's data (params, metrics, tags) and info; one line if the store has no such run."""
        try:
            return self._client.get_run(run_id)
        except Exception:
            raise ColorizeError(f"run {run_id!r} does not exist in the MLflow store {self.uri!r}") from None

    def artifact_paths(self, run_id: str) -> set[str]:
        """The paths of a run's top-level artifacts; one line if the store cannot list them."""
        try:
            return {a.path for a in self._client.list_artifacts(run_id)}
        except Exception as exc:
            raise ColorizeError(f"cannot list the artifacts of run {run_id!r} in MLflow store {self.uri!r}: "
                                f"{_first_line(exc)}") from None

    def download(self, run_id: str, artifact: str, folder: Path) -> Path:
        """A run's artifact, copied into `folder`, without MLflow's progress bar unless the user's
        environment asks for it (a checkpoint or a figure: three lines of bars around one file, between
        colorize's own one-line messages)."""
        with _environment_default(PROGRESS_BAR_VARIABLE, "false"):
            return Path(self._client.download_artifacts(run_id, artifact, str(folder)))

    def upload(self, run_id: str, folder: Path, artifact_path: str) -> None:
        """Every file of `folder` as artifacts of a run, under `artifact_path`."""
        self._client.log_artifacts(run_id, str(folder), artifact_path)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """A run's values of one metric as (step, value), by step."""
        return sorted((m.step, m.value) for m in self._client.get_metric_history(run_id, key))

    def sweep_parents(self, preset: Optional[str] = None, status: Optional[str] = None) -> list:
        """Sweep parent runs of the experiment (of one preset, in one status), newest first."""
        query = f"tags.{SWEEP_TAG} = '{preset}'" if preset else f"tags.{SWEEP_TAG} != ''"
        if status:
            query += f" and attributes.status = '{status}'"
        runs = self._client.search_runs([self.experiment_id], filter_string=query,
                                       order_by=["attributes.start_time DESC"], max_results=1000)
        return [r for r in runs if PARENT_TAG not in r.data.tags]

    def trial_runs(self, study_name: str, number: int, status: str = "RUNNING") -> list:
        """The runs of one trial of an Optuna study (in `status`), wherever they ran: by the tag its job
        sets as it opens the run, which a retry that resumes another trial's run sets anew; and by the
        param, which keeps the first trial's number (and is all that runs recorded before the tag have)."""
        where = f"tags.{OPTUNA_STUDY_TAG} = '{study_name}' and attributes.status = '{status}'"
        found: dict[str, Any] = {}
        for key in (f"tags.{TRIAL_KEY}", f"params.{TRIAL_KEY}"):
            for run in self._client.search_runs([self.experiment_id], filter_string=f"{key} = '{number}' and {where}"):
                found.setdefault(run.info.run_id, run)
        return list(found.values())

    def children(self, parent_run_id: str) -> list:
        """The runs nested under a parent run, oldest first (in its experiment, when the Tracker has none)."""
        experiment_id = self.experiment_id or self._client.get_run(parent_run_id).info.experiment_id
        return self._client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            order_by=["attributes.start_time ASC"],
            max_results=5000,
        )

    def reopen(self, run_id: str) -> None:
        """Set an ended run RUNNING again, without the `failure` tag of how it stopped before."""
        try:
            self._client.update_run(run_id, status="RUNNING")
            if FAILURE_TAG in self._client.get_run(run_id).data.tags:
                self._client.delete_tag(run_id, FAILURE_TAG)
        except Exception as exc:
            raise ColorizeError(store_problem(self.uri, exc)) from None

    @contextmanager
    def resume_run(self, run_id: str, tags: Optional[Mapping[str, Any]] = None,
                   params: Optional[Mapping[str, Any]] = None, files: Sequence[Path] = ()) -> Iterator[TrackedRun]:
        """Reopen an interrupted run (status back to RUNNING) and log on into it, with those of `params`
        it lacks (a param's value cannot change) and `files`; ends as :meth:`start_run`'s."""
        with ExitStack() as guard:
            with uninterrupted():  # (see start_run)
                self.reopen(run_id)
                tracked = TrackedRun(self._client, run_id, tolerant=True, output_dir=(tags or {}).get(OUTPUT_DIR_TAG))
                guard.enter_context(self._ending(tracked))
                if tags:
                    tracked.set_tags(tags)
                if params:
                    known = self._client.get_run(run_id).data.params
                    tracked.log_params({k: v for k, v in params.items() if k not in known})
                for path in files:
                    tracked.log_artifact(path)
            yield tracked

    @contextmanager
    def start_run(
        self,
        run_name: str,
        tags: Optional[Mapping[str, Any]] = None,
        parent_run_id: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        files: Sequence[Path] = (),
    ) -> Iterator[TrackedRun]:
        """Open a run with its params and files; it ends FINISHED, FAILED (error or :meth:`TrackedRun.fail`)
        or KILLED (Ctrl-C)."""
        with ExitStack() as guard:
            # an interrupt meanwhile waits until the run has its params and will end KILLED: raised
            # between two store calls, it left a run without params (seen in CI), or one RUNNING
            with uninterrupted():
                tracked = self.create_run(run_name, tags, parent_run_id)
                guard.enter_context(self._ending(tracked))
                if params:
                    tracked.log_params(params)
                for path in files:
                    tracked.log_artifact(path)
            yield tracked

    @staticmethod
    @contextmanager
    def _ending(tracked: TrackedRun) -> Iterator[None]:
        try:
            yield
        except KeyboardInterrupt:
            tracked.end_status = "KILLED"
            raise
        except BaseException as exc:
            tracked.end_status = "FAILED"
            tracked.failure = tracked.failure or failure_kind(exc)
            raise
        finally:
            tracked.end()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextmanager
def _environment_default(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` for the block unless the environment already sets it (MLflow reads its
    switches from the environment at each call; it has no argument for them)."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
