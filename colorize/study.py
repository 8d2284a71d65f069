"""`python -m colorize.study [overrides] [options]`: reproduce the whole study in one command.

Runs every preset of sweeps/ in order (layers, kernel_size, kernels, lr, further, search) as a
multirun of `python -m colorize.train`, then writes the report. The overrides go to every preset:
the epoch budget (`trainer.max_epochs=...`) and the data (`data=faces data.limit=...`) are the usual
knobs; Hydra overrides (`hydra/launcher=joblib`) too, except sweeper settings
(`hydra.sweeper.n_trials=...`), which only the Optuna preset gets. `--search-override KEY=VALUE`
gives the search preset its own budget (it replaces the common override with that key). Options and
overrides mix in any order. `--seeds N` runs every configuration of the grid presets with seeds
0..N-1 (the report shows their mean, spread and n). A line after each preset says what is done and
the ETA. Re-running the same command skips the presets already completed with the same settings
(those of how fast may differ: the launcher, `trainer.cuda_graphs`, `trainer.num_threads`).

`--jobs N` (default auto: the launcher's `n_jobs`, e.g. 16 for `hydra/launcher=fused` on CUDA, 1 on a
CPU) is how many trials run at once across the study. With more than one, consecutive grid presets
run at once, each its own command with its share of the jobs (`study_runs.split_jobs`: the fewest
waves; with fewer jobs than presets, N presets at a time, one job each) and its output in
`outputs/study/<name>/<preset>.log`: the start-ups overlap instead of following each other. The
search follows with every job. Ctrl-C (or SIGTERM, or a terminal that hangs up) stops every preset
running; their runs end KILLED and a rerun goes on from the presets completed.

    python -m colorize.study data=faces trainer.max_epochs=20
    python -m colorize.study data=faces data.limit=500 trainer.max_epochs=3 --search-trials 6 --seeds 3
    python -m colorize.study --presets layers,lr data=faces hydra/launcher=joblib
    python -m colorize.study data=faces trainer.max_epochs=20 --search-override trainer.max_minutes=1.5
    python -m colorize.study data=faces hydra/launcher=joblib --jobs 2   # grid presets two at a time, a trial each
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from colorize.cli import check_report_name, parser as cli_parser, run_tool
from colorize.config import to_object
from colorize.config.compose import check_command_line, compose_train, override_key, split_overrides
from colorize.cores import available_cores
from colorize.errors import ColorizeError
from colorize.study_runs import Launch, PresetCommand, merged, run_all, split_jobs

# MLflow, torch and matplotlib (tracking, report) load where they are first used, once the command line
# has passed its checks: --help and bad input answer in well under a second, as colorize-train's do
if TYPE_CHECKING:
    from colorize.tracking.store import Tracker

log = logging.getLogger("colorize.study")

PRESETS = ("layers", "kernel_size", "kernels", "lr", "further", "search")


OPTUNA_PRESETS = ("search",)  # presets run by the Optuna sweeper (the others by Hydra's basic sweeper)


def preset_overrides(preset: str, overrides: list[str], seeds: int = 1,
                     own: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(task, hydra) overrides of `python -m colorize.train -m` for a preset: the preset, the user's task
    overrides (and `trainer.seed=0,..,seeds-1` for replicates of a grid preset); the user's Hydra
    overrides, less sweeper settings for a preset that has no Optuna sweeper (Hydra's basic sweeper
    rejects keys such as hydra.sweeper.n_trials). `own` are this preset's own overrides (e.g. the
    search's budget): they replace the common ones with the same key."""
    task, hydra = split_overrides(overrides)
    own_task, own_hydra = split_overrides(list(own))
    task, hydra = merged(task, own_task), merged(hydra, own_hydra)
    if preset not in OPTUNA_PRESETS:
        hydra = [o for o in hydra if not o.lstrip("+~").startswith(("hydra.sweeper.", "hydra/sweeper"))]
        if seeds > 1:
            if any(o.split("=", 1)[0] == "trainer.seed" for o in task):
                raise ColorizeError("--seeds and a trainer.seed override conflict: give one of them")
            task.append("trainer.seed=" + ",".join(str(i) for i in range(seeds)))
    return [f"sweep={preset}", *task], hydra


