"""One training job from a composed config: data, model, loop, tracking, artifacts, resume."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from colorize.checkpoint import read_checkpoint, save_checkpoint
from colorize.config import build, plain, to_object, typed
from colorize.data.cache import SPLITS
from colorize.data.images import Splits
from colorize.early_stopping import EarlyStopping
from colorize.errors import ColorizeError
from colorize.models import default_run_name, describe
from colorize.precision import resolve_precision
from colorize.provenance import provenance_tags
from colorize.runtime import resolve_num_threads, seed_everything, select_device
from colorize.tracking import Tracker, TrackedRun, flatten, is_orphan, owner_tags
from colorize.trainer import DeviceImages, Diverged, EpochCallback, FitResult, TrainState, fit
from colorize.visualize import save_samples

log = logging.getLogger("colorize")

OBJECTIVE = "val_margin12_error"
LAST = "last.pt"
# keys that do not change what a job computes: excluded from its fingerprint
NOT_FINGERPRINTED = ("optuna_trial", "trainer.resume", "tracking", "trainer.num_threads")


@dataclass
class JobContext:
    """Where a job runs: its output folder, an optional MLflow parent run, its parallel peers."""

    output_dir: Path
    parent_run_id: Optional[str] = None
    parallel_jobs: int = 1
    tags: Optional[dict] = None
    overrides: list[str] = field(default_factory=list)  # the job's command-line (task) overrides
    # extra per-epoch callbacks, e.g. an Optuna TrialReporter; built once the config is valid
    epoch_hooks: Callable[[object], list[EpochCallback]] = lambda conf: []


@dataclass
class JobResult:
    run_id: str
    status: str  # FINISHED | FAILED
    objective: float  # best val_margin12_error, NaN for a diverged run
    fit: Optional[FitResult] = None
    pruned: bool = False


def fingerprint(cfg: DictConfig) -> str:
    """A hash of what the job computes (model, optimizer, data, trainer, pruner; not where it logs)."""
    flat = flatten(plain(cfg))
    kept = {k: v for k, v in flat.items() if not any(k == n or k.startswith(n + ".") for n in NOT_FINGERPRINTED)}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def previous_attempt(tracker: Tracker, parent_run_id: str, fp: str):
    """The newest earlier run of the same job in the same sweep, if any (and not running live)."""
    for run in reversed(tracker.children(parent_run_id)):
        if run.data.tags.get("fingerprint") == fp and (run.info.status != "RUNNING" or is_orphan(run)):
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
        if key == "trainer.resume" or any(key == n or key.startswith(n + ".") for n in NOT_FINGERPRINTED):
            continue
        if value(cfg, key) != value(saved, key):
            conflicts.append(override.input_line)
    return conflicts


def locate_resume(resume: str, tracker: Tracker, workdir: Path) -> dict:
    """The last checkpoint of a run (an id, looked up in `tracker`'s store) or at a path."""
    path = Path(resume)
    if not path.is_file():
        try:
            run = tracker.client.get_run(resume)
        except Exception:
            raise ColorizeError(
                f"trainer.resume={resume!r} is neither a checkpoint file nor a run in {tracker.uri!r}"
            ) from None
        local = Path(run.data.tags.get("output_dir", "")) / LAST
        if local.is_file():
            path = local
        else:
            try:
                path = Path(tracker.client.download_artifacts(resume, LAST, str(workdir)))
            except Exception:
                raise ColorizeError(f"run {resume!r} has no {LAST} checkpoint to resume from") from None
    payload = read_checkpoint(path)
    if "train_state" not in payload:
        raise ColorizeError(f"checkpoint {str(path)!r} holds no training state (use the run's {LAST})")
    return payload


def run_job(cfg: DictConfig, ctx: JobContext) -> JobResult:
    """Validate, load data, train and track one configuration (or resume/reuse an earlier attempt)."""
    resume_payload, tracker = None, None
    if cfg.trainer.get("resume"):
        tracker = Tracker.from_config(cfg.tracking)  # the store the run lives in: as given now
        with tempfile.TemporaryDirectory() as tmp:
            resume_payload = locate_resume(cfg.trainer.resume, tracker, Path(tmp))
        saved = typed(resume_payload["config"])
        saved.tracking = cfg.tracking
        conflicts = resume_conflicts(cfg, saved, ctx.overrides)
        if conflicts:
            raise ColorizeError(
                f"trainer.resume={cfg.trainer.resume} continues that run as it was configured, but "
                f"{', '.join(conflicts)} would change it: drop them (only tracking.* and trainer.num_threads may differ)"
            )
        cfg = saved
    conf = to_object(cfg)  # every range check happens before any data is read or run created
    tracker = tracker or Tracker.from_config(conf.tracking)
    fp = fingerprint(cfg)
    resumable = resume_payload is None and ctx.parent_run_id
    prior = previous_attempt(tracker, ctx.parent_run_id, fp) if resumable else None
    if prior is not None:
        if prior.info.status == "FINISHED" or prior.data.tags.get("diverged") == "true":
            value = prior.data.metrics.get(f"best_{OBJECTIVE}", math.nan)
            log.info("already finished in this sweep as run %s: skipping", prior.info.run_id)
            return JobResult(prior.info.run_id, prior.info.status, value)
        try:  # killed or orphaned: continue it from its last checkpoint
            with tempfile.TemporaryDirectory() as tmp:
                resume_payload = locate_resume(prior.info.run_id, tracker, Path(tmp))
            log.info("resuming interrupted run %s at epoch %d", prior.info.run_id,
                     resume_payload["train_state"]["epoch"] + 1)
        except ColorizeError:  # killed before its first epoch ended: start over
            tracker.run(prior.info.run_id).end("KILLED")
    device = select_device(conf.trainer.device)
    threads = resolve_num_threads(conf.trainer.num_threads, ctx.parallel_jobs)
    torch.set_num_threads(threads)
    splits: Splits = SPLITS.get(plain(cfg.data), lambda: build(cfg.data))  # decoded once per process
    precision = resolve_precision(conf.trainer.precision, device)
    hooks = ctx.epoch_hooks(conf)

    generator = seed_everything(conf.trainer.seed)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer)(model.parameters())
    schedule = build(cfg.scheduler) if "_target_" in cfg.scheduler else None  # built by fit once N is known
    train, val = DeviceImages.from_set(splits.train, device), DeviceImages.from_set(splits.val, device)
    stopper = (
        EarlyStopping(conf.trainer.early_stopping.epsilon, conf.trainer.early_stopping.patience)
        if conf.trainer.early_stopping.enabled
        else None
    )
    name = conf.tracking.run_name or default_run_name(cfg)
    tags = {
        "model": describe(cfg.model), "data": splits.name, "output_dir": str(ctx.output_dir), "fingerprint": fp,
        **owner_tags(), **provenance_tags(device), **(ctx.tags or {}),
    }
    log.info(
        "%s on %s (%d train / %d val images), %s, %d threads, precision %s (trainer.precision=%s)",
        name, splits.name, len(train), len(val), device, threads, precision, conf.trainer.precision.value,
    )
    state = None
    if resume_payload is not None:
        state = TrainState.from_dict(resume_payload["train_state"])
        runner = tracker.resume_run(resume_payload["run_id"], tags=tags)
    else:
        runner = tracker.start_run(name, tags=tags, parent_run_id=ctx.parent_run_id)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    last = ctx.output_dir / LAST
    with runner as run:
        if state is None:
            run.log_params(flatten(plain(cfg)) | {"data.name": splits.name})
            config_file = ctx.output_dir / "config.yaml"
            config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
            run.log_artifact(config_file)
        run.set_tags({"device": str(device), "num_threads": threads, "precision": precision})
        if state is not None:  # epochs checkpointed but not yet logged when the run was stopped
            logged = {m.step for m in tracker.client.get_metric_history(run.run_id, "val_mse")}
            for epoch, metrics in enumerate(state.history, start=1):
                if epoch not in logged:
                    run.log_metrics(metrics, step=epoch)

        planned = {"epochs": state.budget_epochs if state and state.budget_epochs else conf.trainer.max_epochs}

        def on_epoch(epoch: int, metrics: dict) -> None:
            run.log_metrics(metrics, step=epoch)
            log.info(
                "epoch %3d/%d  train_mse %.5f  val_mse %.5f  val_acc12 %.4f  (%.1fs)",
                epoch, planned["epochs"], metrics["train_mse"], metrics["val_mse"],
                metrics["val_margin12_accuracy"], metrics["epoch_seconds"],
            )
            for hook in hooks:
                hook(epoch, metrics)

        def on_state(train_state: TrainState) -> None:
            if train_state.budget_epochs and train_state.epoch == 1:  # the budget has just fixed N
                planned["epochs"] = train_state.budget_epochs
                run.log_params({"trainer.budget_epochs": train_state.budget_epochs})
                log.info("%g min budget: %d epochs fit at the first epoch's pace (replay with trainer.max_epochs=%d)",
                         conf.trainer.max_minutes, train_state.budget_epochs, train_state.budget_epochs)
            save_checkpoint(
                last, model, plain(cfg.model),
                train_state=train_state.to_dict(), run_id=run.run_id,
                config=plain(cfg),
            )

        try:
            result = fit(
                model, optimizer, train, val,
                max_epochs=conf.trainer.max_epochs,
                batch_size=conf.trainer.batch_size,
                generator=generator,
                early_stopping=stopper,
                eval_batch_size=conf.trainer.eval_batch_size,
                on_epoch=on_epoch,
                max_seconds=conf.trainer.max_minutes * 60 or None,
                resume=state,
                on_state=on_state,
                schedule=schedule,
                hflip=conf.trainer.hflip,
                precision=precision,
            )
        except Diverged as exc:
            log.warning("%s: %s", name, exc)
            run.fail(diverged="true", diverged_epoch=exc.epoch)
            return JobResult(run.run_id, "FAILED", math.nan)
        except KeyboardInterrupt:
            if last.is_file():
                run.log_artifact(last)
                log.warning("interrupted: resume with trainer.resume=%s", run.run_id)
            raise
        if result.stopped_by is not None:  # pruned, or out of time
            log.info("%s: %s", name, result.stopped_by)
            run.set_tags({result.stopped_by.tag: "true", "stopped_by": str(result.stopped_by)})
        _finish(run, result, model, cfg, val, conf.trainer.num_samples, ctx.output_dir, name)
        run.log_artifact(last)
        best = result.best
    if run.errors:  # the store went away mid-run: the model is trained and saved all the same
        raise ColorizeError(f"{run.errors[0]}; training finished, checkpoint at {ctx.output_dir / 'best.pt'}")
    log.info(
        "best epoch %d of %d: val_mse %.5f  val 12-margin accuracy %.4f  (run %s)",
        result.best_epoch, result.stopped_epoch, best["val_mse"], best["val_margin12_accuracy"], run.run_id,
    )
    return JobResult(run.run_id, "FINISHED", best[OBJECTIVE], result, pruned=result.stopped_by is not None)


def _finish(
    run: TrackedRun, result: FitResult, model: torch.nn.Module, cfg: DictConfig,
    val: DeviceImages, num_samples: int, output_dir: Path, title: str,
) -> None:
    """Log the best epoch's summary metrics, the checkpoint and the qualitative figure."""
    best = result.best
    run.log_metrics(
        {"best_epoch": result.best_epoch, "stopped_epoch": result.stopped_epoch}
        | {f"best_{k}": v for k, v in best.items() if k != "epoch_seconds"}
        | {"train_seconds": sum(h["epoch_seconds"] for h in result.history)},
        step=result.best_epoch,
    )
    ckpt = save_checkpoint(
        output_dir / "best.pt",
        model,
        plain(cfg.model),
        epoch=result.best_epoch,
        metrics={k: float(v) for k, v in best.items()},
    )
    run.log_artifact(ckpt)
    model.eval()
    with torch.inference_mode():
        gray, target = val.gray[:num_samples], val.rgb[:num_samples]
        figure = save_samples(gray, model(gray), target, output_dir / "samples.png", title=title)
    run.log_artifact(figure)
