"""One training job, assembled from a composed config: which run it writes into, the data, model
and optimizer, the callbacks, `fit`, and the artifacts of the result."""

from __future__ import annotations

import logging
import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from colorize import names
from colorize.config import TrainConfig, build, plain, to_object
from colorize.data.cache import SPLITS
from colorize.errors import ColorizeError
from colorize.models import check_image_size, default_run_name, describe
from colorize.report.samples import SAMPLE_ARRAYS, save_sample_arrays, save_samples
from colorize.tracking.attempts import RESUME, SKIP, Attempt, decide, fingerprint, open_run
from colorize.tracking.owners import owner_tags
from colorize.tracking.provenance import provenance_tags
from colorize.tracking.store import Tracker, TrackedRun, flatten
from colorize.training.callback import CallbackContext, TrainState
from colorize.training.checkpoint import BEST, LAST, save_checkpoint
from colorize.training.device_images import DeviceImages
from colorize.training.early_stopping import EarlyStopping
from colorize.training.epoch import Diverged
from colorize.training.graphs import use_cuda_graphs
from colorize.training.loop import FitResult, Member, fit_group
from colorize.training.options import FitOptions
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
    sweeper: dict = field(default_factory=dict)  # an Optuna search's storage and study_name (its trials report there)


@dataclass
class JobResult:
    run_id: str
    status: str  # FINISHED | FAILED
    objective: float  # best val_margin12_error, NaN for a diverged run
    fit: Optional[FitResult] = None
    experiment_id: str = ""
    diverged: str = ""  # how a diverged run diverged ("training diverged at epoch 3, step 12: loss=nan")


@dataclass
class _Planned:
    """One job ready to train: its attempt, config, objects and tags."""

    ctx: JobContext
    tracker: Tracker
    attempt: Attempt
    cfg: DictConfig
    conf: TrainConfig
    member: Member
    name: str
    tags: dict


def run_job(cfg: DictConfig, ctx: JobContext) -> JobResult:
    """Validate, load data, train and track one configuration (or resume/reuse an earlier attempt)."""
    return run_jobs([cfg], [ctx])[0]


def run_jobs(cfgs: Sequence[DictConfig], ctxs: Sequence[JobContext]) -> list[JobResult]:
    """`run_job` for several configurations that differ only in what leaves the model's shapes alone
    (colorize/launch/fusing.py): trained together by `fit_group`, one fused model, each with its own
    run, checkpoints and samples. Jobs an earlier attempt finished are skipped, as alone."""
    for cfg in cfgs:
        to_object(cfg)  # every range check happens before any data is read or any run is made
    attempts = [_attempt(cfg, ctx) for cfg, ctx in zip(cfgs, ctxs)]
    results = {i: JobResult(a.run_id, a.status, a.objective, experiment_id=t.experiment_id)
               for i, (t, a) in enumerate(attempts) if a.action == SKIP}
    todo = [i for i in range(len(cfgs)) if i not in results]
    if not todo:
        return [results[i] for i in range(len(cfgs))]
    setting, train, val = _shared(attempts[todo[0]][1].cfg, ctxs[todo[0]])
    planned = [_plan_job(*attempts[i], ctxs[i], setting) for i in todo]
    for p in planned:  # a U-Net the images do not fold into: one line before any run is opened
        for split in (train, val):
            check_image_size(p.member.model, *split.gray.shape[-2:])
    log.info("%s on %s (%d train / %d val images), %s, %d threads, precision %s (trainer.precision=%s)",
             ", ".join(p.name for p in planned), setting["data"], len(train), len(val), setting["device"],
             setting["threads"], setting["precision"], planned[0].conf.trainer.precision.value)
    results.update(zip(todo, _train_and_track(planned, train, val)))
    return [results[i] for i in range(len(cfgs))]


def _shared(cfg: DictConfig, ctx: JobContext) -> tuple[dict, DeviceImages, DeviceImages]:
    """What a group's jobs share (the first's config decides; the rest agree, colorize/launch/fusing.py):
    device, threads, precision, CUDA graphs, and the data on the device (decoded once per process)."""
    t = to_object(cfg).trainer
    device = select_device(t.device)
    threads = resolve_num_threads(t.num_threads, ctx.parallel_jobs)
    torch.set_num_threads(threads)
    precision = resolve_precision(t.precision, device)
    graphs = t.cuda_graphs.value if use_cuda_graphs(t.cuda_graphs, device, precision) else "off"
    splits = SPLITS.get(plain(cfg.data), lambda: build(cfg.data))
    train, val = DeviceImages.from_set(splits.train, device), DeviceImages.from_set(splits.val, device)
    return dict(device=device, threads=threads, precision=precision, graphs=graphs, data=splits.name), train, val


def _attempt(cfg: DictConfig, ctx: JobContext) -> tuple[Tracker, Attempt]:
    tracker = Tracker.from_config(cfg.tracking)
    return tracker, decide(cfg, tracker, ctx.parent_run_id, ctx.overrides, ctx.output_dir)