def completed(tracker: Tracker, preset: str, task_overrides: list[str]) -> Optional[str]:
    """The newest finished sweep of `preset` run with these task overrides, if any; those of how fast it
    runs, not what it computes (`trainer.cuda_graphs`, `trainer.num_threads`, ...), may differ."""
    from colorize.tracking.parent_run import newest_same_command
    from colorize.tracking.results import parent_runs

    return newest_same_command(parent_runs(tracker, preset), " ".join(task_overrides))


def trials_so_far(tracker: Tracker, plan: Sequence[PresetCommand], done_ids: dict,
                  before: Sequence[str] = ()) -> tuple[int, int]:
    """(trials ended, trials left) of the study's presets, for its ETA: a completed preset's trials and
    the ended trials of one still running (presets run at once), less the presets in `before`
    (completed before this run of the study: their time is not in its clock)."""
    ended = left = 0
    for command in plan:
        if command.preset in before:
            continue
        if done_ids.get(command.preset):
            ended += len(tracker.children(done_ids[command.preset]))
            continue
        parent = running_parent(tracker, command)
        so_far = sum(r.info.status != "RUNNING" for r in tracker.children(parent)) if parent else 0
        ended, left = ended + so_far, left + max(command.trials - so_far, 0)
    return ended, left


def running_parent(tracker: Tracker, command: PresetCommand) -> Optional[str]:
    """The parent run of `command`'s sweep while it runs (the newest RUNNING one of its preset with the
    same computed overrides), if it has made one yet."""
    from colorize.tracking.parent_run import newest_same_command

    return newest_same_command(tracker.sweep_parents(command.preset, status="RUNNING"), " ".join(command.task))


def open_store(tracking) -> Tracker:
    """The MLflow store the presets will log to (`tracking`: the config Hydra composed from the same overrides)."""
    from colorize.tracking.store import Tracker

    return Tracker.from_config(tracking)


def preset_trials(task: list[str], hydra: list[str], sweeper: Any) -> int:
    """Trials a preset will run (its grid, or Optuna's n_trials), for the study's ETA; `sweeper`: its
    composed `hydra.sweeper`."""
    from colorize.tracking.progress import planned_trials

    n_trials = [o.split("=", 1)[1] for o in hydra if o.startswith("hydra.sweeper.n_trials=")]
    if n_trials:
        return int(n_trials[-1])
    return planned_trials(sweeper, task) or 0


def plan_study(args: argparse.Namespace) -> list[PresetCommand]:
    """The command of each preset asked for, in order: every preset's command is checked here, before
    any runs."""
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = sorted(set(presets) - set(PRESETS))
    if not presets:
        raise ColorizeError(f"--presets {args.presets!r} is invalid: name one or more of {','.join(PRESETS)}")
    if unknown:
        raise ColorizeError(f"--presets {','.join(unknown)} is invalid: choose from {','.join(PRESETS)}")
    key = hashlib.sha1(" ".join(args.overrides).encode()).hexdigest()[:10]
    plan = []
    for preset in presets:
        own = args.search_override if preset in OPTUNA_PRESETS else []
        task, hydra = preset_overrides(preset, args.overrides, args.seeds, own)
        if preset in OPTUNA_PRESETS:  # the study's sweeper defaults, unless the user set them
            defaults = {"hydra.sweeper.n_trials": args.search_trials, "hydra.sweeper.study_name": f"study-{key}"}
            given = {override_key(o) for o in hydra}
            hydra = [f"{k}={v}" for k, v in defaults.items() if k not in given] + hydra
        try:  # the command line as colorize-train will check it: Hydra's keys, the launcher's counts
            hydra_cfg = check_command_line(["-m", *task, *hydra])
        except ColorizeError as exc:
            raise ColorizeError(f"preset {preset}: {exc}") from None
        assert hydra_cfg is not None  # a multirun's, composed once for the check and the trial count
        plan.append(PresetCommand(preset, task, hydra, preset_trials(task, hydra, hydra_cfg.sweeper)))
    return plan


