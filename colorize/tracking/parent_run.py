"""A multirun's MLflow parent run: opened (or an interrupted one continued) when the sweep starts, a
progress line per trial, and a summary of its trials when it ends. Hydra calls these through
:class:`colorize.tracking.sweep_callback.MlflowSweepCallback`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

from colorize import names
from colorize.errors import ColorizeError
from colorize.models import default_run_name
from colorize.names import OBJECTIVE, OVERRIDES_TAG, SWEEP_TAG, TRIALS_PLANNED_TAG
from colorize.paths import resolve_sqlite_uri
from colorize.tables import markdown, records_csv
from colorize.tracking.attempts import computed_overrides
from colorize.tracking.links import ui_link
from colorize.tracking.owners import is_orphan, owner_tags, still_trained
from colorize.tracking.progress import planned_trials, trial_line
from colorize.tracking.provenance import provenance_tags
from colorize.tracking.results import best_trial, superseded_by_reruns, superseded_note, swept_keys, trial_status
from colorize.tracking.store import Tracker

log = logging.getLogger("colorize")


def same_command(runs: list, overrides: str) -> list:
    """Those of `runs` (sweep parent runs) whose command computes what `overrides` (task overrides,
    space-separated) do: the same overrides as `computed_overrides` sees them (speed settings aside)."""
    wanted = computed_overrides(overrides)
    return [run for run in runs if computed_overrides(run.data.tags.get(OVERRIDES_TAG, "")) == wanted]


def newest_same_command(runs: list, overrides: str) -> Optional[str]:
    """The id of the first (newest) of `runs` that `same_command` keeps, if any."""
    same = same_command(runs, overrides)
    return same[0].info.run_id if same else None


def interrupted_sweep(tracker: Tracker, preset: str, overrides: str) -> Optional[Any]:
    """The newest parent run of the same command (`same_command`) that did not finish (killed, or orphaned)."""
    for run in same_command(tracker.sweep_parents(preset), overrides):
        if run.info.status in ("KILLED", "FAILED") or is_orphan(run):
            return run
        return None  # the newest such sweep finished, or is running live elsewhere
    return None


def refuse_while_trained(tracker: Tracker, parent_id: str) -> None:
    """One line, before anything changes, where an interrupted sweep's trials are still trained by its
    earlier attempt (SLURM jobs that outlived a SIGKILLed sweep; workers not yet ended):
    continued now, each such trial would train twice at once, into the same folder."""
    live, stops = still_trained(tracker.children(parent_id))
    if live:
        raise ColorizeError(
            f"this sweep's earlier attempt still trains {len(live)} trial{'s' * (len(live) > 1)}: "
            f"{'; '.join(live)}. Wait for them to end, or stop them ({'; '.join(f'`{s}`' for s in stops)}: "
            "each ends its run KILLED with its last checkpoint), then run the same command again to continue")


def optuna_tags(sweeper: Any) -> dict[str, str]:
    """Where an Optuna sweep's study lives (for the report's tuning plots): sqlite made absolute,
    a database password never written."""
    storage, study = sweeper.get("storage"), sweeper.get("study_name")
    if not storage or not study:
        return {}
    if str(storage).startswith("sqlite:///"):
        storage = resolve_sqlite_uri(str(storage))
    else:
        from sqlalchemy.engine import make_url

        storage = make_url(str(storage)).render_as_string(hide_password=True)
    return {names.OPTUNA_STORAGE_TAG: storage, names.OPTUNA_STUDY_TAG: study}


def summarize(children: list) -> tuple[list[str], list[dict]]:
    """One row per trial: swept values, best epoch, best val error, status; and the swept keys."""
    swept = swept_keys(children)
    rows = []
    for r in children:
        m = r.data.metrics
        rows.append(
            {"run": r.data.tags.get(names.RUN_NAME_TAG, ""), **{k: r.data.params.get(k, "") for k in swept},
             names.BEST_EPOCH: int(m[names.BEST_EPOCH]) if names.BEST_EPOCH in m else "",
             OBJECTIVE: m.get(OBJECTIVE, ""), "status": trial_status(r), "run_id": r.info.run_id}
        )
    return swept, rows


def ending_status(error: Optional[BaseException]) -> str:
    """How a multirun's parent run ends: FINISHED, or -- when an error is on its way out of the sweep
    (Hydra calls on_multirun_end in a `finally`) -- KILLED for an interrupt or a sweep stopped in one
    line (a lost SLURM job), FAILED for anything else. Either way the same command continues it."""
    if error is None:
        return "FINISHED"
    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"


def to_markdown(rows: list[dict]) -> str:
    """The summary as a Markdown table ("(no trials)" for none)."""
    return markdown(list(rows[0]), (list(r.values()) for r in rows)) if rows else "(no trials)\n"


def open_parent(config: DictConfig) -> str:
    """Open the multirun's parent run, or continue the interrupted one of the same command; its id."""
    hydra = config.hydra
    preset = hydra.runtime.choices.get("sweep") or "multirun"
    overrides = " ".join(hydra.overrides.task)
    tracker = Tracker.from_config(config.tracking)  # (opening it ended the trials a killed sweep orphaned)
    tags = {SWEEP_TAG: preset, "sweep_dir": str(Path(hydra.sweep.dir).resolve()), OVERRIDES_TAG: overrides,
            names.NOTE_TAG: f"`colorize-train -m {overrides}`", **owner_tags(),
            **provenance_tags()}
    tags |= optuna_tags(hydra.sweeper)
    planned = planned_trials(hydra.sweeper, hydra.overrides.task)
    if planned:
        tags[TRIALS_PLANNED_TAG] = planned
    interrupted = interrupted_sweep(tracker, preset, overrides)
    if interrupted is not None:  # the same command again: continue that sweep and its parent run
        refuse_while_trained(tracker, interrupted.info.run_id)
        tracker.reopen(interrupted.info.run_id)
        run = tracker.tracked_run(interrupted.info.run_id)
        run.set_tags(tags | {"resumed": "true"})  # its killed trials resume when their jobs come round
        log.info("continuing interrupted sweep: MLflow parent run %s", run.run_id)
    else:
        run = tracker.create_run(preset, tags=tags)
    log.info("MLflow parent run %s (%s) in %s; browse: %s", run.run_id, preset, tracker.uri,
             ui_link(tracker.uri, tracker.experiment_id, run.run_id))
    return run.run_id


