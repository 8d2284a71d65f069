"""`python -m colorize.study [overrides] [options]`: reproduce the whole study in one command.

Runs every preset of sweeps/ in order (layers, kernel_size, kernels, lr, further, search) as a
multirun of `python -m colorize.train`, then writes the report. The overrides go to every preset:
the epoch budget (`trainer.max_epochs=...`) and the data (`data=faces data.limit=...`) are the usual
knobs; Hydra overrides (`hydra/launcher=joblib`) too, except sweeper settings
(`hydra.sweeper.n_trials=...`), which only the Optuna preset gets. `--search-override KEY=VALUE`
gives the search preset its own budget (it replaces the common override with that key). Options and
overrides mix in any order. `--seeds N` runs every configuration of the grid presets with seeds
0..N-1 (the report shows their mean, spread and n). A line after each preset says what is done and
the ETA. Re-running the same command skips the presets already completed with the same settings.

    python -m colorize.study data=faces trainer.max_epochs=20
    python -m colorize.study data=faces data.limit=500 trainer.max_epochs=3 --search-trials 6 --seeds 3
    python -m colorize.study --presets layers,lr data=faces hydra/launcher=joblib
    python -m colorize.study data=faces trainer.max_epochs=20 --search-override trainer.max_minutes=1.5
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from colorize.cli import parser as cli_parser, run_tool
from colorize.config import to_object
from colorize.config.compose import compose_train, split_overrides
from colorize.errors import ColorizeError

# MLflow, torch and matplotlib (tracking, report) load where they are first used, once the command line
# has passed its checks: --help and bad input answer in well under a second, as colorize-train's do
if TYPE_CHECKING:
    from colorize.tracking.store import Tracker

log = logging.getLogger("colorize.study")

PRESETS = ("layers", "kernel_size", "kernels", "lr", "further", "search")


OPTUNA_PRESETS = ("search",)  # presets run by the Optuna sweeper (the others by Hydra's basic sweeper)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _merged(common: list[str], own: list[str]) -> list[str]:
    """`common` then `own`, where a key given in `own` replaces the same key in `common`."""
    keys = {_key(o) for o in own}
    return [o for o in common if _key(o) not in keys] + own


def preset_overrides(preset: str, overrides: list[str], seeds: int = 1,
                     own: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(task, hydra) overrides of `python -m colorize.train -m` for a preset: the preset, the user's task
    overrides (and `trainer.seed=0,..,seeds-1` for replicates of a grid preset); the user's Hydra
    overrides, less sweeper settings for a preset that has no Optuna sweeper (Hydra's basic sweeper
    rejects keys such as hydra.sweeper.n_trials). `own` are this preset's own overrides (e.g. the
    search's budget): they replace the common ones with the same key."""
    task, hydra = split_overrides(overrides)
    own_task, own_hydra = split_overrides(list(own))
    task, hydra = _merged(task, own_task), _merged(hydra, own_hydra)
    if preset not in OPTUNA_PRESETS:
        hydra = [o for o in hydra if not o.lstrip("+~").startswith(("hydra.sweeper.", "hydra/sweeper"))]
        if seeds > 1:
            if any(o.split("=", 1)[0] == "trainer.seed" for o in task):
                raise ColorizeError("--seeds and a trainer.seed override conflict: give one of them")
            task.append("trainer.seed=" + ",".join(str(i) for i in range(seeds)))
    return [f"sweep={preset}", *task], hydra


def completed(tracker: Tracker, preset: str, task_overrides: list[str]) -> Optional[str]:
    """The newest finished sweep of `preset` run with exactly these task overrides, if any."""
    from colorize.tracking.results import parent_runs

    wanted = " ".join(task_overrides)
    for run in parent_runs(tracker, preset):
        if run.data.tags.get("overrides") == wanted:
            return run.info.run_id
    return None


def open_store(tracking) -> Tracker:
    """The MLflow store the presets will log to (`tracking`: the config Hydra composed from the same overrides)."""
    from colorize.tracking.store import Tracker

    return Tracker.from_config(tracking)


