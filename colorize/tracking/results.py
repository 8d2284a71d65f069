"""Read tracked sweeps back from MLflow: parent runs, their trials and per-epoch histories."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, TypeVar

from colorize import names
from colorize.errors import ColorizeError
from colorize.models import describe
from colorize.names import CURVES, OBJECTIVE
from colorize.tracking.owners import is_orphan
from colorize.tracking.store import Tracker

NOT_SWEPT = {names.TRIAL_KEY, "tracking.run_name"}  # params that differ between trials without being an axis
T = TypeVar("T")


def trial_status(run: Any) -> str:
    """finished | pruned | diverged | failed | killed | running, from an MLflow run."""
    tags = run.data.tags
    if is_orphan(run):  # RUNNING, but its process is gone: nobody will end it but the next writer
        return names.KILLED
    if tags.get(names.DIVERGED) == "true":
        return names.DIVERGED
    if tags.get(names.PRUNED) == "true":
        return names.PRUNED
    return run.info.status.lower()


def run_or_best_trial(tracker: Tracker, run_id: str) -> tuple[Any, str]:
    """The run `run_id` names, or, for a sweep's parent run, its best trial by the sweep summary's rule
    (:func:`best_trial`, after :func:`superseded_by_reruns`), and how it was chosen ("" for the run
    itself). One line for an unknown run, or a sweep with no scored trial."""
    run = tracker.get_run(run_id)
    trials = tracker.children(run_id)
    if not trials:
        return run, ""
    trials, _ = superseded_by_reruns(trials)
    best = best_trial(trials, trial_status, lambda r: r.data.metrics.get(OBJECTIVE))
    preset = run.data.tags.get(names.SWEEP_TAG, "multirun")
    if best is None:
        raise ColorizeError(f"sweep {run_id} ({preset}) has no scored trial: every one of its {len(trials)} "
                            "trials diverged, failed or is unfinished")
    return best, f"the best of the {len(trials)} trials of sweep {run_id} ({preset})"


def swept_keys(runs: list) -> list[str]:
    """The params whose values differ between the runs of a sweep (its swept axes)."""
    keys = sorted({k for r in runs for k in r.data.params})
    return [k for k in keys if k not in NOT_SWEPT and len({r.data.params.get(k) for r in runs}) > 1]


def _status(trial: Any) -> str:  # a Trial's (below)
    return trial.status


def _objective(trial: Any) -> Any:
    return trial.metrics.get(OBJECTIVE)


def best_trial(trials: Iterable[T], status: Callable[[T], str] = _status,
               objective: Callable[[T], Any] = _objective) -> Optional[T]:
    """The one rule for "the best trial": the lowest objective among the scored trials (finished or
    pruned, with a finite objective), finished ones preferred over pruned ones."""
    def finite(t: T) -> bool:
        value = objective(t)
        return isinstance(value, (int, float)) and not math.isnan(value)

    scored = [t for t in trials if status(t) in names.SCORED and finite(t)]
    pool = [t for t in scored if status(t) == names.FINISHED] or scored
    return min(pool, key=objective) if pool else None


@dataclass
class Trial:
    run_id: str
    params: dict
    metrics: dict  # the run's latest values (best_* summary metrics included)
    status: str  # finished | pruned | diverged | failed | killed | running
    history: dict = field(default_factory=dict)  # metric -> [(epoch, value), ...]
    label: str = ""
    tags: dict = field(default_factory=dict)  # the run's tags (device, precision, provenance)

    @property
    def best_epoch(self) -> Optional[int]:
        value = self.metrics.get(names.BEST_EPOCH)
        return None if value is None else int(value)

    @property
    def scored(self) -> bool:
        value = self.metrics.get(OBJECTIVE)
        return self.status in names.SCORED and value is not None and not math.isnan(value)

    def diverged_epoch(self) -> Optional[int]:
        return self.history_end() + 1 if self.status == names.DIVERGED else None

    def history_end(self) -> int:
        return max((e for series in self.history.values() for e, _ in series), default=0)


@dataclass
class Sweep:
    parent_run_id: str
    preset: str
    trials: list[Trial]
    swept: list[str]
    start_time: int = 0
    end_time: int = 0
    tags: dict = field(default_factory=dict)  # the parent run's tags (overrides, provenance, Optuna study)
    status: str = names.FINISHED  # the parent run's: finished, or killed / running / failed
    superseded: int = 0  # killed attempts left out: a later attempt of the same job ended (superseded_by_reruns)

    @property
    def best(self) -> Optional[Trial]:
        return best_trial(self.trials)

    def incomplete(self) -> Optional[str]:
        """What a sweep that did not finish left undone (None for a complete one)."""
        unfinished = [t for t in self.trials if t.status in (names.KILLED, names.RUNNING)]
        planned = int(self.tags.get(names.TRIALS_PLANNED_TAG) or 0)
        missing = max(0, planned - len(self.trials))
        if self.status == names.FINISHED and not unfinished and not missing:
            return None
        parts = [f"the sweep is {self.status}"]
        statuses = "/".join(sorted({t.status for t in unfinished}))
        parts += [f"{len(unfinished)} trial(s) {statuses}"] if unfinished else []
        parts += [f"{missing} of {planned} planned trial(s) never started"] if missing else []
        return "Incomplete: " + ", ".join(parts) + " (run the same command again to continue it)."


@dataclass
class Configuration:
    """The trials of a sweep that differ only in their seed: one configuration and its replicates."""

    label: str
    params: dict  # the shared params (seed left out)
    trials: list[Trial]

    @property
    def scored(self) -> list[Trial]:
        return [t for t in self.trials if t.scored]

    @property
    def n(self) -> int:
        return len(self.scored)

    @property
    def status(self) -> str:
        statuses = [t.status for t in self.trials]
        if len(set(statuses)) == 1:
            return statuses[0]
        return ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))

    def values(self, metric: str) -> list[float]:
        """The replicates' values of a summary metric (e.g. best_val_margin12_accuracy)."""
        return [t.metrics[metric] for t in self.scored if metric in t.metrics]

    def mean(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.fmean(values) if values else math.nan

    def std(self, metric: str) -> float:
        """Sample standard deviation over the replicates (0 for a single run)."""
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def curve(self, key: str) -> tuple[list[int], list[float], list[float], list[float]]:
        """(epochs, mean, min, max) of a per-epoch metric over the replicates that reached each epoch."""
        by_epoch: dict[int, list[float]] = {}
        for t in self.trials:
            if t.status == names.DIVERGED:
                continue
            for epoch, value in t.history.get(key, []):
                by_epoch.setdefault(epoch, []).append(value)
        epochs = sorted(by_epoch)
        return (epochs, [statistics.fmean(by_epoch[e]) for e in epochs],
                [min(by_epoch[e]) for e in epochs], [max(by_epoch[e]) for e in epochs])


def configurations(sweep: "Sweep") -> list[Configuration]:
    """A sweep's trials grouped by every param but the seed, in the order they first ran."""
    groups: dict[tuple, Configuration] = {}
    for t in sweep.trials:
        shared = {k: v for k, v in t.params.items() if k != names.SEED and k not in NOT_SWEPT}
        key = tuple(sorted(shared.items()))
        if key not in groups:
            groups[key] = Configuration(t.label, shared, [])
        groups[key].trials.append(t)
    return list(groups.values())


# swept non-model values named in legends, with their short names
SHORT = {"optimizer.lr": "lr", "trainer.batch_size": "bs", "optimizer.weight_decay": "wd", "trainer.shift": "shift",
         "trainer.ema": "ema", "trainer.hflip": "hflip"}


def label(params: dict, swept: list[str]) -> str:
    """Legend name: the model (``2-conv k5 c8 +bn``), the swept options of other groups by name
    (``l1``, ``Adam``) and any swept training value (``lr0.1``)."""
    model = {k.split(".", 1)[1]: _parse(v) for k, v in params.items() if k.startswith("model.")}
    text = describe(model)
    for key in swept:
        if key.endswith("._target_") and key != "model._target_" and key in params:
            text += " " + str(params[key]).rsplit(".", 1)[-1]
    for key in [k for k in SHORT if k in swept and k in params]:
        short = SHORT[key]
        value = params.get(key, "?")
        try:
            value = f"{float(value):.3g}"
        except ValueError:
            pass
        text += f" {short}{value}"
    return text


def _parse(value: str):
    if value in ("True", "False"):
        return value == "True"
    try:
        return int(value)
    except ValueError:
        return value


def superseded_by_reruns(runs: list) -> tuple[list, int]:
    """(the runs, less the killed attempts of a job that a later attempt of it ended; how many left out).
    A rerun resumes a killed trial from its last.pt; where that file is gone (a fresh machine, a new
    folder) it starts a new run of the same job (the same fingerprint tag) and the killed one stays
    in the sweep: counting it would call a finished sweep incomplete and its trials more than ran."""
    def job(run: Any) -> Optional[str]:
        return run.data.tags.get(names.FINGERPRINT_TAG)

    ended = {job(r) for r in runs if job(r) and trial_status(r) not in (names.KILLED, names.RUNNING)}
    kept = [r for r in runs if not (trial_status(r) == names.KILLED and job(r) in ended)]
    return kept, len(runs) - len(kept)


def superseded_note(count: int) -> str:
    """How the sweep's summary and the report name the killed attempts :func:`superseded_by_reruns` left out."""
    return f"{count} killed attempt(s), each rerun to its end as a new run"


def load_sweep(tracker: Tracker, parent_run_id: str) -> Sweep:
    """A sweep's parent run, trials and curves; ColorizeError if the run id is unknown."""
    parent = tracker.get_run(parent_run_id)
    children = tracker.children(parent_run_id)
    if not children:
        raise ColorizeError(f"run {parent_run_id!r} is not a sweep parent run: it has no trials")
    children, superseded = superseded_by_reruns(children)
    swept = swept_keys(children)
    trials = []
    for r in children:
        history = {
            key: tracker.metric_history(r.info.run_id, key)
            for key in CURVES
        }
        trials.append(
            Trial(r.info.run_id, dict(r.data.params), dict(r.data.metrics), trial_status(r), history,
                  label(r.data.params, swept), dict(r.data.tags))
        )
    preset = parent.data.tags.get(names.SWEEP_TAG, parent.info.run_name or "multirun")
    return Sweep(parent_run_id, preset, trials, swept, parent.info.start_time or 0, parent.info.end_time or 0,
                 dict(parent.data.tags), trial_status(parent), superseded)


def parent_runs(tracker: Tracker, preset: Optional[str] = None) -> list:
    """Finished sweep parent runs of the experiment, newest first (optionally of one preset)."""
    return tracker.sweep_parents(preset, status="FINISHED")


def latest_sweeps(tracker: Tracker, presets: Optional[list[str]] = None) -> list[Sweep]:
    """The newest finished sweep of each preset (of each of `presets`, each of which must have one),
    oldest preset first."""
    newest: dict[str, str] = {}
    for run in parent_runs(tracker):
        preset = run.data.tags.get(names.SWEEP_TAG)
        if preset and preset not in newest:
            newest[preset] = run.info.run_id
    where = f"experiment {tracker.experiment_name!r} of {tracker.uri!r}"
    if not newest:
        raise ColorizeError(f"no finished sweeps in {where}")
    missing = [p for p in presets or [] if p not in newest]
    if missing:
        raise ColorizeError(f"no finished sweep of preset {', '.join(missing)} in {where}: it has finished sweeps of "
                            f"{', '.join(sorted(newest))}")
    sweeps = [load_sweep(tracker, run_id) for preset, run_id in newest.items() if presets is None or preset in presets]
    return sorted(sweeps, key=lambda s: s.start_time)
