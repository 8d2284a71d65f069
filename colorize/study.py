"""`python -m colorize.study [overrides]`: reproduce the whole study in one command.

Runs every preset of sweeps/ in order (layers, kernel_size, kernels, lr, further, search) as a
multirun of `python -m colorize.train`, then writes the report. The overrides go to every preset:
the epoch budget (`trainer.max_epochs=...`) and the data (`data=faces data.limit=...`) are the usual
knobs. Re-running the same command skips the presets already completed with the same settings.

    python -m colorize.study data=faces trainer.max_epochs=20
    python -m colorize.study data=faces data.limit=500 trainer.max_epochs=3 --search-trials 6
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from hydra import compose, initialize_config_dir

from colorize.cli import run_tool
from colorize.config import register_configs
from colorize.errors import ColorizeError
from colorize.paths import conf_dir
from colorize.report import build_report
from colorize.results import load_sweep, parent_runs
from colorize.tracking import Tracker

log = logging.getLogger("colorize.study")

PRESETS = ("layers", "kernel_size", "kernels", "lr", "further", "search")


def preset_overrides(preset: str, overrides: list[str]) -> list[str]:
    """What `python -m colorize.train -m` gets for a preset: the preset, then the user's overrides."""
    return [f"sweep={preset}", *overrides]


def completed(tracker: Tracker, preset: str, task_overrides: list[str]) -> Optional[str]:
    """The newest finished sweep of `preset` run with exactly these overrides, if any."""
    wanted = " ".join(task_overrides)
    for run in parent_runs(tracker, preset):
        if run.data.tags.get("overrides") == wanted:
            return run.info.run_id
    return None


def tracking_of(overrides: list[str]) -> Tracker:
    """The MLflow store the presets will log to (composed by Hydra from the same overrides)."""
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(conf_dir())):
            cfg = compose("train", overrides=overrides)
    except Exception as exc:
        raise ColorizeError(f"bad overrides {overrides}: {str(exc).splitlines()[0]}") from None
    return Tracker.from_config(cfg.tracking)


def run_preset(preset: str, task_overrides: list[str], hydra_overrides: list[str]) -> None:
    cmd = [sys.executable, "-m", "colorize.train", "-m", *task_overrides, *hydra_overrides]
    log.info("running %s", " ".join(cmd[2:]))
    if subprocess.run(cmd).returncode != 0:
        raise ColorizeError(f"preset {preset} failed: {' '.join(cmd[2:])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colorize.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every preset")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets, in order")
    parser.add_argument("--search-trials", type=int, default=20, help="Optuna trials of the search preset")
    parser.add_argument("--name", default="study", help="report name (outputs/report/<name>/)")
    args = parser.parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        raise ColorizeError(f"--presets {','.join(unknown)} is invalid: choose from {','.join(PRESETS)}")
    tracker = tracking_of(args.overrides)
    key = hashlib.sha1(" ".join(args.overrides).encode()).hexdigest()[:10]
    started = time.perf_counter()
    sweep_ids = []
    for preset in presets:
        task = preset_overrides(preset, args.overrides)
        hydra = [f"hydra.sweeper.n_trials={args.search_trials}", f"hydra.sweeper.study_name=study-{key}"] \
            if preset == "search" else []
        done = completed(tracker, preset, task)
        if done:
            log.info("skipping %s: completed with the same settings (parent run %s)", preset, done)
        else:
            run_preset(preset, task, hydra)
            done = completed(tracker, preset, task)
            if done is None:
                raise ColorizeError(f"preset {preset} finished but its MLflow parent run was not found")
        sweep_ids.append(done)
    out = build_report(tracker, [load_sweep(tracker, i) for i in sweep_ids], Path("outputs/report") / args.name, args.name)
    print(f"study done in {time.perf_counter() - started:.0f} s: {len(sweep_ids)} presets")
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    run_tool(main)
