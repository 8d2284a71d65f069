"""The study's five grid presets one after another against at once (`colorize-study --jobs`): wall time.

    python -m benchmarks.study_at_once                       # --jobs 1, 2 and 5, medians of 3
    python -m benchmarks.study_at_once --jobs 2 16 --limit 500 --epochs 3 --repeats 1

Each repeat runs, per `--jobs` value, `python -m colorize.study --presets
layers,kernel_size,kernels,lr,further data=faces data.limit=L trainer.max_epochs=E
hydra/launcher=fused --jobs J` in a fresh folder with a fresh store, report included. With J = 1 the
presets run one after another, as every study did before `--jobs` (and as `auto` still does on a
CPU); with J below the five presets, J of them at a time, one job each; with J of 5 or more all at
once, J split between them (`colorize.study_runs.split_jobs`). What it shows on a CPU is the start-up each command pays
(imports, the faces decoded, a store opened: ~8 s on the Zen 4, `benchmarks.startup_parts`), paid
once instead of five times; on a lent H200 that start-up is 55 s per command (docs/gpu/README.md).
Writes study_at_once.csv (jobs, how, median_s, runs_s, device, torch, date) under --out.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, device_stamp, write_rows

COLUMNS = ["jobs", "how", "median_s", "runs_s", "device", "torch", "date"]
GRID = "layers,kernel_size,kernels,lr,further"


def one_study(jobs: int, limit: int, epochs: int) -> float:
    """Wall seconds of one study in a fresh folder and store (the clock of this process, around it)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "colorize.study", "--presets", GRID, "data=faces", f"data.limit={limit}",
                f"trainer.max_epochs={epochs}", "hydra/launcher=fused", "--jobs", str(jobs),
                f"tracking.uri=sqlite:///{tmp}/mlflow.db"]
        started = time.perf_counter()
        proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, env=None)
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"study with --jobs {jobs} failed:\n{proc.stderr[-3000:]}")
    return seconds


def how(jobs: int) -> str:
    return "one after another" if jobs == 1 else f"{jobs} at a time, one job each" if jobs < 5 else "all at once"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study_at_once", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--limit", type=int, default=64, help="faces per split (data.limit)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "study_at_once")
    args = parser.parse_args(argv)
    times: dict[int, list[float]] = {j: [] for j in args.jobs}
    for _ in range(args.repeats):  # interleaved: a slow spell of the machine hits every setting alike
        for jobs in args.jobs:
            times[jobs].append(one_study(jobs, args.limit, args.epochs))
    rows = [{"jobs": jobs, "how": how(jobs),
             "median_s": f"{statistics.median(runs):.1f}", "runs_s": " ".join(f"{s:.1f}" for s in runs),
             **device_stamp("cpu")} for jobs, runs in times.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    print(write_rows(args.out / "study_at_once.csv", COLUMNS, rows))
    return rows


if __name__ == "__main__":
    main()