def progress_line(config: DictConfig, parent_id: str) -> str:
    """The line a trial starts with (see :mod:`colorize.tracking.progress`)."""
    hydra = config.hydra
    tracker = Tracker.from_config(config.tracking)
    parent = tracker.get_run(parent_id)
    finished = [r for r in tracker.children(parent_id) if r.info.status != "RUNNING"]
    planned = parent.data.tags.get(TRIALS_PLANNED_TAG)
    return trial_line(
        hydra.runtime.choices.get("sweep") or "multirun", hydra.job.num + 1,
        int(planned) if planned else None, config.tracking.get("run_name") or default_run_name(config),
        finished,
    )


def close_parent(config: DictConfig, parent_id: str, error: Optional[BaseException]) -> None:
    """Summarise the trials into the sweep folder and the parent run, and end it (see ending_status)."""
    sweep_dir = Path(config.hydra.sweep.dir)
    tracker = Tracker.from_config(config.tracking)
    run = tracker.tracked_run(parent_id)
    # a killed attempt that a later one of the same job ended is left out, as the report does
    children, superseded = superseded_by_reruns(tracker.children(parent_id))
    swept, rows = summarize(children)
    (sweep_dir / "summary.csv").write_text(records_csv(rows))
    (sweep_dir / "summary.md").write_text(to_markdown(rows))
    run.log_artifact(sweep_dir / "summary.csv")
    run.log_artifact(sweep_dir / "summary.md")
    best = best_trial(rows, lambda r: r["status"], lambda r: r[OBJECTIVE])
    summary = {"trials": len(rows),
               "failed_trials": sum(r["status"] in (names.FAILED, names.DIVERGED) for r in rows)}
    if best is not None:
        summary[OBJECTIVE] = best[OBJECTIVE]
        run.set_tags({"best_run_id": best["run_id"], "best_run": best["run"], "swept": ",".join(swept)})
    run.log_metrics(summary)
    run.end(ending_status(error))
    left_out = f"; {superseded_note(superseded)}, left out" if superseded else ""
    log.info("sweep summary (%d trials%s):\n%s", len(rows), left_out, to_markdown(rows))
    log.info("the sweep's parent run %s and its trials, in the runs table: %s", parent_id,
             ui_link(tracker.uri, tracker.experiment_id))
