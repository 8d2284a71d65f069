"""Progress you can wait on: one line per trial of a multirun, one line per preset of the study.

    trial 7/10 of lr: 2-conv k5 c8 lr0.01 — best val 12-margin error 0.2511 (trial 3) — sweep 60% — ETA 12 min

The state comes from the MLflow store, not from this process (joblib workers and other hosts run
trials too): the sweep's finished trials give the best so far and the measured pace of the sweep
(wall time per finished trial: epochs, fixed costs and parallel jobs all included), from which the
ETA follows. No ETA is shown before a trial
has finished, nor when the number of trials is unknown.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

from colorize.config.compose import as_written
from colorize.names import OBJECTIVE, TRIAL_TAG
from colorize.tracking.results import best_trial, trial_status


def sweep_axes(task_overrides: Iterable[str], params: Optional[Mapping[str, Any]]) -> list[list[str]]:
    """A basic-sweeper multirun's swept axes, each as its `key=value` overrides: a preset's
    `hydra.sweeper.params`, overridden key by key by the command line's overrides."""
    axes = {str(k).lstrip("+~"): f"{k}={v}" for k, v in (params or {}).items()}
    parser = OverridesParser.create()
    for override in parser.parse_overrides(list(task_overrides)):
        axes[override.key_or_group] = as_written(override)
    return [[f"{as_written(o).split('=', 1)[0]}={v}" for v in o.sweep_string_iterator()]
            for o in parser.parse_overrides(list(axes.values())) if o.is_sweep_override()]


def grid_size(task_overrides: Iterable[str], params: Optional[Mapping[str, Any]]) -> int:
    """Jobs of a basic-sweeper multirun: the product of every swept axis's number of values."""
    return math.prod(len(axis) for axis in sweep_axes(task_overrides, params))


def planned_trials(sweeper: Mapping[str, Any], task_overrides: Iterable[str]) -> Optional[int]:
    """How many trials a multirun will run: Optuna's n_trials, or the basic sweeper's grid."""
    target = str(sweeper.get("_target_", ""))
    if "optuna" in target.lower():
        n = sweeper.get("n_trials")
        return int(n) if n else None
    if "BasicSweeper" in target:
        return grid_size(task_overrides, sweeper.get("params"))
    return None


def eta_minutes(finished: list[Any], remaining: int) -> Optional[float]:
    """Minutes left for `remaining` trials at the sweep's measured pace: the wall time from the first
    finished trial's start to the last one's end, per finished trial (so the trials' epochs, their
    fixed costs and any parallel jobs are all in it)."""
    ended = [r for r in finished if r.info.end_time and r.info.start_time]
    if not ended or remaining < 0:
        return None
    span = (max(r.info.end_time for r in ended) - min(r.info.start_time for r in ended)) / 1000
    return span / len(ended) * remaining / 60


def describe_eta(minutes: Optional[float]) -> str:
    if minutes is None:
        return ""
    return f" — ETA {minutes:.0f} min" if minutes >= 1 else f" — ETA {max(1, round(minutes * 60))} s"


def trial_line(preset: str, number: int, total: Optional[int], name: str, finished: list[Any]) -> str:
    """The line shown when trial `number` starts; `finished` are the sweep's finished MLflow runs."""
    head = f"trial {number}/{total}" if total else f"trial {number}"
    line = f"{head} of {preset}: {name}"
    best = best_trial(finished, trial_status, lambda r: r.data.metrics.get(OBJECTIVE))
    if best is not None:
        trial = best.data.tags.get(TRIAL_TAG, "?")
        line += f" — best val 12-margin error {best.data.metrics[OBJECTIVE]:.4f} (trial {trial})"
    if total:
        line += f" — sweep {100 * len(finished) // total}%"
        line += describe_eta(eta_minutes(finished, total - len(finished)))
    return line


def study_line(finished: Sequence[str], presets: Sequence[str], trials_done: int, trials_left: int,
               seconds: float) -> str:
    """As presets of `colorize.study` end (in any order when several run at once): what is done, what
    is left, and an ETA from the trials so far."""
    done = [p for p in presets if p in finished]
    left = [p for p in presets if p not in finished]
    line = f"study: {len(done)}/{len(presets)} presets done ({', '.join(done) or '—'}) in {seconds / 60:.0f} min"
    if left:
        line += f"; left {', '.join(left)}"
        if trials_done:
            line += describe_eta(seconds / trials_done * trials_left / 60)
    return line
