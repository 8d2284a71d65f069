"""Does this checkout train exactly as an earlier commit did, on this machine, and how fast?

    python -m benchmarks.replay --commit 32a014b            # the study's best config, full faces
    python -m benchmarks.replay --commit 32a014b -- data.limit=500 trainer.max_epochs=3
    python -m benchmarks.replay --commit da85894 --recipe best --repeats 3 -- trainer.max_minutes=0 trainer.max_epochs=3

Trains a configuration once with `--commit` (checked out in a git worktree) and once with this
checkout, one after the other (`--repeats N`: N such pairs), and compares every per-epoch metric of
the first pair (epoch_seconds aside). `--recipe study-best` (the default) is the study's best
configuration (2-conv k5 c16 tanh, SGD lr 0.1, early stopping on val MSE, the full faces);
`--recipe best` is `experiment=best` (give it `trainer.max_minutes=0 trainer.max_epochs=N`: a time
budget would fix a different number of epochs each run). Prints the largest difference of each
metric, the median seconds per epoch of each side over every run and epoch, and the CPU class
(`torch.backends.cpu.get_cpu_capability()`); exits 1 if a difference exceeds --tolerance. Several
minutes on 2 cores: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.common import worktree

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "study-best": ["data=faces", "model.layers=2", "model.kernel_size=5", "model.channels=16", "model.tanh=true",
                   "optimizer.lr=0.1"],
    "best": ["experiment=best"],
}
SECONDS = "epoch_seconds"


def train(code: Path, store: Path, overrides: list[str]) -> dict[str, list[tuple[int, float]]]:
    """Run `colorize.train` from the checkout at `code`; the run's per-epoch metric histories
    (epoch_seconds included)."""
    from mlflow.tracking import MlflowClient

    from benchmarks.common import experiment_runs

    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1"}
    env.setdefault("COLORIZE_FACES_ROOT", str(ROOT.parent / "shared" / "data" / "ceng483-hw3-dataset"))
    uri = f"sqlite:///{store}"
    proc = subprocess.run([sys.executable, "-m", "colorize.train", *overrides, f"tracking.uri={uri}",
                           f"hydra.run.dir={store.parent / store.stem}"], env=env, cwd=store.parent,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"training with {code} failed:\n{proc.stderr[-3000:]}")
    client = MlflowClient(tracking_uri=uri)
    (run,) = experiment_runs(client, "colorize")
    keys = [k for k in run.data.metrics if not k.startswith(("best_", "stopped", "train_seconds"))]
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True, help="the earlier commit to replay")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="study-best", help="what both runs train")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs (earlier, then this checkout)")
    parser.add_argument("--tolerance", type=float, default=1e-12, help="largest allowed absolute difference")
    parser.add_argument("overrides", nargs="*", help="extra colorize-train overrides for both runs")
    args = parser.parse_args()
    overrides = RECIPES[args.recipe] + args.overrides
    with tempfile.TemporaryDirectory() as tmp, worktree(args.commit, Path(tmp) / "earlier") as tree:
        for folder in ("conf", "sweeps"):  # the earlier commit's own configs as colorize.conf/.sweeps (an
            # installed colorize would hand it this checkout's, which it may not understand)
            (tree / "colorize" / folder).symlink_to(tree / folder, target_is_directory=True)
        runs = [(train(tree, Path(tmp) / f"before{i}.db", overrides),
                 train(ROOT, Path(tmp) / f"after{i}.db", overrides)) for i in range(args.repeats)]
    worst = differences(*runs[0])
    seconds = [statistics.median(v for run in side for _, v in run[SECONDS]) for side in zip(*runs)]
    val = dict(runs[0][1]["val_margin12_accuracy"])
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}; {len(val)} epochs; "
          f"val 12-margin accuracy at the last epoch {val[max(val)]:.4f}")
    for key, diff in worst.items():
        print(f"{key:28s} max |now - {args.commit}| = {diff:.3g}")
    print(f"seconds per epoch, median over {args.repeats} run(s) each: {args.commit} {seconds[0]:.2f}, "
          f"now {seconds[1]:.2f} ({seconds[0] / seconds[1]:.2f}x)")
    out = ROOT / "outputs" / "benchmarks" / "replay.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"commit": args.commit, "recipe": args.recipe, "overrides": args.overrides,
                               "cpu": torch.backends.cpu.get_cpu_capability(), "epochs": len(val),
                               "max_abs_diff": worst, "epoch_seconds": {"before": seconds[0], "now": seconds[1]},
                               "repeats": args.repeats}, indent=1))
    sys.exit(0 if all(d <= args.tolerance for d in worst.values()) else 1)


def differences(before: dict, after: dict) -> dict[str, float]:
    """The largest absolute difference of each per-epoch metric (epoch_seconds aside) between two runs;
    SystemExit if their epochs differ."""
    worst = {}
    for key in sorted(set(before) - {SECONDS}):
        steps_before, steps_after = [s for s, _ in before[key]], [s for s, _ in after.get(key, [])]
        if steps_before != steps_after:
            raise SystemExit(f"{key}: epochs {steps_before} before, {steps_after} now")
        worst[key] = max(abs(a - b) for (_, a), (_, b) in zip(before[key], after[key]))
    return worst


if __name__ == "__main__":
    main()
