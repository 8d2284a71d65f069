"""One training job, assembled from a composed config: which run it writes into, the data, model
and optimizer, the callbacks, `fit`, and the artifacts of the result."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from colorize import names
from colorize.config import TrainConfig, build, plain, to_object
from colorize.data.cache import SPLITS
from colorize.errors import ColorizeError
from colorize.models import default_run_name, describe
from colorize.report.samples import SAMPLE_ARRAYS, save_sample_arrays, save_samples
from colorize.tracking.attempts import NEW, SKIP, decide, fingerprint, open_run
from colorize.tracking.provenance import provenance_tags
from colorize.tracking.store import Tracker, TrackedRun, flatten, owner_tags
from colorize.training.callbacks import LAST
from colorize.training.checkpoint import save_checkpoint
from colorize.training.early_stopping import EarlyStopping
from colorize.training.graphs import use_cuda_graphs
from colorize.training.loop import Callback, DeviceImages, Diverged, FitOptions, FitResult, TrainState, fit
from colorize.training.precision import resolve_precision
from colorize.training.runtime import resolve_num_threads, seed_everything, select_device

log = logging.getLogger("colorize")


@dataclass
class JobContext:
    """Where a job runs: its output folder, an optional MLflow parent run, its parallel peers."""

    output_dir: Path
    parent_run_id: Optional[str] = None
    parallel_jobs: int = 1
    tags: Optional[dict] = None
    overrides: list[str] = field(default_factory=list)  # the job's command-line (task) overrides
    # callbacks that depend on how the job was launched (an Optuna trial's reporter): built once the
    # config is valid, run after the config's own
    extra_callbacks: Callable[[TrainConfig], list[Callback]] = lambda conf: []


@dataclass
class Job:
    """What callbacks get in `setup`: the job's run, model, config and output folder."""

    run: TrackedRun
    model: torch.nn.Module
    cfg: DictConfig
    conf: TrainConfig
    output_dir: Path


@dataclass
class JobResult:
    run_id: str
    status: str  # FINISHED | FAILED
    objective: float  # best val_margin12_error, NaN for a diverged run
    fit: Optional[FitResult] = None
    experiment_id: str = ""
    diverged: str = ""  # how a diverged run diverged ("training diverged at epoch 3, step 12: loss=nan")


def run_job(cfg: DictConfig, ctx: JobContext) -> JobResult:
    """Validate, load data, train and track one configuration (or resume/reuse an earlier attempt)."""
    to_object(cfg)  # every range check happens before any data is read or any run is made
    tracker = Tracker.from_config(cfg.tracking)
    attempt = decide(cfg, tracker, ctx.parent_run_id, ctx.overrides, ctx.output_dir)
    if attempt.action == SKIP:
        return JobResult(attempt.run_id, attempt.status, attempt.objective, experiment_id=tracker.experiment_id)
    cfg, conf = attempt.cfg, to_object(attempt.cfg)  # a resumed run's own config
    device = select_device(conf.trainer.device)
    threads = resolve_num_threads(conf.trainer.num_threads, ctx.parallel_jobs)
    torch.set_num_threads(threads)
    precision = resolve_precision(conf.trainer.precision, device)
    graphs = conf.trainer.cuda_graphs.value if use_cuda_graphs(conf.trainer.cuda_graphs, device, precision) else "off"
    splits = SPLITS.get(plain(cfg.data), lambda: build(cfg.data))  # decoded once per process
    train, val = DeviceImages.from_set(splits.train, device), DeviceImages.from_set(splits.val, device)
    generator = seed_everything(conf.trainer.seed)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer)(model.parameters())
    t = conf.trainer
    stop = t.early_stopping
    options = FitOptions(
        max_epochs=t.max_epochs, batch_size=t.batch_size, eval_batch_size=t.eval_batch_size,
        max_seconds=t.max_minutes * 60 or None, hflip=t.hflip, shift=t.shift, ema=t.ema, loss=build(cfg.loss),
        precision=precision, sync_every_step=t.sync_every_step, cuda_graphs=graphs,
        early_stopping=EarlyStopping(stop.epsilon, stop.patience, stop.monitor, stop.mode) if stop.enabled else None,
        schedule=build(cfg.scheduler) if "_target_" in cfg.scheduler else None,  # fit builds it once N is known
    )
    callbacks = [build(node) for node in cfg.callbacks.values()] + ctx.extra_callbacks(conf)
    name = conf.tracking.run_name or default_run_name(cfg)
    tags = {names.FINGERPRINT_TAG: fingerprint(cfg), names.OUTPUT_DIR_TAG: str(ctx.output_dir), "data": splits.name,
            "model": describe(cfg.model), "device": str(device), "num_threads": threads, "precision": precision,
            **owner_tags(), **provenance_tags(device), **(ctx.tags or {})}
    log.info("%s on %s (%d train / %d val images), %s, %d threads, precision %s (trainer.precision=%s)",
             name, splits.name, len(train), len(val), device, threads, precision, t.precision.value)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    with open_run(tracker, attempt, name, tags, ctx.parent_run_id) as run:
        if attempt.action == NEW:
            _log_config(run, cfg, splits.name, ctx.output_dir)
        for callback in callbacks:
            callback.setup(Job(run, model, cfg, conf, ctx.output_dir))
        resume = TrainState.from_dict(attempt.train_state) if attempt.train_state else None
        result = _fit(run, name, ctx.output_dir, model=model, optimizer=optimizer, train=train, val=val,
                      generator=generator, options=options, callbacks=callbacks, resume=resume)
        if isinstance(result, Diverged):
            return JobResult(run.run_id, "FAILED", math.nan, experiment_id=tracker.experiment_id,
                             diverged=str(result))
        _finish(run, result, model, cfg, val, conf.trainer.num_samples, ctx.output_dir, name)
    if run.errors:  # the store went away mid-run: the model is trained and saved all the same
        raise ColorizeError(f"{run.errors[0]}; training finished, checkpoint at {ctx.output_dir / 'best.pt'}")
    best = result.best
    log.info("best epoch %d of %d: val_mse %.5f  val 12-margin accuracy %.4f  (run %s)", result.best_epoch,
             result.stopped_epoch, best[names.VAL_MSE], best[names.VAL_ACCURACY], run.run_id)
    return JobResult(run.run_id, "FINISHED", best[names.VAL_ERROR], result, experiment_id=tracker.experiment_id)