def study_jobs(jobs: str, overrides: list[str], common) -> tuple[int, bool]:
    """(trials at once across the study, whether --jobs gave it): `auto` is what the launcher runs at
    once, resolved as it resolves it for the study's jobs (`context.peers`: its `n_jobs`; the fused
    launcher's auto: 16 on CUDA, 1 on a CPU; 1 without `n_jobs`). `common`: the composed task config."""
    launcher_keys = ("hydra/launcher", "hydra.launcher")
    hydra = [o for o in split_overrides(overrides)[1] if override_key(o).startswith(launcher_keys)]
    launcher = compose_train(hydra, hydra_config=True).hydra.launcher
    if jobs == "auto":
        from colorize.launch.context import peers

        return peers(common, launcher), False
    if not jobs.isdigit() or int(jobs) < 1:
        raise ColorizeError(f"--jobs {jobs} is invalid: must be auto or an integer >= 1")
    if int(jobs) > 1 and "n_jobs" not in launcher:
        raise ColorizeError(f"--jobs {jobs} needs a launcher that runs jobs at once (hydra/launcher=fused or "
                            f"joblib); this study's is {launcher._target_.rsplit('.', 1)[-1]}")
    return int(jobs), True


def stages(plan: list[PresetCommand]) -> list[list[PresetCommand]]:
    """The presets in order, as runs of consecutive grid presets (which may run at once) and each
    Optuna preset alone (its search follows the grid, with every job for its batches)."""
    out: list[list[PresetCommand]] = []
    for command in plan:
        grid = command.preset not in OPTUNA_PRESETS
        if grid and out and out[-1][0].preset not in OPTUNA_PRESETS:
            out[-1].append(command)
        else:
            out.append([command])
    return out


