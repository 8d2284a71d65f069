"""Fixed cost per trial of a sweep run in one process, with the decoded-data cache off and on.

A 10-trial sweep of 1-epoch trials (the default 1-conv net, seeds 0..9) through Hydra's basic
launcher, once on 40 faces per split and once on the full faces (where decoding counts). Per
trial, the fixed cost is everything that is not the epoch itself: Hydra's job set-up, reading the
data, building the model, the MLflow run, the end-of-run artifacts. It is measured from the
children's MLflow end times, so the process start and the first trial's one-off costs (imports,
store migration) are left out:

    fixed cost per trial = (end of trial n - end of trial 1 - sum of epoch times of trials 2..n) / (n - 1)
"""

from __future__ import annotations

import statistics
import tempfile

from mlflow.tracking import MlflowClient

from benchmarks.common import Row, experiment_runs, run_cli
from colorize.paths import faces_root
from colorize.names import PARENT_TAG

CACHE = {"off": "0", "on": "2"}  # COLORIZE_DATA_CACHE


def fixed_cost_per_trial(uri: str, experiment: str) -> float:
    client = MlflowClient(tracking_uri=uri)
    runs = [r for r in experiment_runs(client, experiment) if PARENT_TAG in r.data.tags]
    runs.sort(key=lambda r: r.info.end_time)
    trained = sum(r.data.metrics["train_seconds"] for r in runs[1:])
    return ((runs[-1].info.end_time - runs[0].info.end_time) / 1000 - trained) / (len(runs) - 1)


def trial_cost(repeats: int, trials: int = 10) -> list[Row]:
    rows = []
    for limit in (40, None):
        samples: dict[str, list[float]] = {"off": [], "on": []}
        walls: dict[str, list[float]] = {"off": [], "on": []}
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            for i in range(repeats):
                for mode, size in CACHE.items():  # interleaved, same run
                    experiment = f"trials-{mode}-{i}"
                    walls[mode].append(run_cli([
                        "-m", f"trainer.seed=range(0,{trials})", "trainer.max_epochs=1", "data=faces",
                        f"data.root={faces_root()}", f"data.limit={limit or 'null'}",
                        f"tracking.uri={uri}", f"tracking.experiment={experiment}",
                        f"hydra.sweep.dir={tmp}/{experiment}",
                    ], env={"COLORIZE_DATA_CACHE": size}))
                    samples[mode].append(fixed_cost_per_trial(uri, experiment))
        scale = f"{limit} faces per split" if limit else "full faces (4,500 train / 2,000 val)"
        for mode in CACHE:
            med = statistics.median(samples[mode])
            rows.append(Row("trial", f"fixed cost per trial, {scale}, data cache {mode}", med, "s/trial",
                            samples[mode], f"{trials} one-epoch trials in one process; median sweep wall "
                            f"{statistics.median(walls[mode]):.1f} s"))
        off, on = statistics.median(samples["off"]), statistics.median(samples["on"])
        rows.append(Row("trial", f"data cache saves, {scale}", off - on, "s/trial",
                        note=f"{off / on:.2f}x less fixed cost"))
    return rows
