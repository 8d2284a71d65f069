"""Report figures and tables (colorize/report/) from a real MLflow store with known sweeps."""

import csv
import math
import re

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

EXPERIMENT = "report"


def assert_drawn(path, least=(600, 250)):
    """A real figure: a PNG of a readable size with something drawn on it (not one flat colour). A
    samples figure shows its images pixel for pixel (80 x 80 faces): `least` is its smallest size."""
    from PIL import Image, ImageStat

    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= least[0] and im.height >= least[1], (path.name, im.size)
        rgb = im.convert("RGB")
        assert len(rgb.getcolors(maxcolors=1 << 20) or ()) > 50, path.name  # lines, text, faces: many colours
        assert max(ImageStat.Stat(rgb).stddev) > 10, path.name


@pytest.fixture(scope="module")
def swept(faces, mlflow_uri, tmp_path_factory):
    """Real `layers` and `lr` sweeps on a few real faces, tracked in the session store."""
    base = tmp_path_factory.mktemp("sweeps")
    common = ["data=faces", f"data.root={faces}", f"tracking.uri={mlflow_uri}", f"tracking.experiment={EXPERIMENT}"]
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


@pytest.mark.e2e
def test_report_writes_figures_grid_and_documents(report):
    for name in ("layers_curves.png", "lr_curves.png", "best_mse.png", "best_margin12.png"):
        assert_drawn(report / name)
    assert_drawn(report / "best_samples.png", least=(6 * 80, 3 * 80))  # trainer.num_samples=6 faces, 3 rows
    md = (report / "report.md").read_text()
    for section in ("## Number of conv layers (sweep=layers)", "## Learning rate (sweep=lr)", "## Best configuration"):
        assert section in md
    assert "](lr_curves.png)" in md and "](best_samples.png)" in md
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "src='lr_curves.png'" not in html


@pytest.mark.e2e
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
    for row in rows:  # the budget and the hardware, from each run's params and tags
        run = swept.get_run(row["run_id"])
        assert row["max_epochs"] == run.data.params["trainer.max_epochs"] and row["device"] == run.data.tags["device"]
    assert {(r["preset"], r["max_epochs"]) for r in rows} == {("layers", "2"), ("lr", "1")}
    assert {r["device"] for r in rows} == {"cpu"}
    shipped = re.search(r"Ship it: `colorize-register ([0-9a-f]{32}) <name> --alias champion`", md)[1]
    top = max(float(r["val_margin12_accuracy"]) for r in rows if r["status"] == "finished")
    assert [float(r["val_margin12_accuracy"]) for r in rows if r["run_id"] == shipped] == [top]  # the best run


@pytest.mark.e2e
def test_findings_csv_holds_the_reports_findings_table(report):
    from colorize.report.compare import read_findings

    from_csv = read_findings(report)  # findings.csv
    (report / "findings.csv").rename(report / "findings.bak")
    try:
        from_md = read_findings(report)  # the report.md table, as for a report from before findings.csv
    finally:
        (report / "findings.bak").rename(report / "findings.csv")
    assert from_csv == from_md and {r["experiment"] for r in from_csv} == {"layers", "lr", "best"}