def preset_trials(task: list[str], hydra: list[str]) -> int:
    """Trials a preset will run (its grid, or Optuna's n_trials), for the study's ETA."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from colorize.tracking.progress import planned_trials

    fixed = [o.input_line for o in OverridesParser.create().parse_overrides(task) if not o.is_sweep_override()]
    sweeper = compose_train(fixed, hydra_config=True).hydra.sweeper
    n_trials = [o.split("=", 1)[1] for o in hydra if o.startswith("hydra.sweeper.n_trials=")]
    if n_trials:
        return int(n_trials[-1])
    return planned_trials(sweeper, task) or 0


def run_preset(preset: str, task_overrides: list[str], hydra_overrides: list[str]) -> None:
    cmd = [sys.executable, "-m", "colorize.train", "-m", *task_overrides, *hydra_overrides]
    log.info("running %s", " ".join(cmd[2:]))
    if subprocess.run(cmd).returncode != 0:
        raise ColorizeError(f"preset {preset} failed: {' '.join(cmd[2:])}")


def plan_study(args: argparse.Namespace) -> list[tuple[str, list[str], list[str], int]]:
    """(preset, task overrides, Hydra overrides, trials) of each preset asked for, in order: every
    preset's command is checked here, before any runs."""
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        raise ColorizeError(f"--presets {','.join(unknown)} is invalid: choose from {','.join(PRESETS)}")
    key = hashlib.sha1(" ".join(args.overrides).encode()).hexdigest()[:10]
    plan = []
    for preset in presets:
        own = args.search_override if preset in OPTUNA_PRESETS else []
        task, hydra = preset_overrides(preset, args.overrides, args.seeds, own)
        if preset in OPTUNA_PRESETS:  # the study's sweeper defaults, unless the user set them
            defaults = {"hydra.sweeper.n_trials": args.search_trials, "hydra.sweeper.study_name": f"study-{key}"}
            given = {_key(o) for o in hydra}
            hydra = [f"{k}={v}" for k, v in defaults.items() if k not in given] + hydra
        plan.append((preset, task, hydra, preset_trials(task, hydra)))
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-study", __doc__)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every preset")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets, in order")
    parser.add_argument("--search-trials", type=int, default=20, help="Optuna trials of the search preset")
    parser.add_argument("--search-override", action="append", default=[], metavar="OVERRIDE",
                        help="an override for the search preset only, replacing a common one with its key "
                             "(repeatable): the search's own budget, e.g. --search-override trainer.max_minutes=1.5")
    parser.add_argument("--name", default="study", help="report name (outputs/report/<name>/)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="replicates per configuration of the grid presets (trainer.seed=0..N-1)")
    args = parser.parse_intermixed_args(argv)  # options and overrides in any order
    started = time.perf_counter()
    common = compose_train(split_overrides(args.overrides)[0])
    to_object(common)  # a bad key or value in the common overrides is one line here, before any preset runs
    plan = plan_study(args)
    presets = [preset for preset, *_ in plan]
    tracker = open_store(common.tracking)  # once every preset's command is known to compose
    from colorize import names
    from colorize.report.build import best_overall, build_report
    from colorize.tracking.progress import study_line
    from colorize.tracking.registry import ship_command
    from colorize.tracking.results import load_sweep

    sweep_ids, trials_done = [], 0
    for i, (preset, task, hydra, _) in enumerate(plan):
        done = completed(tracker, preset, task)
        if done:
            log.info("skipping %s: completed with the same settings (parent run %s)", preset, done)
        else:
            run_preset(preset, task, hydra)
            done = completed(tracker, preset, task)
            if done is None:
                raise ColorizeError(f"preset {preset} finished but its MLflow parent run was not found")
            trials_done += len(tracker.children(done))
        sweep_ids.append(done)
        trials_left = sum(n for *_, n in plan[i + 1:])
        log.info("%s", study_line(i + 1, presets, trials_done, trials_left, time.perf_counter() - started))
    sweeps = [load_sweep(tracker, i) for i in sweep_ids]
    out = build_report(tracker, sweeps, Path("outputs/report") / args.name, args.name)
    print(f"study done in {time.perf_counter() - started:.0f} s: {len(sweep_ids)} presets")
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    best = best_overall(sweeps)
    if best is not None:
        accuracy = best.metrics[names.BEST_VAL_ACCURACY]
        print(f"best: run {best.run_id} ({best.label}, val 12-margin accuracy {accuracy:.4f}); "
              f"ship it: {ship_command(best.run_id)}")
    return 0


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
