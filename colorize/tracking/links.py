"""Links into the MLflow UI: every link colorize prints (a run, a sweep's parent run, an experiment, a
registered model's version).

MLflow 3's UI starts in its "GenAI" workflow mode, where an experiment opens on an overview page;
`?workflowType=machine_learning` switches it to "Model training", which opens the runs table (the
UI remembers the choice in the browser's storage)."""

from __future__ import annotations

from typing import Optional

from colorize.paths import DEFAULT_STORE

WORKFLOW = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"


def page(experiment_id: str, run_id: Optional[str] = None) -> str:
    """The UI's page of an experiment (its runs table) or of one run, in "Model training" mode."""
    return f"#/experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "") + f"?{WORKFLOW}"


def model_page(name: str, version: str) -> str:
    """The UI's page of a registered model's version (the Model Registry)."""
    return f"#/models/{name}/versions/{version}"


def ui_link(uri: str, experiment_id: str, run_id: Optional[str] = None) -> str:
    """One line: the page on the tracking server, or how to start `mlflow ui` on a file store and the
    page to open there."""
    return open_page(uri, page(experiment_id, run_id))


def open_page(uri: str, target: str) -> str:
    """The UI's page `target` on the tracking server at `uri`, or how to start `mlflow ui` on a file
    store and open it there."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{target}"
    ui = "mlflow ui" if uri == DEFAULT_STORE else f"mlflow ui --backend-store-uri {uri}"
    return f"{ui} --port 5000, then open {LOCAL_UI}/{target}"