def test_verdicts_of_two_reports_compare_finding_by_finding(tmp_path):
    """The committed 24-epoch CPU study against a copy with two verdicts turned: those two rows say
    so; dropping the "(1 run)" mark alone is no change."""
    from colorize.report.compare import FIELDS, compare, read_findings
    from tests.conftest import ROOT

    study = ROOT / "docs" / "study"
    rows = read_findings(study)
    assert len(rows) == 8 and rows[1]["experiment"] == "kernel_size" and rows[1]["verdict"] == "disagree"
    turned = [dict(r) for r in rows]
    turned[1]["verdict"], turned[2]["verdict"] = "agree", "agree"  # kernel_size, kernels (was mixed)
    turned[0]["verdict"] = "agree"  # layers: unchanged
    other = tmp_path / "other"
    other.mkdir()
    with (other / "findings.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(turned)
    table = compare(study, other, ["24 epochs, CPU", "100 epochs x 3, GPU"])
    assert "| experiment | reference study | 24 epochs, CPU | 100 epochs x 3, GPU | changed |" in table
    assert f"| kernel_size | {rows[1]['reference']} | disagree | agree | **yes** |" in table
    assert f"| kernels | {rows[2]['reference']} | mixed | agree | **yes** |" in table
    assert f"| layers | {rows[0]['reference']} | agree | agree | no |" in table
    assert table.rstrip().endswith("2 of 8 verdicts changed between 24 epochs, CPU and 100 epochs x 3, GPU.")


@pytest.mark.e2e
def test_report_is_logged_to_the_sweep_parent_runs(report, swept):
    exp = swept.get_experiment_by_name(EXPERIMENT)
    parents = [r for r in swept.search_runs([exp.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert {p.data.tags["sweep"] for p in parents} == {"layers", "lr"}
    for parent in parents:
        files = {a.path for a in swept.list_artifacts(parent.info.run_id, "report/t")}
        assert {"report/t/report.md", "report/t/report.html", "report/t/results.csv"} <= files


@pytest.mark.e2e
def test_the_report_reads_each_presets_newest_sweep_with_its_trials(swept, mlflow_uri):
    from colorize.tracking.results import Sweep, latest_sweeps
    from colorize.tracking.store import Tracker

    sweeps = latest_sweeps(Tracker(mlflow_uri, EXPERIMENT, create=False))
    assert all(isinstance(s, Sweep) for s in sweeps)
    assert {s.preset: len(s.trials) for s in sweeps} == {"layers": 3, "lr": 10}
    assert {s.preset: s.swept for s in sweeps}["lr"] == ["model.layers", "optimizer.lr"]


@pytest.mark.e2e
def test_a_preset_without_a_finished_sweep_is_refused_not_left_out(swept, mlflow_uri, tmp_path):
    """`--preset layers kernels`: the report would otherwise show layers alone, without a word."""
    proc = run_cli("--uri", mlflow_uri, "--experiment", EXPERIMENT, "--preset", "layers", "kernels", "--out",
                   str(tmp_path), module="colorize.report")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: no finished sweep of preset kernels in experiment '{EXPERIMENT}' of '{mlflow_uri}': "
        "it has finished sweeps of layers, lr")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_an_out_folder_that_cannot_be_made_is_one_line_not_a_traceback(swept, mlflow_uri, tmp_path):
    (tmp_path / "a_file").write_text("in the way")
    proc = run_cli("--uri", mlflow_uri, "--experiment", EXPERIMENT, "--preset", "layers", "--out",
                   str(tmp_path / "a_file"), module="colorize.report")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: --out '{tmp_path / 'a_file' / 'latest'}' is invalid: cannot make that folder "
        "(Not a directory)")


@pytest.mark.e2e
def test_unknown_sweep_run_is_a_one_line_error(mlflow_uri, tmp_path):
    proc = run_cli("--uri", mlflow_uri, "--experiment", EXPERIMENT, "--sweep", "0" * 32, "--out", str(tmp_path),
                   module="colorize.report")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: run '{'0' * 32}' does not exist in the MLflow store '{mlflow_uri}'"
    )


@pytest.mark.e2e
def test_a_missing_or_empty_experiment_is_a_one_line_error_and_none_is_created(mlflow_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    proc = run_cli("--uri", mlflow_uri, "--experiment", "nothing-here", "--out", str(tmp_path),
                   module="colorize.report")
    assert proc.returncode == 1 and "has no experiment 'nothing-here': pass --experiment" in proc.stderr
    # a reader writes nothing
    assert MlflowClient(tracking_uri=mlflow_uri).get_experiment_by_name("nothing-here") is None
    MlflowClient(tracking_uri=mlflow_uri).create_experiment("empty-here")
    proc = run_cli("--uri", mlflow_uri, "--experiment", "empty-here", "--out", str(tmp_path), module="colorize.report")
    assert proc.returncode == 1 and "no finished sweeps in experiment 'empty-here'" in proc.stderr


def test_labels_name_the_model_and_the_swept_training_values():
    from colorize.tracking.results import label

    params = {"model.layers": "2", "model.kernel_size": "5", "model.channels": "8", "model.batch_norm": "False",
              "model.tanh": "True", "optimizer.lr": "0.1", "optimizer.momentum": "0.0"}
    assert label(params, ["optimizer.lr", "optimizer.momentum"]) == "2-conv k5 c8 +tanh lr0.1"
    unet = {"model.depth": "3", "model.channels": "16", "model.batch_norm": "True", "model.chroma": "True",
            "optimizer.lr": "0.0170123"}
    assert label(unet, ["optimizer.lr", "model.depth"]) == "unet d3 c16 +bn chroma lr0.017"


def test_search_section_draws_optunas_four_plots(tmp_path):
    """A real Optuna study (two parameters, per-step reports, one pruned trial): all four plots drawn."""
    import numpy as np
    import optuna
    from PIL import Image

    from colorize.search.plots import tuning_figures

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/o.db", study_name="s",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(8):
        trial = study.ask()
        lr, width = trial.suggest_float("lr", 1e-4, 1e-1, log=True), trial.suggest_categorical("width", [8, 16, 32])
        value = 0.3 + abs(math.log10(lr) + 2) / 10 + 1 / width
        for step in range(1, 4):
            trial.report(value + 0.1 / step, step)
        state = optuna.trial.TrialState.PRUNED if i == 5 else optuna.trial.TrialState.COMPLETE
        study.tell(trial, None if i == 5 else value, state=state)
    drawn = tuning_figures(study, tmp_path / "out", "search")
    assert [p.name for p, _ in drawn] == ["search_history.png", "search_importances.png", "search_parallel.png",
                                          "search_intermediate.png"]
    for path, _ in drawn:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert pixels.shape[0] > 200 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, path.name


def test_a_parameter_with_one_value_so_far_draws_its_plots_without_matplotlibs_warning(tmp_path):
    """Two trials that drew the same width: parallel coordinates get an axis of zero span, which
    matplotlib widens with a UserWarning that a study's output printed twice; the plots are drawn."""
    import warnings

    import optuna

    from colorize.search.plots import tuning_figures

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for lr in (0.01, 0.001):
        study.enqueue_trial({"lr": lr, "width": 8})
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True), trial.suggest_categorical("width", [8, 16])
        study.tell(trial, lr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = tuning_figures(study, tmp_path, "search")
    assert "search_parallel.png" in [p.name for p, _ in drawn]
    assert [str(w.message) for w in caught if "identical low and high" in str(w.message)] == []


def _config(label, accs, mses=None):
    from colorize.tracking.results import Configuration, Trial

    trials = [Trial(f"r{i}", {}, {"best_val_margin12_accuracy": a, "best_val_margin12_error": 1 - a,
                                   "best_val_mse": (mses or [0.01] * len(accs))[i]}, "finished", {}, label)
              for i, a in enumerate(accs)]
    return Configuration(label, {}, trials)


@pytest.mark.parametrize("winner,loser,expected", [
    ([0.74, 0.75], [0.70, 0.73], "agree"),          # ranges apart, the right way
    ([0.70, 0.73], [0.74, 0.75], "disagree"),       # ranges apart, the other way
    ([0.72, 0.75], [0.73, 0.74], "within noise"),   # overlapping
    ([0.75], [0.74], "agree (1 run)"),              # no spread: point comparison, marked
    ([0.73], [0.70, 0.74], "within noise (1 run)"),  # a single run inside the other's range
    ([0.69], [0.70, 0.74], "disagree (1 run)"),
])
def test_spread_rule(winner, loser, expected):
    from colorize.report.findings import ACC, judge, overall

    assert judge(_config("a", winner), _config("b", loser), ACC) == expected
    assert overall(["agree", "agree (1 run)"]) == "agree" and overall(["agree", "within noise"]) == "mixed"


def test_spread_rule_on_mse_prefers_lower():
    from colorize.report.findings import MSE, judge

    assert judge(_config("a", [0.7, 0.7], [0.010, 0.011]), _config("b", [0.7, 0.7], [0.012, 0.013]), MSE) == "agree"


@pytest.mark.e2e
def test_seed_replicates_are_one_configuration_and_findings_follow_the_spread_rule(faces, mlflow_uri, tmp_path):
    """A small seeded sweep: mean ± std (n=2) per configuration, bands in the figure, and the findings
    row for kernel size judged from the runs' own numbers by the spread rule."""
    from colorize.report.findings import Finding, findings
    from colorize.tracking.results import configurations, load_sweep
    from colorize.tracking.store import Tracker

    experiment = "seeds"
    proc = run_cli("-m", "sweep=kernel_size", "trainer.seed=0,1", "data=faces", f"data.root={faces}", "data.limit=16",
                   "trainer.max_epochs=2", f"tracking.uri={mlflow_uri}", f"tracking.experiment={experiment}",
                   f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trial 8/8 of kernel_size" in proc.stderr + proc.stdout  # the progress line of the last trial
    out = tmp_path / "report"
    proc = run_cli("--uri", mlflow_uri, "--experiment", experiment, "--name", "s", "--out", str(out),
                   module="colorize.report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    tracker = Tracker(mlflow_uri, experiment)
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name(experiment)
    parent = next(r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" not in r.data.tags)
    sweep = load_sweep(tracker, parent.info.run_id)
    configs = configurations(sweep)
    assert len(sweep.trials) == 8 and len(configs) == 4 and all(c.n == 2 for c in configs)
    md = (out / "s" / "report.md").read_text()
    accs = {}
    for c in configs:
        runs = [client.get_run(t.run_id) for t in c.trials]
        values = [r.data.metrics["best_val_margin12_accuracy"] for r in runs]
        assert sorted(r.data.params["trainer.seed"] for r in runs) == ["0", "1"]
        assert c.mean("best_val_margin12_accuracy") == pytest.approx(sum(values) / 2)
        assert f"{c.mean('best_val_margin12_accuracy'):.4f} ± {c.std('best_val_margin12_accuracy'):.4f} (n=2)" in md
        accs[(c.params["model.layers"], c.params["model.kernel_size"])] = values

    def rule(a, b):
        return "agree" if min(a) > max(b) else "disagree" if min(b) > max(a) else "within noise"

    expected = [rule(accs[(n, "5")], accs[(n, "3")]) for n in ("2", "4")]
    verdict = ("agree" if set(expected) == {"agree"} else "disagree" if set(expected) == {"disagree"}
               else "within noise" if set(expected) == {"within noise"} else "mixed")
    row = next(f for f in findings([sweep]) if f.experiment == "kernel_size")
    assert isinstance(row, Finding)
    assert row.verdict == verdict and len(row.shows) == 2
    assert f"| {verdict} |" in md.split("## Findings")[1]
    assert_drawn(out / "s" / "kernel_size_curves.png")


@pytest.mark.e2e
def test_a_diverged_run_is_a_cross_at_its_epoch_each_its_own_height(swept, mlflow_uri):
    """lr 1 diverges (with 2 and 4 layers): no curve to draw, so each is a ✕ near the top at the epoch
    it diverged in, on both axes, the two at different heights (one would hide the other)."""
    from colorize.report.figures import draw_comparison
    from colorize.tracking.results import latest_sweeps
    from colorize.tracking.store import Tracker

    (sweep,) = latest_sweeps(Tracker(mlflow_uri, EXPERIMENT), ["lr"])
    diverged = [t for t in sweep.trials if t.status == "diverged"]
    assert len(diverged) == 2 and {t.diverged_epoch() for t in diverged} == {1}
    fig = draw_comparison(sweep)
    for ax in fig.axes:
        crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
        assert [list(line.get_xdata()) for line in crosses] == [[1], [1]]
        heights = [line.get_ydata()[0] for line in crosses]
        assert len(set(heights)) == 2 and all(0.8 < h < 1 for h in heights)  # axes fractions: near the top
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sum("— diverged (epoch 1)" in text for text in legend) == 2 and "diverged (near the top)" in legend
