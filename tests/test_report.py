"""Report figures and tables from a real MLflow store with known sweeps; the one-command study."""

import csv
import math

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

EXPERIMENT = "report"


@pytest.fixture(scope="module")
def swept(faces, mlflow_uri, tmp_path_factory):
    """Real `layers` and `lr` sweeps on a few real faces, tracked in the session store."""
    base = tmp_path_factory.mktemp("sweeps")
    common = [f"data=faces", f"data.root={faces}", f"tracking.uri={mlflow_uri}", f"tracking.experiment={EXPERIMENT}"]
    # 300 images: enough steps for lr 1 to diverge within the first epoch, as in the study
    sizes = {"layers": ["data.limit=32", "trainer.max_epochs=2"], "lr": ["data.limit=300", "trainer.max_epochs=1"]}
    for preset in ("layers", "lr"):
        proc = run_cli("-m", f"sweep={preset}", *common, *sizes[preset], f"hydra.sweep.dir={base}/{preset}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    return MlflowClient(tracking_uri=mlflow_uri)


@pytest.fixture(scope="module")
def report(swept, mlflow_uri, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    proc = run_cli("--uri", mlflow_uri, "--experiment", EXPERIMENT, "--preset", "layers", "lr",
                   "--name", "t", "--out", str(out), module="colorize.report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "t"


def test_report_writes_figures_grid_and_documents(report):
    for name in ("layers_curves.png", "lr_curves.png", "best_mse.png", "best_margin12.png", "best_samples.png"):
        assert (report / name).stat().st_size > 10_000, name
    md = (report / "report.md").read_text()
    for section in ("## Number of conv layers (sweep=layers)", "## Learning rate (sweep=lr)", "## Best configuration"):
        assert section in md
    assert "](lr_curves.png)" in md and "](best_samples.png)" in md
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "src='lr_curves.png'" not in html


def test_table_values_equal_the_metrics_in_mlflow(report, swept):
    rows = list(csv.DictReader((report / "results.csv").open()))
    assert len(rows) == 3 + 10
    md = (report / "report.md").read_text()
    for row in rows:
        run = swept.get_run(row["run_id"])
        m = run.data.metrics
        if row["status"] == "diverged":
            assert run.data.tags["diverged"] == "true" and row["val_mse"] == ""
            assert f"| {row['configuration']} | diverged | — | — | — | — |" in md
            continue
        assert int(row["best_epoch"]) == int(m["best_epoch"])
        assert float(row["val_mse"]) == m["best_val_mse"]
        assert float(row["val_margin12_accuracy"]) == m["best_val_margin12_accuracy"]
        assert float(row["train_seconds"]) == m["train_seconds"]
        line = (f"| {row['configuration']} | {row['status']} | {int(m['best_epoch'])} | {m['best_val_mse']:.5f} | "
                f"{m['best_val_margin12_accuracy']:.4f} | {m['train_seconds']:.1f} |")
        assert line in md
    assert sum(r["status"] == "diverged" for r in rows) == 2  # lr 1 with 2 and 4 layers


def test_report_is_logged_to_the_sweep_parent_runs(report, swept):
    exp = swept.get_experiment_by_name(EXPERIMENT)
    parents = [r for r in swept.search_runs([exp.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert {p.data.tags["sweep"] for p in parents} == {"layers", "lr"}
    for parent in parents:
        files = {a.path for a in swept.list_artifacts(parent.info.run_id, "report/t")}
        assert {"report/t/report.md", "report/t/report.html", "report/t/results.csv"} <= files


def test_unknown_sweep_run_is_a_one_line_error(mlflow_uri, tmp_path):
    proc = run_cli("--uri", mlflow_uri, "--experiment", EXPERIMENT, "--sweep", "0" * 32, "--out", str(tmp_path),
                   module="colorize.report")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: run '{'0' * 32}' does not exist in the MLflow store '{mlflow_uri}'"
    )


def test_empty_experiment_is_a_one_line_error(mlflow_uri, tmp_path):
    proc = run_cli("--uri", mlflow_uri, "--experiment", "nothing-here", "--out", str(tmp_path),
                   module="colorize.report")
    assert proc.returncode == 1 and "no finished sweeps in experiment 'nothing-here'" in proc.stderr


def test_study_runs_every_preset_and_the_report_then_skips_when_rerun(faces, mlflow_uri, tmp_path):
    overrides = ["data=faces", f"data.root={faces}", "data.limit=24", "trainer.max_epochs=1",
                 f"tracking.uri={mlflow_uri}", "tracking.experiment=study"]
    first = run_cli(*overrides, "--search-trials", "2", "--name", "ci", module="colorize.study", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "report: outputs/report/ci/report.md" in first.stdout
    md = (tmp_path / "outputs/report/ci/report.md").read_text()
    for preset in ("layers", "kernel_size", "kernels", "lr", "further", "search"):
        assert f"(sweep={preset})" in md
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("study")
    runs = client.search_runs([exp.experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" in r.data.tags]) == 3 + 4 + 6 + 10 + 8 + 2
    second = run_cli(*overrides, "--search-trials", "2", "--name", "ci", module="colorize.study", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stderr + second.stdout).count("skipping") == 6
    assert len(client.search_runs([exp.experiment_id])) == len(runs)


def test_labels_name_the_model_and_the_swept_training_values():
    from colorize.results import label

    params = {"model.layers": "2", "model.kernel_size": "5", "model.channels": "8", "model.batch_norm": "False",
              "model.tanh": "True", "optimizer.lr": "0.1", "optimizer.momentum": "0.0"}
    assert label(params, ["optimizer.lr", "optimizer.momentum"]) == "2-conv k5 c8 +tanh lr0.1"
    unet = {"model.depth": "3", "model.channels": "16", "model.batch_norm": "True", "model.chroma": "True",
            "optimizer.lr": "0.0170123"}
    assert label(unet, ["optimizer.lr", "model.depth"]) == "unet d3 c16 +bn chroma lr0.017"
