"""Sweep throughput (1 vs 2 joblib jobs) and Optuna pruning (with vs without), end to end."""

from __future__ import annotations

import statistics
import tempfile

import optuna

from benchmarks.common import Row, run_cli
from colorize.paths import faces_root


def _faces(limit: int, epochs: int) -> list[str]:
    return ["data=faces", f"data.root={faces_root()}", f"data.limit={limit}", f"trainer.max_epochs={epochs}"]


def sweep_throughput(repeats: int, limit: int = 600, epochs: int = 3) -> list[Row]:
    """The `kernels` preset (6 trials) with hydra/launcher=joblib and n_jobs 1 vs 2, interleaved."""
    walls: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        for i in range(repeats):
            for jobs in (1, 2):
                walls[jobs].append(run_cli([
                    "-m", "sweep=kernels", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}",
                    *_faces(limit, epochs), f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/k{jobs}-{i}",
                ]))
    rows = []
    for jobs in (1, 2):
        wall = statistics.median(walls[jobs])
        rows.append(Row("sweep", f"kernels preset, {jobs} job(s)", 6 * 3600 / wall, "trials/hour", walls[jobs],
                        f"median wall {wall:.1f} s, {limit} faces, {epochs} epochs"))
    ratio = statistics.median(walls[1]) / statistics.median(walls[2])
    rows.append(Row("sweep", "2 jobs vs 1 job", ratio, "x trials/hour", note="same run, interleaved"))
    return rows


def pruning(n_trials: int = 10, limit: int = 300, epochs: int = 6) -> list[Row]:
    """The `search` preset with pruner=none vs pruner=median: epochs trained and best val error."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in ("none", "median"):
            storage = f"sqlite:///{tmp}/{pruner}.db"
            wall = run_cli([
                "-m", "sweep=search", f"pruner={pruner}", f"hydra.sweeper.n_trials={n_trials}",
                f"hydra.sweeper.storage={storage}", *_faces(limit, epochs),
                f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"hydra.sweep.dir={tmp}/{pruner}",
            ])
            study = optuna.load_study(study_name="colorize-search", storage=storage)
            epochs_run = sum(len(t.intermediate_values) for t in study.trials)
            done = optuna.trial.TrialState.COMPLETE
            best = min(t.value for t in study.trials if t.state == done and t.value is not None)
            pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
            results[pruner] = (epochs_run, best, wall, pruned)
    (e0, b0, w0, _), (e1, b1, w1, p1) = results["none"], results["median"]
    return [
        Row("pruning", "no pruner: epochs trained", e0, "epochs", note=f"best val error {b0:.4f}, {w0:.0f} s"),
        Row("pruning", "median pruner: epochs trained", e1, "epochs",
            note=f"best val error {b1:.4f}, {w1:.0f} s, {p1}/{n_trials} trials pruned"),
        Row("pruning", "epochs saved", 1 - e1 / e0, "fraction", note=f"{n_trials} trials, seed 0"),
        Row("pruning", "best val error, pruned - unpruned", b1 - b0, "12-margin error"),
    ]
