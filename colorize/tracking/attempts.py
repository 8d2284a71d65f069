"""Which MLflow run a job writes into: a new one, an interrupted one resumed from its checkpoint, or
none (an earlier attempt of the same job in the same sweep already finished: skip it).

    explicit trainer.resume=<run id | last.pt>  -> resume (the run's saved config; conflicting overrides refused)
    same job finished (or diverged) in this sweep -> skip (its objective is the job's)
    same job killed or orphaned in this sweep    -> resume from its last.pt; with none, restart that run
                                                    from scratch if it logged no epoch, else end it KILLED: new
    otherwise                                     -> new (nested under the sweep's parent run, if any)

"The same job" is the same fingerprint: a hash of everything the job computes, not where it logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from colorize import names
from colorize.config import plain, typed
from colorize.config.compose import as_written, override_key
from colorize.errors import ColorizeError
from colorize.tracking.owners import is_orphan
from colorize.tracking.store import Tracker, TrackedRun, flatten
from colorize.training.checkpoint import LAST
from colorize.training.checkpoint import read_checkpoint

log = logging.getLogger("colorize")

NEW, RESUME, RESTART, SKIP = "new", "resume", "restart", "skip"
# keys that do not change what a job computes: excluded from its fingerprint, free to differ on resume
NOT_FINGERPRINTED = (names.TRIAL_KEY, "trainer.resume", "tracking", "trainer.num_threads", "callbacks",
                     "trainer.sync_every_step", "trainer.cuda_graphs")  # (how fast, not what: same numbers)


@dataclass
class Attempt:
    """What a job does: `action` new | resume | restart | skip, with the config it runs (a resumed run's own)."""

    action: str
    cfg: DictConfig
    run_id: str = ""  # resume, restart, skip: the run
    train_state: dict = field(default_factory=dict)  # resume: where training stopped
    status: str = ""  # skip: the finished run's MLflow status
    objective: float = math.nan  # skip: its best val 12-margin error (NaN if it diverged)


def fingerprint(cfg: DictConfig) -> str:
    """A hash of what the job computes (model, optimizer, data, trainer, pruner; not where it logs)."""
    flat = flatten(plain(cfg))
    kept = {k: v for k, v in flat.items() if not _free(k)}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _free(key: str) -> bool:
    return any(key == n or key.startswith(n + ".") for n in NOT_FINGERPRINTED)


def computed_overrides(overrides: str) -> list[str]:
    """A command's task overrides, as a sweep's parent run keeps them (its `overrides` tag), less those
    of how fast it runs, not what (NOT_FINGERPRINTED: `trainer.cuda_graphs=on` ...): two commands
    with the same list compute the same runs, so a study or sweep may go on with the other's."""
    return [o for o in overrides.split() if not _free(override_key(o))]


def previous_attempt(tracker: Tracker, parent_run_id: str, fp: str):
    """The newest earlier run of the same job in the same sweep, if any (and not running live)."""
    for run in reversed(tracker.children(parent_run_id)):
        if run.data.tags.get(names.FINGERPRINT_TAG) == fp and (run.info.status != "RUNNING" or is_orphan(run)):
            return run
    return None


def resume_conflicts(cfg: DictConfig, saved: DictConfig, overrides: list[str]) -> list[str]:
    """The command-line overrides that would make a resumed run differ from its saved config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    def value(config: DictConfig, key: str) -> object:  # a node as plain values, an enum as its string
        node = OmegaConf.select(config, key)
        return plain(node) if isinstance(node, DictConfig) else getattr(node, "value", node)

    conflicts = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group.replace("/", ".")
        if not _free(key) and value(cfg, key) != value(saved, key):
            conflicts.append(as_written(override))
    return conflicts


def locate_resume(resume: str, tracker: Tracker, workdir: Path) -> tuple[Path, dict]:
    """The last checkpoint of a run (an id, looked up in `tracker`'s store) or at a path, and its payload."""
    path = Path(resume)
    if not path.is_file():
        try:
            run = tracker.get_run(resume)
        except Exception:
            raise ColorizeError(
                f"trainer.resume={resume!r} is neither a checkpoint file nor a run in {tracker.uri!r}"
            ) from None
        local = Path(run.data.tags.get(names.OUTPUT_DIR_TAG, "")) / LAST
        if local.is_file() and _run_of(local) == resume:  # (a folder another run wrote into is not this run's)
            path = local
        else:
            try:
                path = tracker.download(resume, LAST, workdir)
            except Exception:
                raise ColorizeError(f"run {resume!r} has no {LAST} checkpoint to resume from") from None
    payload = read_checkpoint(path)
    if "train_state" not in payload:
        raise ColorizeError(f"checkpoint {str(path)!r} holds no training state (use the run's {LAST})")
    return path, payload


def _run_of(path: Path) -> Optional[str]:
    try:
        return read_checkpoint(path).get("run_id")
    except ColorizeError:
        return None


def check_resumable(tracker: Tracker, payload: dict) -> None:
    """Resume acts on an unfinished run only: a finished, diverged or live run is refused, untouched."""
    run_id, epoch = str(payload.get("run_id")), payload["train_state"]["epoch"]
    try:
        run = tracker.get_run(run_id)
    except Exception:
        raise ColorizeError(f"the checkpoint's run {run_id!r} is not in the MLflow store {tracker.uri!r}: "
                            "set tracking.uri to the store it was tracked in") from None
    status, tags = run.info.status, run.data.tags
    if status == "FINISHED":
        stopped = int(run.data.metrics.get(names.STOPPED_EPOCH, epoch))
        raise ColorizeError(f"run {run_id} finished at epoch {stopped}; nothing to resume: start a new run "
                            "(without trainer.resume), e.g. with a larger trainer.max_epochs")
    if tags.get(names.DIVERGED) == "true":
        raise ColorizeError(f"run {run_id} diverged at epoch {tags.get('diverged_epoch', '?')}; nothing to "
                            "resume: start a new run with a lower optimizer.lr")
    if status == "RUNNING" and not is_orphan(run):
        raise ColorizeError(f"run {run_id} is still running (pid {tags.get('pid', '?')} on "
                            f"{tags.get('host', '?')}): stop it first, or wait for it to end")


def _load(resume: str, tracker: Tracker, keep_in: Optional[Path] = None, explicit: bool = False) -> dict:
    """The checkpoint's payload; an `explicit` trainer.resume is checked first (:func:`check_resumable`).
    The checkpoint is then copied to `keep_in`/last.pt: the resumed run's folder starts from it."""
    with tempfile.TemporaryDirectory() as tmp:
        path, payload = locate_resume(resume, tracker, Path(tmp))
        if explicit:
            check_resumable(tracker, payload)
        if keep_in is not None and path.resolve() != (keep_in / LAST).resolve():
            keep_in.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, keep_in / LAST)
        return payload


def decide(cfg: DictConfig, tracker: Tracker, parent_run_id: Optional[str], overrides: list[str],
           output_dir: Optional[Path] = None) -> Attempt:
    """The attempt a job makes (see the module's table); may end a dead earlier attempt KILLED. A
    resumed run's checkpoint is copied into `output_dir`."""
    resume = cfg.trainer.get("resume")
    if resume:
        payload = _load(resume, tracker, output_dir, explicit=True)
        saved = typed(payload["config"])
        saved.tracking, saved.callbacks = cfg.tracking, cfg.callbacks  # where it logs: as given now
        conflicts = resume_conflicts(cfg, saved, overrides)
        if conflicts:
            raise ColorizeError(
                f"trainer.resume={resume} continues that run as it was configured, but {', '.join(conflicts)} "
                "would change it: drop them (only tracking.*, callbacks.*, trainer.num_threads, trainer.cuda_graphs "
                "and trainer.sync_every_step may differ)"
            )
        return Attempt(RESUME, saved, payload["run_id"], payload["train_state"])
    prior = previous_attempt(tracker, parent_run_id, fingerprint(cfg)) if parent_run_id else None
    if prior is None:
        return Attempt(NEW, cfg)
    if prior.info.status == "FINISHED" or prior.data.tags.get(names.DIVERGED) == "true":
        log.info("already finished in this sweep as run %s: skipping", prior.info.run_id)
        return Attempt(SKIP, cfg, prior.info.run_id, status=prior.info.status,
                       objective=prior.data.metrics.get(names.OBJECTIVE, math.nan))
    try:  # killed or orphaned: continue it from its last checkpoint
        payload = _load(prior.info.run_id, tracker, output_dir)
    except ColorizeError:  # killed before its first epoch ended, or its last.pt is gone: start over
        if not prior.data.metrics and names.BUDGET_EPOCHS not in prior.data.params:  # it logged nothing yet
            log.info("restarting interrupted run %s from the start: it stopped before its first checkpoint",
                     prior.info.run_id)
            return Attempt(RESTART, cfg, prior.info.run_id)  # in place: one run per job, not a killed one beside
        tracker.tracked_run(prior.info.run_id).end("KILLED")  # its epochs stay on record, the rerun is a new run
        return Attempt(NEW, cfg)
    log.info("resuming interrupted run %s at epoch %d", prior.info.run_id, payload["train_state"]["epoch"] + 1)
    return Attempt(RESUME, cfg, prior.info.run_id, payload["train_state"])


@contextmanager
def open_run(tracker: Tracker, attempt: Attempt, name: str, tags: dict, parent_run_id: Optional[str],
             params: Optional[dict] = None, files: Sequence[Path] = ()) -> Iterator[TrackedRun]:
    """The attempt's run, open for logging, with its `params` and `files`: a new run, one restarted in
    place, or the resumed one (which has them), backfilled with the epochs its checkpoint holds but the
    store missed. Ends FINISHED, FAILED or KILLED (Ctrl-C)."""
    if attempt.action == NEW:
        runner = tracker.start_run(name, tags=tags, parent_run_id=parent_run_id, params=params, files=files)
    else:
        runner = tracker.resume_run(attempt.run_id, tags=tags, params=params, files=files)
    with runner as run:
        if attempt.action == RESUME:  # epochs checkpointed but not yet logged when the run was stopped
            logged = {step for step, _ in tracker.metric_history(run.run_id, names.VAL_MSE)}
            for epoch, metrics in enumerate(attempt.train_state["history"], start=1):
                if epoch not in logged:
                    run.log_metrics(metrics, step=epoch)
        yield run