def run_stage(stage: list[PresetCommand], jobs: int, explicit: bool, logs: Path, on_end) -> None:
    """Run a stage's presets with `jobs` trials at once in all: all of them at once, the jobs split
    between them (`split_jobs`), when there are enough jobs; `jobs` of them at a time, one job each,
    when there are fewer; one after another, each with every job, when there is one job or one
    preset. A failed preset lets those running finish and starts no other; then the study stops
    with one line naming it."""
    split = split_jobs([c.trials for c in stage], jobs) if len(stage) > 1 and jobs > 1 else None
    at_once = len(stage) if split else 1 if len(stage) == 1 or jobs == 1 else jobs
    alone: list[Optional[int]] = [jobs if explicit else None] * len(stage)  # one at a time: every job (None: auto)
    shares = split or ([1] * len(stage) if at_once > 1 else alone)
    if at_once > 1:  # presets at once share the cores (an OMP_NUM_THREADS given is kept)
        env = {"OMP_NUM_THREADS": str(max(1, available_cores() // jobs)), **os.environ}
    launches = []
    for c, n in zip(stage, shares):
        argv = c.argv([f"hydra.launcher.n_jobs={n}"] if n is not None else [])
        if at_once == 1:  # alone: the terminal, as a lone `colorize-train -m`
            launches.append(Launch(c.preset, argv))
            continue
        out = logs / f"{c.preset}.log"
        said = f"running at once ({n} of {jobs} jobs; log {out}): {' '.join(argv[2:])}"
        launches.append(Launch(c.preset, argv, out, env, said))
    if at_once > 1:
        logs.mkdir(parents=True, exist_ok=True)
        if at_once < len(stage):
            log.info("%d presets, %d at a time (--jobs %d)", len(stage), at_once, jobs)
    failed = run_all(launches, at_once, on_end)
    if failed:
        where = "" if at_once == 1 else f" (its log: {logs}/{failed[0]}.log)"
        raise ColorizeError(f"preset {', '.join(failed)} failed{where}: rerun the same command to retry it "
                            "(completed presets are skipped)")


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
    parser.add_argument("--jobs", default="auto",
                        help="trials at once across the study (default auto: the launcher's n_jobs); with "
                             "more than one, consecutive grid presets run at once, the jobs split between them "
                             "(fewer jobs than presets: that many presets at a time)")
    args = parser.parse_intermixed_args(argv)  # options and overrides in any order
    for option, value in (("--seeds", args.seeds), ("--search-trials", args.search_trials)):
        if value < 1:
            raise ColorizeError(f"{option} {value} is invalid: must be an integer >= 1")
    check_report_name(args.name)
    started = time.perf_counter()
    common = compose_train(split_overrides(args.overrides)[0])
    to_object(common)  # a bad key or value in the common overrides is one line here, before any preset runs
    jobs, explicit = study_jobs(args.jobs, args.overrides, common)
    plan = plan_study(args)
    tracker = open_store(common.tracking)  # once every preset's command is known to compose
    from colorize.interrupts import install

    install()  # SIGTERM and SIGHUP as Ctrl-C: forwarded to the presets, whose runs end KILLED
    try:
        sweep_ids = run_presets(plan, tracker, jobs, explicit, args.name, started)
    except KeyboardInterrupt as exc:
        print(f"colorize: interrupted ({str(exc) or 'SIGINT'}): the presets' runs ended KILLED; rerun the same "
              "command to go on (completed presets are skipped)", file=sys.stderr)
        return 130
    report(tracker, sweep_ids, args.name, started)
    return 0


def run_presets(plan: list[PresetCommand], tracker: Tracker, jobs: int, explicit: bool, name: str,
                started: float) -> list[str]:
    """Run the plan's presets not yet completed, stage by stage; their parent runs' ids, in plan order."""
    from colorize.tracking.progress import study_line

    presets = [c.preset for c in plan]
    done_ids = {c.preset: completed(tracker, c.preset, c.task) for c in plan}
    before = [preset for preset, run_id in done_ids.items() if run_id]
    for preset in before:
        log.info("skipping %s: completed with the same settings (parent run %s)", preset, done_ids[preset])

    def on_end(preset: str, code: int) -> None:
        if code != 0:
            log.warning("preset %s failed (exit %d)", preset, code)
            return
        command = next(c for c in plan if c.preset == preset)
        done_ids[preset] = completed(tracker, preset, command.task)
        if done_ids[preset] is None:
            raise ColorizeError(f"preset {preset} finished but its MLflow parent run was not found")
        finished = [p for p in presets if done_ids[p]]
        ended, left = trials_so_far(tracker, plan, done_ids, before)
        log.info("%s", study_line(finished, presets, ended, left, time.perf_counter() - started))

    for stage in stages([c for c in plan if not done_ids[c.preset]]):
        run_stage(stage, jobs, explicit, Path("outputs/study") / name, on_end)
    ids = [run_id for run_id in done_ids.values() if run_id]
    assert len(ids) == len(presets)  # run_stage raised on any preset that did not complete
    return ids


def report(tracker: Tracker, sweep_ids: list[str], name: str, started: float) -> None:
    """The study's report, and its best run with the command that ships it."""
    from colorize import names
    from colorize.report.build import best_overall, build_report
    from colorize.tracking.registry import ship_command
    from colorize.tracking.results import load_sweep

    sweeps = [load_sweep(tracker, i) for i in sweep_ids]
    out = build_report(tracker, sweeps, Path("outputs/report") / name, name)
    print(f"study done in {time.perf_counter() - started:.0f} s: {len(sweep_ids)} presets")
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    best = best_overall(sweeps)
    if best is not None:
        accuracy = best.metrics[names.BEST_VAL_ACCURACY]
        print(f"best: run {best.run_id} ({best.label}, val 12-margin accuracy {accuracy:.4f}); "
              f"ship it: {ship_command(best.run_id)}")


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