def _log_config(run: TrackedRun, cfg: DictConfig, data_name: str, output_dir: Path) -> None:
    """A new run's params (the flattened config) and its config.yaml."""
    run.log_params(flatten(plain(cfg)) | {"data.name": data_name})
    config_file = output_dir / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    run.log_artifact(config_file)


def _fit(run: TrackedRun, name: str, output_dir: Path, **fit_args: Any) -> FitResult | Diverged:
    """`fit`, with its endings recorded: a diverged run FAILED with the epoch (returned), Ctrl-C with its
    last.pt logged for `trainer.resume`, a pruned or out-of-time run tagged why; the callbacks'
    teardown however it ends."""
    try:
        result = fit(**fit_args)
    except Diverged as exc:
        log.warning("%s: %s", name, exc)
        run.fail(**{names.DIVERGED: "true", "diverged_epoch": exc.epoch, names.FAILURE_TAG: "diverged"})
        return exc
    except KeyboardInterrupt:
        if (output_dir / LAST).is_file():
            run.log_artifact(output_dir / LAST)
            log.warning("interrupted: resume with trainer.resume=%s", run.run_id)
        raise
    finally:
        for callback in fit_args["callbacks"]:
            callback.teardown()
    if result.stopped_by is not None:  # pruned, or out of time
        log.info("%s: %s", name, result.stopped_by)
        run.set_tags({result.stopped_by.tag: "true", "stopped_by": str(result.stopped_by)})
    return result


def _finish(
    run: TrackedRun, result: FitResult, model: torch.nn.Module, cfg: DictConfig,
    val: DeviceImages, num_samples: int, output_dir: Path, title: str,
) -> None:
    """Log the best epoch's summary metrics, the checkpoints and the qualitative figure."""
    best = result.best
    run.log_metrics(
        {names.BEST_EPOCH: result.best_epoch, names.STOPPED_EPOCH: result.stopped_epoch}
        | {names.best(k): v for k, v in best.items() if k != names.EPOCH_SECONDS}
        | {names.TRAIN_SECONDS: sum(h[names.EPOCH_SECONDS] for h in result.history)},
        step=result.best_epoch,
    )
    ckpt = save_checkpoint(output_dir / "best.pt", model, plain(cfg.model), epoch=result.best_epoch,
                           metrics={k: float(v) for k, v in best.items()})
    run.log_artifact(ckpt)
    run.log_artifact(output_dir / LAST)
    model.eval()
    with torch.inference_mode():
        gray, target = val.gray[:num_samples], val.rgb[:num_samples]
        pred = model(gray)
        figure = save_samples(gray, pred, target, output_dir / "samples.png", title=title)
    run.log_artifact(figure)
    run.log_artifact(save_sample_arrays(gray, pred, target, output_dir / SAMPLE_ARRAYS))  # for the report's face rows
