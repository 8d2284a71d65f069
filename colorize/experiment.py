"""One training job from a composed config: data, model, loop, tracking, artifacts."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from omegaconf import DictConfig, OmegaConf

from colorize.checkpoint import save_checkpoint
from colorize.config import build, to_object
from colorize.data.images import Splits
from colorize.early_stopping import EarlyStopping
from colorize.models.convnet import describe
from colorize.runtime import resolve_num_threads, seed_everything, select_device
from colorize.tracking import Tracker, TrackedRun, flatten
from colorize.trainer import DeviceImages, Diverged, EpochCallback, FitResult, fit
from colorize.visualize import save_samples

log = logging.getLogger("colorize")

OBJECTIVE = "val_margin12_error"


@dataclass
class JobContext:
    """Where a job runs: its output folder, an optional MLflow parent run, its parallel peers."""

    output_dir: Path
    parent_run_id: Optional[str] = None
    parallel_jobs: int = 1
    tags: Optional[dict] = None
    # extra per-epoch callbacks, e.g. an Optuna TrialReporter; built once the config is valid
    epoch_hooks: Callable[[object], list[EpochCallback]] = lambda conf: []


@dataclass
class JobResult:
    run_id: str
    status: str  # FINISHED | FAILED
    objective: float  # best val_margin12_error, NaN for a diverged run
    fit: Optional[FitResult] = None
    pruned: bool = False


def run_job(cfg: DictConfig, ctx: JobContext) -> JobResult:
    """Validate, load data, train and track one configuration."""
    conf = to_object(cfg)  # every range check happens before any data is read or run created
    device = select_device(conf.trainer.device)
    threads = resolve_num_threads(conf.trainer.num_threads, ctx.parallel_jobs)
    torch.set_num_threads(threads)
    splits: Splits = build(cfg.data)
    tracker = Tracker(conf.tracking.uri, conf.tracking.experiment, conf.tracking.artifact_location)
    hooks = ctx.epoch_hooks(conf)

    generator = seed_everything(conf.trainer.seed)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer)(model.parameters())
    train, val = DeviceImages.from_set(splits.train, device), DeviceImages.from_set(splits.val, device)
    stopper = (
        EarlyStopping(conf.trainer.early_stopping.epsilon, conf.trainer.early_stopping.patience)
        if conf.trainer.early_stopping.enabled
        else None
    )
    name = conf.tracking.run_name or f"{describe(cfg.model)} lr{conf.optimizer.lr:g}"
    tags = {"model": describe(cfg.model), "data": splits.name, "output_dir": str(ctx.output_dir), **(ctx.tags or {})}
    log.info(
        "%s on %s (%d train / %d val images), %s, %d threads",
        name, splits.name, len(train), len(val), device, threads,
    )
    with tracker.start_run(name, tags=tags, parent_run_id=ctx.parent_run_id) as run:
        run.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)) | {"data.name": splits.name})
        run.set_tags({"device": str(device), "num_threads": threads})
        (ctx.output_dir).mkdir(parents=True, exist_ok=True)
        config_file = ctx.output_dir / "config.yaml"
        config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run.log_artifact(config_file)

        def on_epoch(epoch: int, metrics: dict) -> None:
            run.log_metrics(metrics, step=epoch)
            log.info(
                "epoch %3d/%d  train_mse %.5f  val_mse %.5f  val_acc12 %.4f  (%.1fs)",
                epoch, conf.trainer.max_epochs, metrics["train_mse"], metrics["val_mse"],
                metrics["val_margin12_accuracy"], metrics["epoch_seconds"],
            )
            for hook in hooks:
                hook(epoch, metrics)

        try:
            result = fit(
                model, optimizer, train, val,
                max_epochs=conf.trainer.max_epochs,
                batch_size=conf.trainer.batch_size,
                generator=generator,
                early_stopping=stopper,
                eval_batch_size=conf.trainer.eval_batch_size,
                on_epoch=on_epoch,
            )
        except Diverged as exc:
            log.warning("%s: %s", name, exc)
            run.fail(diverged="true", diverged_epoch=exc.epoch)
            return JobResult(run.run_id, "FAILED", math.nan)
        if result.stopped_by is not None:
            log.info("%s: %s", name, result.stopped_by)
            run.set_tags({result.stopped_by.tag: "true", "stopped_by": str(result.stopped_by)})
        _finish(run, result, model, cfg, val, conf.trainer.num_samples, ctx.output_dir, name)
        best = result.best
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
        OmegaConf.to_container(cfg.model, resolve=True),
        epoch=result.best_epoch,
        metrics={k: float(v) for k, v in best.items()},
    )
    run.log_artifact(ckpt)
    model.eval()
    with torch.inference_mode():
        gray, target = val.gray[:num_samples], val.rgb[:num_samples]
        figure = save_samples(gray, model(gray), target, output_dir / "samples.png", title=title)
    run.log_artifact(figure)