def _plan_job(tracker: Tracker, attempt: Attempt, ctx: JobContext, setting: dict) -> _Planned:
    """A job's model (seeded as alone), optimizer, fit options, callbacks, name and tags."""
    cfg, conf = attempt.cfg, to_object(attempt.cfg)  # a resumed run's own config
    device, precision = setting["device"], setting["precision"]
    t = conf.trainer
    generator = seed_everything(t.seed)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer)(model.parameters())
    stop = t.early_stopping
    options = FitOptions(
        max_epochs=t.max_epochs, batch_size=t.batch_size, eval_batch_size=t.eval_batch_size,
        max_seconds=t.max_minutes * 60 or None, hflip=t.hflip, shift=t.shift, ema=t.ema, loss=build(cfg.loss),
        precision=precision, sync_every_step=t.sync_every_step, cuda_graphs=setting["graphs"],
        early_stopping=EarlyStopping(stop.epsilon, stop.patience, stop.monitor, stop.mode) if stop.enabled else None,
        schedule=build(cfg.scheduler) if "_target_" in cfg.scheduler else None,  # fit builds it once N is known
    )
    callbacks = [build(node) for node in cfg.callbacks.values()]
    resume = TrainState.from_dict(attempt.train_state) if attempt.train_state else None
    name = conf.tracking.run_name or default_run_name(cfg)
    tags = {names.FINGERPRINT_TAG: fingerprint(cfg), names.OUTPUT_DIR_TAG: str(ctx.output_dir), "data": setting["data"],
            "model": describe(cfg.model), "device": str(device), "num_threads": setting["threads"],
            "precision": precision, **owner_tags(), **provenance_tags(device), **(ctx.tags or {})}
    member = Member(model, optimizer, generator, options, callbacks, resume)
    return _Planned(ctx, tracker, attempt, cfg, conf, member, name, tags)


def _train_and_track(planned: Sequence[_Planned], train: DeviceImages, val: DeviceImages) -> list[JobResult]:
    """Open each job's run, train them together, and close each run as soon as its training ends
    (a member of a fused group that stops early or diverges is FINISHED or FAILED at once)."""
    results: dict[int, JobResult] = {}
    with ExitStack() as every:
        stacks = [every.enter_context(ExitStack()) for _ in planned]
        runs = [stack.enter_context(_open(p)) for stack, p in zip(stacks, planned)]
        for p, run in zip(planned, runs):
            label = f"trial {p.tags.get(names.TRIAL_TAG, '?')} ({p.name})" if len(planned) > 1 else ""
            for callback in p.member.callbacks:
                callback.setup(CallbackContext(run, p.member.model, p.cfg, p.ctx.output_dir, label, p.ctx.sweeper))

        def end(i: int, outcome: FitResult | Diverged) -> None:
            with stacks[i]:  # leaving it ends the run: FINISHED, or FAILED when it diverged
                _teardown(planned[i])
                results[i] = _record(planned[i], runs[i], outcome, val)

        try:
            fit_group([p.member for p in planned], train, val, on_end=end)
        except KeyboardInterrupt:
            for i, (p, run) in enumerate(zip(planned, runs)):
                if i not in results and (p.ctx.output_dir / LAST).is_file():
                    run.log_artifact(p.ctx.output_dir / LAST)
                    log.warning("interrupted: resume with trainer.resume=%s", run.run_id)
            raise
        finally:
            for i, p in enumerate(planned):
                if i not in results:
                    _teardown(p)
    for p, run in zip(planned, runs):
        if run.errors:  # the store went away mid-run: the model is trained and saved all the same
            raise ColorizeError(f"{run.errors[0]}; training finished, checkpoint at {p.ctx.output_dir / BEST}")
    return [results[i] for i in range(len(planned))]


def _teardown(p: _Planned) -> None:
    for callback in p.member.callbacks:
        callback.teardown()


def _record(p: _Planned, run: TrackedRun, outcome: FitResult | Diverged, val: DeviceImages) -> JobResult:
    """How a run's training ended, in its record: a diverged run FAILED with its epoch; a finished
    one's summary, checkpoints and samples, tagged why if pruned or out of time."""
    if isinstance(outcome, Diverged):
        log.warning("%s: %s", p.name, outcome)
        run.fail(**{names.DIVERGED: "true", "diverged_epoch": outcome.epoch, names.FAILURE_TAG: "diverged"})
        return JobResult(run.run_id, "FAILED", math.nan, experiment_id=p.tracker.experiment_id, diverged=str(outcome))
    if outcome.stopped_by is not None:  # pruned, or out of time
        log.info("%s: %s", p.name, outcome.stopped_by)
        run.set_tags({outcome.stopped_by.tag: "true", "stopped_by": str(outcome.stopped_by)})
    _finish(run, outcome, p.member.model, p.cfg, val, p.conf.trainer.num_samples, p.ctx.output_dir, p.name)
    best = outcome.best
    log.info("%s: best epoch %d of %d: val_mse %.5f  val 12-margin accuracy %.4f  (run %s)", p.name,
             outcome.best_epoch, outcome.stopped_epoch, best[names.VAL_MSE], best[names.VAL_ACCURACY], run.run_id)
    return JobResult(run.run_id, "FINISHED", best[names.VAL_ERROR], outcome, experiment_id=p.tracker.experiment_id)


def _open(p: _Planned) -> ContextManager[TrackedRun]:
    """The job's run: a new one (or one restarted in place) with its params (the flattened config) and
    config.yaml, or the resumed one, which has them."""
    p.ctx.output_dir.mkdir(parents=True, exist_ok=True)
    if p.attempt.action == RESUME:
        return open_run(p.tracker, p.attempt, p.name, p.tags, p.ctx.parent_run_id)
    config_file = p.ctx.output_dir / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(p.cfg, resolve=True))
    params = flatten(plain(p.cfg)) | {"data.name": p.tags["data"]}
    return open_run(p.tracker, p.attempt, p.name, p.tags, p.ctx.parent_run_id, params=params, files=[config_file])


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
    ckpt = save_checkpoint(output_dir / BEST, model, plain(cfg.model), epoch=result.best_epoch,
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
