"""Epochs per second once trials have started, from the MLflow stores a throughput run leaves, and the
study's wall time estimated from them.

    python -m benchmarks.epoch_rates DIR [--out FOLDER]  # DIR: benchmarks.throughput's --out (its *.db)

`benchmarks.throughput` times each mode's command whole, start-up included, which is what a sweep
pays once per command. Its stores also hold every epoch's time (`epoch_seconds`), so the rate once
running can be read apart from the start-up: per store (one mode on one net), the trials, the median
epoch, `steady_epochs_per_s` (the sum over trials of 1 / its median epoch: the rate while they all run
at once) and `window_epochs_per_s` (all epochs over the span from the first trial's start to the last
one's end: staggered starts count against it), and the seconds of the command outside that span
when its wall time is known from throughput.csv (start-up: imports, CUDA, the store, worker spawn).

`study_seconds` turns such figures into the wall time of the study as published: each grid preset
is one multirun command (its start-up once), whose trials run `at_once` at a time, in waves;
`study_seconds_at_once` into that of the grid presets run at once (`colorize-study --jobs`, auto
on CUDA): one start-up, the jobs split between them.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Mapping

from benchmarks.common import write_rows

COLUMNS = ["store", "trials", "epochs", "median_epoch_s", "steady_epochs_per_s", "window_epochs_per_s", "window_s"]
# trials per grid preset of the study as published, 3 seeds (sweeps/: 3, 4, 6, 10 and 8 configurations)
GRID_TRIALS = {"layers": 9, "kernel_size": 12, "kernels": 18, "lr": 30, "further": 24}


def store_rates(db: Path) -> dict | None:
    """One store's row (None without trials that logged epochs). A sweep's parent run has no epochs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("colorize")
    if experiment is None:
        return None
    trials = []
    for run in client.search_runs([experiment.experiment_id]):
        history = sorted(client.get_metric_history(run.info.run_id, "epoch_seconds"), key=lambda m: m.step)
        if history and run.info.status == "FINISHED":  # a killed trial's epochs are cut short
            trials.append((run.info.start_time / 1000, run.info.end_time / 1000, [m.value for m in history]))
    if not trials:
        return None
    return rates(db.stem, trials)


def rates(name: str, trials: list[tuple[float, float, list[float]]]) -> dict:
    """The row of trials given as (start s, end s, epoch seconds): the first epoch (CUDA graph capture,
    cuDNN's choice of kernels) is left out of each median when there are others."""
    medians = [statistics.median(e[1:] or e) for _, _, e in trials]
    epochs = sum(len(e) for _, _, e in trials)
    window = max(end for _, end, _ in trials) - min(start for start, _, _ in trials)
    return {"store": name, "trials": len(trials), "epochs": epochs,
            "median_epoch_s": f"{statistics.median(medians):.3f}",
            "steady_epochs_per_s": f"{sum(1 / m for m in medians):.2f}",
            "window_epochs_per_s": f"{epochs / window:.2f}", "window_s": f"{window:.1f}"}


def study_seconds(trials: Mapping[str, int], epochs: int, epoch_s: float, at_once: int, startup_s: float,
                  trial_setup_s: float = 0.0) -> float:
    """Wall seconds of presets run one after another, each a command that starts up once and runs its
    trials `at_once` at a time in waves of `epochs` epochs of `epoch_s` (an epoch's time with
    `at_once` trials sharing the device), each trial also paying `trial_setup_s`."""
    per_trial = epochs * epoch_s + trial_setup_s
    return sum(startup_s + math.ceil(n / at_once) * per_trial for n in trials.values())


def study_seconds_at_once(trials: Mapping[str, int], epochs: int, epoch_s: float, jobs: int, startup_s: float,
                          trial_setup_s: float = 0.0) -> float:
    """`study_seconds` for presets run at once (`colorize-study --jobs`), `jobs` split between them by
    `colorize.study_runs.split_jobs`: one start-up, then the waves of the preset that needs most."""
    from colorize.study_runs import split_jobs

    split = split_jobs(list(trials.values()), jobs)
    if split is None:  # fewer jobs than presets: one after another
        return study_seconds(trials, epochs, epoch_s, jobs, startup_s, trial_setup_s)
    waves = max(math.ceil(n / j) for n, j in zip(trials.values(), split))
    return startup_s + waves * (epochs * epoch_s + trial_setup_s)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.epoch_rates", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="benchmarks.throughput --out folders")
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/epoch_rates"),
                        help="folder for epoch_rates.csv")
    args = parser.parse_args(argv)
    rows = [row for folder in args.folders for db in sorted(folder.glob("*.db")) if (row := store_rates(db))]
    args.out.mkdir(parents=True, exist_ok=True)
    print(write_rows(args.out / "epoch_rates.csv", COLUMNS, rows))
    return rows


if __name__ == "__main__":
    main()
